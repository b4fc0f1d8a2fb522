"""A static file server for loopback use: Python's threading HTTP server speaking HTTP/1.1 with keep-alive.

Connections stay open between requests, as on any production web server, and Nagle's algorithm is off
(``TCP_NODELAY``): the handler writes headers and body separately, and without it every kept-alive response
would wait for the client's delayed ACK (about 40 ms).

    python -m hub.serve FOLDER [PORT] [HOST]     # serve FOLDER read-only until interrupted
"""

from __future__ import annotations

import argparse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class KeepAliveHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def static_server(folder: str | Path, port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for the files under ``folder`` (not started: call ``serve_forever``); port 0 picks a free one."""
    return ThreadingHTTPServer((host, port), partial(KeepAliveHandler, directory=str(folder)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m hub.serve", description="Serve a folder read-only over HTTP.")
    ap.add_argument("folder")
    ap.add_argument("port", type=int, nargs="?", default=8000)
    ap.add_argument("host", nargs="?", default="127.0.0.1")
    args = ap.parse_args()
    with static_server(args.folder, args.port, args.host) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
