"""Output folders that appear complete or not at all."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.errors import BuildError


@contextmanager
def new_folder(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; on success it is renamed to ``out``, on any error removed.

    ``out`` must not exist or be empty (a one-line :class:`BuildError` otherwise).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BuildError("output path exists and is not a folder", out)
    if out.exists() and any(out.iterdir()):
        raise BuildError("output folder exists and is not empty", out)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
