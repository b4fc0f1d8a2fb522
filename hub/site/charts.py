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


@dataclass
class Series:
    """One line of a :func:`line_chart`: points ``(x, y, spread)``, drawn with whiskers at ``y ± spread``."""

    label: str
    points: list[tuple[float, float, float]]


#: The chart rules of the site's style sheet, for a chart shown outside the site (a README's picture).
STANDALONE_STYLE = """
.axis { stroke: #94a3b8; stroke-width: 1; } .grid { stroke: #e2e8f0; stroke-width: 1; }
.tick { fill: #64748b; font-size: 11px; } .axis-label { fill: #475569; font-size: 12px; }
.legend { fill: #0f172a; font-size: 12px; } text { font-family: system-ui, sans-serif; }
.line { fill: none; stroke-width: 2; } .whisker { stroke-width: 1.5; }
.s0 { stroke: #0d9488; fill: #0d9488; } .s1 { stroke: #c2410c; fill: #c2410c; } .s2 { stroke: #6d28d9; fill: #6d28d9; }
.line.s0, .line.s1, .line.s2 { fill: none; }
.reference { stroke: #475569; stroke-width: 1.5; stroke-dasharray: 6 4; } svg { background: #fff; }
"""


def line_chart(
    series: list[Series],
    title: str,
    x_label: str,
    y_label: str,
    *,
    x_ticks: list[tuple[float, str]],
    reference: tuple[str, float] | None = None,
    standalone: bool = False,
) -> Markup:
    """Lines over a log-scale x axis (e.g. a learning curve: score against training images), each point with a
    whisker of its spread, ticks at ``x_ticks`` ``(value, label)``, and an optional dashed ``reference`` level
    ``(label, y)``. ``standalone``: the chart carries its own style (outside the site)."""
    height, left, bottom, top, right = 300, 64, 46, 34, 24
    plot_w, plot_h = WIDTH - left - right, height - bottom - top
    xs = [x for x, _ in x_ticks] + [p[0] for s in series for p in s.points]
    ys = [v for s in series for _, y, e in s.points for v in (y - e, y + e)] + ([reference[1]] if reference else [])
    x_lo, x_hi = min(xs), max(xs)
    pad = (max(ys) - min(ys)) * 0.08 or 0.05
    y_lo, y_hi = min(ys) - pad, max(ys) + pad
    ticks = _ticks(y_lo, y_hi, 5)

    def x(v: float) -> float:
        span = math.log10(x_hi) - math.log10(x_lo) or 1.0
        return left + (math.log10(v) - math.log10(x_lo)) / span * plot_w

    def y(v: float) -> float:
        return top + plot_h - (v - y_lo) / ((y_hi - y_lo) or 1.0) * plot_h

    svg = _svg(height, title)
    if standalone:
        ET.SubElement(svg, "style").text = STANDALONE_STYLE
    for t in ticks:
        ET.SubElement(
            svg,
            "line",
            {"x1": f"{left}", "x2": f"{left + plot_w}", "y1": f"{y(t):.1f}", "y2": f"{y(t):.1f}", "class": "grid"},
        )
        _text(svg, left - 6, y(t) + 4, _fmt_tick(t), "tick", "end")
    base = top + plot_h
    ET.SubElement(
        svg, "line", {"x1": f"{left}", "x2": f"{left + plot_w}", "y1": f"{base}", "y2": f"{base}", "class": "axis"}
    )
    for value, label in x_ticks:
        ET.SubElement(
            svg,
            "line",
            {"x1": f"{x(value):.1f}", "x2": f"{x(value):.1f}", "y1": f"{base}", "y2": f"{base + 4}", "class": "axis"},
        )
        _text(svg, x(value), base + 16, label, "tick", "middle")
    _text(svg, left + plot_w / 2, height - 8, x_label + " (log scale)", "axis-label", "middle")
    label = _text(svg, 14, top + plot_h / 2, y_label, "axis-label", "middle")
    label.set("transform", f"rotate(-90 14 {top + plot_h / 2:.1f})")
    legend_x = left + 8
    if reference is not None:
        name, level = reference
        ET.SubElement(
            svg,
            "line",
            {
                "x1": f"{left}",
                "x2": f"{left + plot_w}",
                "y1": f"{y(level):.1f}",
                "y2": f"{y(level):.1f}",
                "class": "reference",
            },
        )
        ET.SubElement(
            svg, "line", {"x1": f"{legend_x}", "x2": f"{legend_x + 22}", "y1": "14", "y2": "14", "class": "reference"}
        )
        shown = f"{name} {_fmt_tick(level)}"
        _text(svg, legend_x + 28, 18, shown, "legend")
        legend_x += 48 + 7 * len(shown)
    for i, s in enumerate(series):
        cls = f"s{i % 3}"
        group = ET.SubElement(svg, "g", {"class": "series"})
        pts = sorted(s.points)
        ET.SubElement(
            group, "polyline", {"points": " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b, _ in pts), "class": f"line {cls}"}
        )
        for a, b, e in pts:
            if e > 0:
                ET.SubElement(
                    group,
                    "line",
                    {
                        "x1": f"{x(a):.1f}",
                        "x2": f"{x(a):.1f}",
                        "y1": f"{y(b - e):.1f}",
                        "y2": f"{y(b + e):.1f}",
                        "class": f"whisker {cls}",
                    },
                )
            dot = ET.SubElement(group, "circle", {"cx": f"{x(a):.1f}", "cy": f"{y(b):.1f}", "r": "4", "class": cls})
            ET.SubElement(dot, "title").text = f"{s.label}: {_fmt_tick(b)}" + (f" ± {_fmt_tick(e)}" if e > 0 else "")
        ET.SubElement(group, "circle", {"cx": f"{legend_x + 6}", "cy": "14", "r": "4", "class": cls})
        _text(svg, legend_x + 16, 18, s.label, "legend")
        legend_x += 36 + 7 * len(s.label)
    return _markup(svg)
