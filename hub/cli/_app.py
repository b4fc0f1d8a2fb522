"""Typer application and the one place where every error becomes one line and a non-zero exit."""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, cast

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # recent Typer carries its own copy of click; older versions use click itself
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover
    from click import exceptions as _click  # type: ignore[no-redef]

from hub.cards import SCHEMAS as CARD_SCHEMAS
from hub.cli import bench as _bench
from hub.cli import datasets as _datasets
from hub.cli import models as _models
from hub.cli import peers as _peers
from hub.cli import registry as _registry
from hub.cli import site as _site
from hub.cli._legacy import rewrite
from hub.cli._options import JsonOption
from hub.config import request_timeout
from hub.errors import CellHubError, RegistryError
from hub.tasks import Hook

# every file users write: the cards, and the recipes of a dataset and of a model (imported when asked: torch)
SCHEMAS: dict[str, type[BaseModel] | Hook] = {
    **CARD_SCHEMAS,
    "dataset-recipe": Hook("hub.curate.recipe:Recipe"),
    "model-recipe": Hook("hub.models.config:TrainConfig"),
}


class _Root(TyperGroup):
    """The ``cellhub`` group: an old spelling (:mod:`hub.cli._legacy`) runs its new command after one line on
    stderr."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: the bundled click's Context
        moved = rewrite(args)
        if moved is not None:
            args, old, new = moved
            typer.echo(f"{old} is deprecated; use {new}", err=True)
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Root,
    help="CellHub: curated microscopy datasets, models and benchmarks. Commands are NOUN VERB: "
    "cellhub datasets list, cellhub models info NAME@VERSION, cellhub benchmarks leaderboard BENCHMARK.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
schema_app = typer.Typer(help="JSON Schemas of the files CellHub reads.", no_args_is_help=True)
app.add_typer(_datasets.app, name="datasets")
app.add_typer(_models.app, name="models")
app.add_typer(_bench.app, name="benchmarks")
app.add_typer(_peers.app, name="peers")
app.add_typer(_registry.app, name="registry")
app.add_typer(_registry.cache_app, name="cache")
app.add_typer(_site.app, name="site")
app.add_typer(schema_app, name="schema")
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


@schema_app.command("list")
def schema_list(as_json: JsonOption = False) -> None:
    """List the schemas (one per kind of file)."""
    if as_json:
        typer.echo(json.dumps(list(SCHEMAS)))
        return
    for kind, model in SCHEMAS.items():
        typer.echo(f"{kind}\t{model.target.rpartition(':')[2] if isinstance(model, Hook) else model.__name__}")


@schema_app.command("show")
def schema_show(kind: str = typer.Argument(..., help=f"one of: {', '.join(SCHEMAS)}")) -> None:
    """Print the JSON Schema of a file CellHub reads (a card or a recipe)."""
    if kind not in SCHEMAS:
        raise CellHubError(f"no schema {kind!r}; known: {', '.join(SCHEMAS)}")
    model = SCHEMAS[kind]
    schema = cast(type[BaseModel], model.resolve()) if isinstance(model, Hook) else model
    typer.echo(json.dumps(schema.model_json_schema(), indent=2))


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


def _usage_line(err: _click.ClickException) -> str:
    """A usage error (unknown option, missing argument, bad value) as one line naming the command's help."""
    message = " ".join(err.format_message().split())
    ctx = getattr(err, "ctx", None)
    if isinstance(err, _click.UsageError) and ctx is not None:
        return f"{message} (see: {ctx.command_path} --help)"
    return message


def main(argv: list[str] | None = None) -> None:
    """The ``cellhub`` command (``argv``: its arguments, default ``sys.argv[1:]``): every error, usage errors
    included, ends as one line on stderr and exit status 1 (Ctrl-C: 130); with ``--debug`` or
    ``CELLHUB_DEBUG=1`` an error shows its full traceback instead. Always ends by raising SystemExit."""
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    _options["debug"] = "--debug" in args[:end]  # anywhere before "--": also after the command, on a rerun
    if _options["debug"]:
        args = [a for a in args[:end] if a != "--debug"] + args[end:]
    try:
        code = app(args=args, prog_name="cellhub", standalone_mode=False)
    except getattr(_click, "NoArgsIsHelpError", ()) as done:  # a bare group: its help (Typer has printed it already)
        if done.format_message().strip():
            typer.echo(done.format_message())
        sys.exit(1)
    except _click.ClickException as err:  # usage errors: click would exit 2 with a box; here one line and 1
        err_console.print(f"[bold red]error:[/] {escape(_usage_line(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err_console.print("[bold red]error:[/] aborted", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if _debug():
            traceback.print_exception(err)
            sys.exit(1)
        err_console.print(f"[bold red]error:[/] {escape(one_line(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    if code == 130:  # Typer turns Ctrl-C into exit status 130
        err_console.print("interrupted", highlight=False)
    sys.exit(code if isinstance(code, int) else 0)
