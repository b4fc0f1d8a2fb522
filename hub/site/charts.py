"""Inline SVG charts for the static site: no JavaScript library, no network, styled by the site's CSS.

Built with :mod:`xml.etree.ElementTree`, which escapes every label, and returned as markup ready to place in
a page. Sizes are in the SVG's own units; the picture scales to its container (``viewBox``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 760
ROW = 30
LABEL_W = 210
VALUE_W = 90
AXIS_H = 34


@dataclass
class Bar:
    """One horizontal bar: ``value`` with an optional interval ``(lo, hi)`` and a link."""

    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    href: str | None = None
    text: str | None = None  # what to print beside the bar (default: the value)


def _svg(height: float, title: str, width: int = WIDTH) -> ET.Element:
    """The chart's root: drawn at its natural size, shrunk (never enlarged) to fit narrow screens by the CSS."""
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height:g}",
            "width": str(width),
            "height": f"{height:g}",
            "role": "img",
            "aria-label": title,
            "class": "chart",
            "preserveAspectRatio": "xMinYMin meet",
        },
    )
    ET.SubElement(svg, "title").text = title
    return svg


def _text(parent: ET.Element, x: float, y: float, text: str, cls: str, anchor: str = "start") -> ET.Element:
    el = ET.SubElement(parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", "class": cls, "text-anchor": anchor})
    el.text = text
    return el


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.0e}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks of each decade inside [lo, hi] (only 1s when that gives enough)."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [m * 10**d for d in decades for m in mantissas if lo <= m * 10**d <= hi]
        if len(ticks) >= 4:
            return ticks
    return ticks


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values spanning [lo, hi]."""
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _markup(svg: ET.Element) -> Markup:
    return Markup(ET.tostring(svg, encoding="unicode"))


def bar_chart(
    bars: list[Bar],
    title: str,
    axis_label: str,
    domain: tuple[float, float] | None = None,
    width: int = WIDTH,
    label_width: int = LABEL_W,
    value_width: int = VALUE_W,
) -> Markup:
    """Horizontal bars, one row each, with interval whiskers where given (e.g. a leaderboard's 95% CIs)."""
    values = [v for b in bars for v in (b.value, b.lo, b.hi) if v is not None]
    lo, hi = domain or (min([0.0, *values]), max([*values, 1e-9]))
    if domain is None and 0 <= lo and hi <= 1 and max(values, default=0) > 0.2:
        hi = 1.0  # scores on [0, 1] are drawn on their whole range
    plot_w = width - label_width - value_width
    height = len(bars) * ROW + AXIS_H + 8

    def x(v: float) -> float:
        return label_width + (min(max(v, lo), hi) - lo) / ((hi - lo) or 1.0) * plot_w

    svg = _svg(height, title, width)
    for t in _ticks(lo, hi):
        ET.SubElement(
            svg,
            "line",
            {"x1": f"{x(t):.1f}", "x2": f"{x(t):.1f}", "y1": "0", "y2": f"{len(bars) * ROW:g}", "class": "grid"},
        )
        _text(svg, x(t), len(bars) * ROW + 16, _fmt_tick(t), "tick", "middle")
    _text(svg, label_width + plot_w / 2, height - 6, axis_label, "axis-label", "middle")
    for i, b in enumerate(bars):
        y = i * ROW
        row = ET.SubElement(svg, "g", {"class": "bar-row"})
        label_parent = ET.SubElement(row, "a", {"href": b.href}) if b.href else row
        label = b.label if len(b.label) <= label_width // 7 else b.label[: label_width // 7 - 1] + "…"
        _text(label_parent, label_width - 8, y + ROW / 2 + 4, label, "bar-label", "end")
        if b.value is not None:
            x0, x1 = x(max(lo, 0.0) if lo < 0 < hi else lo), x(b.value)
            ET.SubElement(
                row,
                "rect",
                {
                    "x": f"{min(x0, x1):.1f}",
                    "y": f"{y + 7:g}",
                    "width": f"{max(abs(x1 - x0), 1):.1f}",
                    "height": f"{ROW - 14:g}",
                    "class": "bar",
                },
            )
        if b.lo is not None and b.hi is not None:
            ym = y + ROW / 2
            ET.SubElement(
                row,
                "line",
                {"x1": f"{x(b.lo):.1f}", "x2": f"{x(b.hi):.1f}", "y1": f"{ym:g}", "y2": f"{ym:g}", "class": "whisker"},
            )
            for v in (b.lo, b.hi):
                ET.SubElement(
                    row,
                    "line",
                    {
                        "x1": f"{x(v):.1f}",
                        "x2": f"{x(v):.1f}",
                        "y1": f"{ym - 6:g}",
                        "y2": f"{ym + 6:g}",
                        "class": "whisker",
                    },
                )
        shown = b.text if b.text is not None else ("—" if b.value is None else _fmt_tick(b.value))
        _text(row, width - value_width + 8, y + ROW / 2 + 4, shown, "bar-value")
    return _markup(svg)


def histogram(counts: list[int], edges: list[float], title: str, axis_label: str, log_x: bool = False) -> Markup:
    """Vertical bars of ``counts`` between ``edges`` (len(counts) + 1); ``log_x``: edges are log-spaced and the
    axis is drawn in log scale."""
    height, left, bottom, top = 226, 56, 46, 10
    plot_w, plot_h = WIDTH - left - 16, height - bottom - top
    peak = max(counts, default=0) or 1
    lo, hi = edges[0], edges[-1]
    f = (lambda v: math.log10(v)) if log_x else (lambda v: v)

    def x(v: float) -> float:
        return left + (f(v) - f(lo)) / ((f(hi) - f(lo)) or 1.0) * plot_w

    svg = _svg(height, title)
    for t in _ticks(0, peak, 4):
        yy = top + plot_h - t / peak * plot_h
        ET.SubElement(
            svg, "line", {"x1": f"{left}", "x2": f"{WIDTH - 16}", "y1": f"{yy:.1f}", "y2": f"{yy:.1f}", "class": "grid"}
        )
        _text(svg, left - 6, yy + 4, _fmt_tick(t), "tick", "end")
    for i, c in enumerate(counts):
        h = c / peak * plot_h
        x0, x1 = x(edges[i]), x(edges[i + 1])
        rect = ET.SubElement(
            svg,
            "rect",
            {
                "x": f"{x0 + 1:.1f}",
                "y": f"{top + plot_h - h:.1f}",
                "width": f"{max(x1 - x0 - 2, 1):.1f}",
                "height": f"{h:.1f}",
                "class": "bar",
            },
        )
        ET.SubElement(rect, "title").text = f"{_fmt_tick(edges[i])}–{_fmt_tick(edges[i + 1])}: {c:,}"
    ET.SubElement(
        svg,
        "line",
        {"x1": f"{left}", "x2": f"{WIDTH - 16}", "y1": f"{top + plot_h:g}", "y2": f"{top + plot_h:g}", "class": "axis"},
    )
    for t in _log_ticks(lo, hi) if log_x else _ticks(lo, hi):
        ET.SubElement(
            svg,
            "line",
            {
                "x1": f"{x(t):.1f}",
                "x2": f"{x(t):.1f}",
                "y1": f"{top + plot_h:g}",
                "y2": f"{top + plot_h + 4:g}",
                "class": "axis",
            },
        )
        _text(svg, x(t), top + plot_h + 16, _fmt_tick(t), "tick", "middle")
    _text(svg, left + plot_w / 2, height - 8, axis_label + (" (log scale)" if log_x else ""), "axis-label", "middle")
    return _markup(svg)
