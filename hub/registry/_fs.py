"""A registry root URL as an fsspec filesystem, and the few storage operations publish needs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from hub.config import request_timeout
from hub.errors import RegistryError

#: Remote registry URLs opened by this process, latest last (the CLI names the latest when a request times out).
opened_remote: list[str] = []


def _storage_options(url: str) -> dict:
    """Timeouts for the backends that talk to a server: a stalled server fails after ``$CELLHUB_TIMEOUT`` s
    without an answer (to connect, or for the next piece of a response) instead of hanging."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    if protocol in ("http", "https"):
        import aiohttp

        seconds = request_timeout()
        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=seconds,
                                                                   sock_read=seconds)}}
    if protocol in ("s3", "s3a"):  # botocore retries a timed-out request once; s3fs adds no retries of its own
        seconds = request_timeout()
        return {"config_kwargs": {"connect_timeout": seconds, "read_timeout": seconds,
                                  "retries": {"max_attempts": 2, "mode": "standard"}}}
    return {}


def open_root(url: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    """``(filesystem, root path)`` for a local folder, ``s3://``, ``http(s)://`` or ``hf://`` URL.

    S3 endpoints other than AWS come from ``AWS_ENDPOINT_URL`` (botocore reads it), as for any S3 tool.
    HTTP and S3 requests time out after ``$CELLHUB_TIMEOUT`` seconds without an answer.
    """
    url = str(url)
    fs, root = fsspec.core.url_to_fs(url, **_storage_options(url))
    if _protocols(fs) & {"s3", "s3a"}:
        fs.retries = 1  # botocore already retries; s3fs's 5 more would multiply the wait on a stalled server
    if not is_local(fs):
        opened_remote.append(url)
    return fs, root.rstrip("/")


def is_local(fs) -> bool:
    return isinstance(fs, LocalFileSystem)


def _protocols(fs) -> set[str]:
    return set(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else {fs.protocol}


def is_read_only(fs) -> bool:
    return bool(_protocols(fs) & {"http", "https"})


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p != "")


def create_exclusive(fs, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` only if nothing is there, atomically: readers see all of it or nothing,
    and of two concurrent writers exactly one succeeds (the other gets RegistryError)."""
    if is_local(fs):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).write_bytes(data)
        try:
            os.link(tmp, path)  # atomic and fails if the name exists
        except FileExistsError:
            raise RegistryError("already published (another publish committed it first)", path) from None
        finally:
            os.unlink(tmp)
        return
    if _protocols(fs) & {"s3", "s3a"}:
        try:
            fs.pipe_file(path, data, mode="create")  # S3 conditional write: If-None-Match: *
        except FileExistsError:
            raise RegistryError("already published (another publish committed it first)", path) from None
        except OSError as err:
            if "PreconditionFailed" in str(err) or "412" in str(err):
                raise RegistryError("already published (another publish committed it first)", path) from None
            raise
        return
    if fs.exists(path):  # other backends (hf://): commit-level atomicity, check-then-write
        raise RegistryError("already published", path)
    fs.pipe_file(path, data)
