"""A registry root URL as an fsspec filesystem, and the few storage operations publish needs."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.asyn import sync
from fsspec.implementations.local import LocalFileSystem

from hub.config import request_timeout
from hub.errors import IntegrityError, RegistryError

#: Remote registry URLs opened by this process, latest last (the CLI names the latest when a request times out).
opened_remote: list[str] = []


def last_remote() -> str | None:
    """The remote registry URL this process opened last (None if it opened none)."""
    return opened_remote[-1] if opened_remote else None


def _storage_options(url: str) -> dict[str, Any]:
    """Timeouts for the backends that talk to a server: a stalled server fails after ``$CELLHUB_TIMEOUT`` s
    without an answer (to connect, or for the next piece of a response) instead of hanging."""
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    if protocol in ("http", "https"):
        import aiohttp

        seconds = request_timeout()
        return {
            "client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)}
        }
    if protocol in ("s3", "s3a"):  # botocore retries a timed-out request once; s3fs adds no retries of its own
        seconds = request_timeout()
        return {
            "config_kwargs": {
                "connect_timeout": seconds,
                "read_timeout": seconds,
                "retries": {"max_attempts": 2, "mode": "standard"},
            }
        }
    return {}


def open_root(url: str | Path) -> tuple[AbstractFileSystem, str]:
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


def is_local(fs: AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _protocols(fs: AbstractFileSystem) -> set[str]:
    return set(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else {fs.protocol}


def is_read_only(fs: AbstractFileSystem) -> bool:
    return bool(_protocols(fs) & {"http", "https"})


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p != "")


def create_exclusive(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` only if nothing is there, atomically: readers see all of it or nothing,
    and of two concurrent writers exactly one succeeds (the other gets RegistryError). Finding the very same
    bytes there counts as success: a retried request whose first attempt committed, or an identical record."""
    try:
        _create(fs, path, data)
    except RegistryError:
        try:
            same = read_capped(fs, path, len(data)) == data
        except (OSError, IntegrityError):
            same = False
        if not same:
            raise


def _create(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    taken = RegistryError("already published (another publish committed it first)", path)
    if is_local(fs):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).write_bytes(data)
        try:
            os.link(tmp, path)  # atomic and fails if the name exists
        except FileExistsError:
            raise taken from None
        finally:
            os.unlink(tmp)
        return
    if _protocols(fs) & {"s3", "s3a"}:
        try:
            fs.pipe_file(path, data, mode="create")  # S3 conditional write: If-None-Match: *
        except FileExistsError:
            raise taken from None
        except OSError as err:
            if "PreconditionFailed" in str(err) or "412" in str(err):
                raise taken from None
            raise
        return
    if fs.exists(path):  # other backends (hf://): commit-level atomicity, check-then-write
        raise taken
    fs.pipe_file(path, data)


BLOCK = 1 << 20


def put_hashed(fs: AbstractFileSystem, local: Path, target: str) -> tuple[int, str]:
    """Copy the local file ``local`` to ``target`` on ``fs``, hashing the very bytes sent (one read); returns
    ``(size, SHA-256)`` of what was uploaded."""
    digest, size = hashlib.sha256(), 0
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    with open(local, "rb") as src, fs.open(target, "wb") as out:
        while block := src.read(BLOCK):
            digest.update(block)
            out.write(block)
            size += len(block)
    return size, digest.hexdigest()


async def stream_async(
    fs: AbstractFileSystem, path: str, limit: int, size_hint: int | None = None
) -> AsyncIterator[bytes]:
    """Yield the bytes of ``path`` on an async filesystem (HTTP, S3) block by block, streamed, and refuse
    (:class:`IntegrityError`) as soon as more than ``limit`` bytes arrive: a registry cannot make a reader hold
    more than it was promised."""
    f = await fs.open_async(path, "rb", size=size_hint)  # HTTP: a known size skips the HEAD request
    try:
        total = 0
        while block := await f.read(BLOCK):
            total += len(block)
            if total > limit:
                raise IntegrityError(
                    f"the registry sends more than the {limit:,} bytes expected: altered or hostile; refused", path
                )
            yield block
    finally:
        response = getattr(f, "r", None)
        if response is not None and hasattr(response, "close"):
            response.close()  # drops an aborted download's connection (s3fs's close leaves it open)
        await f.close()


def stream(fs: AbstractFileSystem, path: str, limit: int) -> Iterator[bytes]:
    """Like :func:`stream_async`, for filesystems without async (local, hf://)."""
    with fs.open(path, "rb") as f:
        total = 0
        while block := f.read(BLOCK):
            total += len(block)
            if total > limit:
                raise IntegrityError(f"larger than the {limit:,} bytes expected: altered or hostile; refused", path)
            yield block


def read_capped(fs: AbstractFileSystem, path: str, limit: int) -> bytes:
    """The whole of a (metadata) file from any filesystem, refused past ``limit`` bytes."""
    if getattr(fs, "async_impl", False):

        async def collect() -> bytes:
            return b"".join([b async for b in stream_async(fs, path, limit)])

        data: bytes = sync(fs.loop, collect)
        return data
    return b"".join(stream(fs, path, limit))


def write_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Replace ``path`` so that readers see the old bytes or the new ones, never a torn file (a local rename;
    object stores replace whole objects)."""
    if is_local(fs):
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)
