"""hub.serve's keep-alive server that answers the first N GET requests and then holds every later one.

Used to interrupt a pull at a known point: ``python tests/stalling_server.py FOLDER PORT N``.
"""

import sys
import threading
from functools import partial
from http.server import ThreadingHTTPServer

from hub.serve import KeepAliveHandler

served = 0
lock = threading.Lock()
never = threading.Event()


class StallingHandler(KeepAliveHandler):
    def do_GET(self):
        global served
        with lock:
            served += 1
            stall = served > limit
        if stall:
            never.wait()
        super().do_GET()


if __name__ == "__main__":
    folder, port, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(StallingHandler, directory=folder))
    server.daemon_threads = True
    server.serve_forever()
