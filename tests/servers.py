"""Real servers on loopback for registry tests: a static web server and an S3-compatible server (moto)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import s3fs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-500:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {seconds} s")


@contextlib.contextmanager
def static_http_server(root: Path, keep_alive: bool = False, stall_after: int | None = None):
    """Serve ``root`` read-only over HTTP on 127.0.0.1 and yield the URL: Python's threading http.server
    (HTTP/1.0, a connection per request) or, with ``keep_alive``, hub.serve (HTTP/1.1 keep-alive).
    With ``stall_after=N``, hub.serve's server answers N GET requests and holds every later one."""
    port = free_port()
    log = root.parent / f"http-{port}.log"  # a file, not a pipe: a full pipe would block the server
    if stall_after is not None:  # + 1: the readiness probe below is a GET too
        args = [str(Path(__file__).with_name("stalling_server.py")), str(root), str(port), str(stall_after + 1)]
    elif keep_alive:
        args = ["-m", "hub.serve", str(root), str(port)]
    else:
        args = ["-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(root)]
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + "/", proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def s3_server(log_dir: Path):
    """An S3-compatible server (moto in server mode) on 127.0.0.1; yields its endpoint URL.

    Sets the AWS_* variables that botocore/s3fs read, as s3fs's own test suite does.
    """
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    log = log_dir / f"moto-{port}.log"
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=open(log, "wb")
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # fsspec caches filesystems by URL: never reuse one bound to another server
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        _wait(endpoint + "/", proc, log)
        yield endpoint
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3fs.S3FileSystem.clear_instance_cache()
        proc.terminate()
        proc.wait(10)
