"""Typer application and the one place where CellHub errors become one line and a non-zero exit."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

from hub.cards import SCHEMAS
from hub.cli import bench as _bench
from hub.cli import datasets as _datasets
from hub.cli import models as _models
from hub.cli import registry as _registry
from hub.cli import site as _site
from hub.errors import CellHubError

app = typer.Typer(help="CellHub: curated microscopy datasets, models and benchmarks.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(_datasets.app, name="datasets")
app.add_typer(_models.app, name="models")
app.add_typer(_site.app, name="site")
_registry.register(app)
_bench.register(app)
err_console = Console(stderr=True)


@app.command()
def schema(kind: str = typer.Argument(..., help=f"one of: {', '.join(SCHEMAS)}")) -> None:
    """Print the JSON Schema of a card."""
    if kind not in SCHEMAS:
        raise CellHubError(f"no schema {kind!r}; known: {', '.join(SCHEMAS)}")
    typer.echo(json.dumps(SCHEMAS[kind].model_json_schema(), indent=2))


def main() -> None:
    try:
        app()
    except (CellHubError, OSError) as err:  # OSError: e.g. a full disk or a folder without write permission
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
