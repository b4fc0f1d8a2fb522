"""How numbers, intervals, hashes, dates and sizes read on the site (Jinja filters)."""

from __future__ import annotations

import datetime as dt
import json


def number(v: float | int | None, digits: int = 3) -> str:
    """``0.612``; large values with fewer decimals (``31.4``); missing values as an em dash."""
    if v is None:
        return "—"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.2f}"
    return f"{v:.{digits}f}"


def plain(v: float | int | None) -> str:
    """A measured quantity (intensities, areas) without false precision: ``255``, ``11.49``, ``32,729``."""
    if v is None:
        return "—"
    if float(v).is_integer():
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def licence(spdx: str) -> str:
    """The SPDX id, or 'custom terms' for a card whose licence is unknown and whose terms are spelled out."""
    return "custom terms" if spdx.lower() == "unknown" else spdx


def interval(ci: list | tuple | None) -> str:
    """A 95% interval as ``[0.580, 0.640]``; empty when the record has none."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{number(ci[0])}, {number(ci[1])}]"


def short_hash(sha: str | None, n: int = 12) -> str:
    return (sha or "—")[:n]


def day(stamp: str | dt.datetime | None) -> str:
    """The date of an ISO time stamp (``2026-11-26``)."""
    if stamp is None:
        return "—"
    return (stamp.isoformat() if isinstance(stamp, dt.datetime) else str(stamp))[:10]


def file_size(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def count(n: int | None) -> str:
    """``12,528`` (thousands separated); an em dash when unknown."""
    return "—" if n is None else f"{n:,}"


def value(v) -> str:
    """A hyper-parameter or option as written in a recipe: JSON for lists and mappings, '—' for none."""
    if v is None:
        return "—"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def duration(seconds: float | None) -> str:
    """A wall time for people: ``42 ms``, ``3.1 s``, ``24 min``, ``1.5 h``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
