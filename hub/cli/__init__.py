"""The ``cellhub`` command line: thin Typer commands that parse, call the library and print."""

from hub.cli._app import app, main

__all__ = ["app", "main"]
