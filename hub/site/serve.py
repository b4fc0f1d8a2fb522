"""``cellhub site serve``: look at a built site locally (hub.serve's keep-alive HTTP server, loopback by default)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path

from hub.errors import NotFound
from hub.serve import static_server


def site_server(folder: str | Path, port: int = 8000, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for the built site in ``folder`` (not started: call ``serve_forever``)."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise NotFound("no index.html: not a built site (run cellhub site build first)", folder)
    return static_server(folder, port, host)
