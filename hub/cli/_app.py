"""Typer application and the one place where every error becomes one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import sys
import traceback

import typer
from rich.console import Console
from rich.markup import escape

from hub.cards import SCHEMAS
from hub.cli import bench as _bench
from hub.cli import datasets as _datasets
from hub.cli import models as _models
from hub.cli import registry as _registry
from hub.cli import site as _site
from hub.config import request_timeout
from hub.errors import CellHubError, RegistryError

app = typer.Typer(
    help="CellHub: curated microscopy datasets, models and benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_datasets.app, name="datasets")
app.add_typer(_models.app, name="models")
app.add_typer(_site.app, name="site")
_registry.register(app)
_bench.register(app)
err_console = Console(stderr=True)
_options = {"debug": False}
MAX_LINE = 400  # characters of an unexpected exception's message kept on its one line


@app.callback()
def _global(
    debug: bool = typer.Option(
        False, "--debug", help="On an error, show the full traceback instead of one line (also: CELLHUB_DEBUG=1)."
    ),
) -> None:
    _options["debug"] = _options["debug"] or debug


@app.command()
def schema(kind: str = typer.Argument(..., help=f"one of: {', '.join(SCHEMAS)}")) -> None:
    """Print the JSON Schema of a card."""
    if kind not in SCHEMAS:
        raise CellHubError(f"no schema {kind!r}; known: {', '.join(SCHEMAS)}")
    typer.echo(json.dumps(SCHEMAS[kind].model_json_schema(), indent=2))


def _debug() -> bool:
    return _options["debug"] or os.environ.get("CELLHUB_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _chain(err: BaseException):
    """``err`` and the exceptions it was raised from or while handling, once each."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _is_timeout(err: BaseException) -> bool:
    """asyncio/aiohttp/fsspec timeouts (all TimeoutError) and botocore's connect and read timeouts."""
    if isinstance(err, TimeoutError):
        return True
    boto = sys.modules.get("botocore.exceptions")
    return boto is not None and isinstance(err, (boto.ConnectTimeoutError, boto.ReadTimeoutError))


def _timeout_error(err: BaseException) -> CellHubError | None:
    """A RegistryError naming the remote registry when ``err`` comes from a request that got no answer in time."""
    if not any(_is_timeout(e) for e in _chain(err)):
        return None
    from hub.registry import last_remote

    try:
        seconds = f"{request_timeout():g}"
    except CellHubError:
        seconds = "?"
    if url := last_remote():
        return RegistryError(f"no answer from the registry within {seconds} s (CELLHUB_TIMEOUT)", url)
    return None


def _shorten(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def one_line(err: BaseException) -> str:
    """What the user sees of ``err``: one line naming the file (when known) and the problem."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:  # e.g. a task group: its first failure
        err = err.exceptions[0]
    if not isinstance(err, CellHubError):
        err = _timeout_error(err) or err
    if isinstance(err, CellHubError):
        return " ".join(str(err).split())
    if isinstance(err, OSError) and err.strerror:  # e.g. a full disk, a folder without write permission
        where = f"{err.filename}: " if err.filename is not None else ""
        also = f" (and {err.filename2})" if err.filename2 is not None else ""
        return _shorten(f"{where}{err.strerror}{also}")
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(err, pydantic.ValidationError) and err.errors():
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        return _shorten(f"{err.title}: {where}: {first.get('msg', '')} (got {first.get('input')!r}){more}")
    message = _shorten(str(err))
    name = type(err).__name__
    return (
        f"{name}: {message} (unexpected; rerun with --debug for the traceback)"
        if message
        else f"{name} (unexpected; rerun with --debug for the traceback)"
    )


def _interrupted(err: BaseException) -> bool:
    return any(isinstance(e, KeyboardInterrupt) for e in _chain(err))


def main() -> None:
    """The ``cellhub`` command: every error ends as one line on stderr and exit status 1 (Ctrl-C: 130); with
    ``--debug`` or ``CELLHUB_DEBUG=1`` an error shows its full traceback instead."""
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:  # anywhere before "--": also after the command, where one adds it on a rerun
        args = [a for a in args[:end] if a != "--debug"] + args[end:]
        _options["debug"] = True
    try:
        app(args=args)
    except SystemExit as done:  # Typer ends every run this way; it turns Ctrl-C into exit status 130
        if done.code == 130 and _interrupted(done):
            err_console.print("interrupted", highlight=False)
        raise
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if _debug():
            traceback.print_exception(err)
            sys.exit(1)
        err_console.print(f"[bold red]error:[/] {escape(one_line(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
