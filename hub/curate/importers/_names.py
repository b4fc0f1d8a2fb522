"""File-name rules the importers share: the split group a file name holds."""

from __future__ import annotations

import re
from pathlib import Path

from hub.errors import InvalidInput


def group_of(pattern: str | None, stem: str, path: Path) -> str | None:
    """The named group ``group`` of ``pattern`` searched in ``stem`` (None without a pattern); a file name the
    pattern does not match is an error naming the file, never a silent group of its own."""
    if not pattern:
        return None
    m = re.search(pattern, stem)
    if m is None or not m.groupdict().get("group"):
        raise InvalidInput(f"file name has no split group: it does not match {pattern!r}", path)
    return m["group"]
