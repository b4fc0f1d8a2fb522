"""The options many ``cellhub`` commands share, declared once (``Annotated`` types for Typer): a command says
``registry: RegistryOption = None`` and gets the same flag, help and default everywhere."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from hub.registry.ref import KINDS

REGISTRY_HELP = "registry URL: a folder, s3://bucket/prefix, http(s)://... or hf://... (default: $CELLHUB_REGISTRY)"
LOCKFILE = "cellhub.lock"

RegistryOption = Annotated[str | None, typer.Option("--registry", help=REGISTRY_HELP, show_default=False)]
"""``--registry URL``: the registry to read or write (default: ``$CELLHUB_REGISTRY``)."""

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of text")]
"""``--json``: machine-readable output on stdout."""

WorkersOption = Annotated[int | None, typer.Option("--workers", help="worker processes", show_default=False)]
"""``--workers N``: worker processes for dataset I/O (default: the library's choice)."""


def _quiet_dask(scheduler: str | None) -> str | None:
    """The command reports a failure in one line of its own; Dask's client logs its retries and lost keys on
    stderr too, so only its errors are kept."""
    if scheduler:
        import distributed  # noqa: F401 - its import configures its loggers; they are quieted after it

        for name in ["distributed", *logging.root.manager.loggerDict]:
            if name.split(".")[0] == "distributed":
                logging.getLogger(name).setLevel(logging.ERROR)
    return scheduler


SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="CELLHUB_SCHEDULER",
        help="run the per-sample work on a Dask cluster: its scheduler's address, tcp://HOST:PORT (paths must be "
        "storage every worker reaches; default: $CELLHUB_SCHEDULER, else local processes)",
        show_default=False,
        callback=_quiet_dask,
    ),
]
"""``--scheduler tcp://HOST:PORT``: per-sample work on a Dask distributed cluster (:mod:`hub.executor`)."""

DeviceOption = Annotated[str, typer.Option("--device", help="cpu or cuda")]
"""``--device``: where a model runs (default ``cpu``)."""

LockedOption = Annotated[
    bool, typer.Option("--locked", help="pull exactly what the lockfile pins; refuse drift (see --lockfile)")
]
LockfileOption = Annotated[Path, typer.Option("--lockfile", help="lockfile used with --locked")]

LocalOption = Annotated[
    bool, typer.Option("--local", help="list what is on this machine (the build folder) instead of a registry")
]
RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="with --local: build folder (default: $CELLHUB_BUILD or ~/.cellhub/build); implies --local",
        show_default=False,
    ),
]
SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search", help="only versions whose name, title, task, organism, cell type or modality contains TEXT"
    ),
]


def check_kind(kind: str | None) -> str | None:
    """``None`` (both kinds) or one of :data:`~hub.registry.ref.KINDS`; anything else is a usage error."""
    if kind and kind not in KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(KINDS)}")
    return kind


KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="datasets or models (default: both)", callback=check_kind, show_default=False),
]
