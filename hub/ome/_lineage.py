"""Lineage tables with CTC ``man_track.txt`` semantics: label, first frame, last frame, parent (0 = none)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from hub.errors import InvalidInput


class Track(NamedTuple):
    label: int
    begin: int
    end: int
    parent: int


def read_man_track(path: str | Path) -> list[Track]:
    """Parse a CTC track file; any malformed line is an error naming the file and line."""
    path = Path(path)
    tracks = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidInput("track file not found", path) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 4:
                raise ValueError
            t = Track(*(int(p) for p in parts))
        except ValueError:
            raise InvalidInput(f"line {n}: expected 4 integers 'L B E P', got {line.strip()!r}", path) from None
        if t.label <= 0 or t.begin < 0 or t.end < t.begin or t.parent < 0:
            raise InvalidInput(f"line {n}: impossible track {line.strip()!r}", path)
        tracks.append(t)
    return tracks


def check_parents(tracks: list[Track], where: str | Path | None = None) -> dict[int, Track]:
    """One row per label, and every parent listed and ending before its child begins; returns label -> row."""
    by_label: dict[int, Track] = {}
    for t in tracks:
        if t.label in by_label:
            raise InvalidInput(f"track {t.label} is listed twice in the lineage", where)
        by_label[t.label] = t
    for t in tracks:
        if t.parent:
            p = by_label.get(t.parent)
            if p is None:
                raise InvalidInput(f"track {t.label} has parent {t.parent}, which is not in the lineage", where)
            if p.end >= t.begin:
                raise InvalidInput(
                    f"track {t.label} begins at frame {t.begin} but its parent {p.label} ends at frame {p.end}", where
                )
    return by_label


def write_man_track(tracks: list[Track], path: str | Path) -> None:
    Path(path).write_text("".join(f"{t.label} {t.begin} {t.end} {t.parent}\n" for t in tracks))


def lineage_to_attrs(tracks: list[Track]) -> list[list[int]]:
    return [list(t) for t in tracks]


def lineage_from_attrs(rows: list[list[int]]) -> list[Track]:
    return [Track(*map(int, r)) for r in rows]
