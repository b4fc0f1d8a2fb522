"""``cellhub site ...``: build the static leaderboard site of a registry, and serve it locally."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from hub.cli._options import JsonOption, RegistryOption
from hub.cli.registry import console

app = typer.Typer(help="Build the static leaderboard site of a registry and look at it locally.", no_args_is_help=True)


@app.command()
def build(
    out: Path = typer.Option(..., "--out", help="folder to write the site to (must not exist, or be empty)"),
    registry: RegistryOption = None,
    public_url: str | None = typer.Option(
        None, help="registry URL to print in the pull commands (default: --registry as given)"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a site built before in --out"),
    as_json: JsonOption = False,
) -> None:
    """Render the registry's catalog, cards and results as a self-contained static site."""
    from hub.site import build_site

    built = build_site(out, registry, overwrite=overwrite, public_url=public_url)
    if as_json:
        keep = ("out", "registry", "public_url", "built", "datasets", "models", "benchmarks", "results")
        typer.echo(json.dumps({**{k: built[k] for k in keep}, "pages": len(built["pages"])}))
        return
    console.print(
        f"[green]built[/] {len(built['pages'])} pages ({len(built['datasets'])} datasets, "
        f"{len(built['models'])} models, {len(built['benchmarks'])} benchmarks, {built['results']} results) "
        f"in {escape(str(out))}; look at it with: cellhub site serve {escape(str(out))}",
        highlight=False,
    )


@app.command()
def serve(
    folder: Path = typer.Argument(..., help="a folder written by cellhub site build"),
    port: int = typer.Option(8000, help="port to listen on"),
    host: str = typer.Option("127.0.0.1", help="address to bind (default: this machine only)"),
) -> None:
    """Serve a built site over HTTP until interrupted (Ctrl-C)."""
    from hub.site import site_server

    server = site_server(folder, port, host)
    console.print(
        f"serving {escape(str(folder))} at http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)", highlight=False
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
