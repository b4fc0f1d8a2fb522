"""Progress bars on stderr, shared by every long job (conversion, validation, upload, download)."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def progress_bar(transient: bool = True) -> Progress:
    """A progress bar on stderr, shown only on a terminal (and not with CELLHUB_NO_PROGRESS=1)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=transient,
        console=console,
        disable=os.environ.get("CELLHUB_NO_PROGRESS") == "1" or not console.is_terminal,
    )
