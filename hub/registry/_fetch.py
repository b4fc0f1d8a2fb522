"""Verified downloads: each file streamed to a ``.part`` beside its place with a hard cap at the size its manifest
entry gives, hashed as it arrives, and moved into place only when its SHA-256 matches (:func:`fetch_files`).

From async filesystems (HTTP, S3) every file is fetched by one event loop (fsspec's), ``workers`` requests in
flight; other filesystems (local, hf://) use a thread pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from fsspec import AbstractFileSystem
from fsspec.asyn import sync

from hub.errors import IntegrityError
from hub.registry._fs import stream, stream_async
from hub.registry.manifest import PART


def _part(local: Path) -> Path:
    """Where ``local`` is downloaded to before it is verified (one name per process and thread: readers that
    stream the same file at once each verify their own copy, and the last rename wins with the same bytes)."""
    return local.with_name(f"{local.name}.{os.getpid()}-{threading.get_ident()}{PART}")


def _check(local: Path, want: dict[str, Any], got: str) -> None:
    """Move a downloaded ``local``.part into place if its SHA-256 is the manifest's; else remove it and raise."""
    part = _part(local)
    if got != want["sha256"]:
        part.unlink(missing_ok=True)
        raise IntegrityError(
            f"SHA-256 {got[:16]}... differs from {want['sha256'][:16]}... in the manifest; "
            f"the file on the registry was altered, nothing kept",
            local,
        )
    part.rename(local)


def new_file(path: Path) -> BinaryIO:
    """A new file opened for writing at ``path``, never through a link planted there (whatever is at ``path``
    is removed first)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644), "wb")


THREAD_BLOCK = 1 << 18  # blocks of at least this size are hashed and written off the event loop


class _Sink:
    """Writes a download to ``local``.part, hashing as it goes."""

    def __init__(self, local: Path):
        self.local, self.hash = local, hashlib.sha256()
        self.fh = new_file(_part(local))

    def write(self, block: bytes) -> None:
        self.hash.update(block)
        self.fh.write(block)

    def close(self, want: dict[str, Any] | None) -> None:
        """Verify and keep (``want``: the manifest entry), or discard (``None``: the download failed)."""
        self.fh.close()
        if want is None:
            _part(self.local).unlink(missing_ok=True)
        else:
            _check(self.local, want, self.hash.hexdigest())


def _fetch_threads(
    fs: AbstractFileSystem,
    jobs: list[tuple[str, Path, dict[str, Any]]],
    workers: int,
    done: Callable[[dict[str, Any]], None],
) -> None:
    def get(job: tuple[str, Path, dict[str, Any]]) -> None:
        url, local, want = job
        sink = _Sink(local)
        try:
            for block in stream(fs, url, want["size"]):
                sink.write(block)
        except BaseException:
            sink.close(None)
            raise
        sink.close(want)
        done(want)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(get, jobs))


async def _fetch_async(
    fs: AbstractFileSystem,
    jobs: list[tuple[str, Path, dict[str, Any]]],
    workers: int,
    done: Callable[[dict[str, Any]], None],
) -> None:
    limit = asyncio.Semaphore(workers)

    async def get(url: str, local: Path, want: dict[str, Any]) -> None:
        async with limit:
            sink = _Sink(local)
            try:
                async for block in stream_async(fs, url, want["size"], size_hint=want["size"]):
                    if len(block) < THREAD_BLOCK:
                        sink.write(block)
                    else:  # hashing and writing release the GIL: big files go on while the loop fetches others
                        await asyncio.to_thread(sink.write, block)
            except BaseException:
                sink.close(None)
                raise
            sink.close(want)
        done(want)

    async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
        for job in jobs:
            group.create_task(get(*job))


def fetch_files(
    fs: AbstractFileSystem,
    jobs: list[tuple[str, Path, dict[str, Any]]],
    workers: int,
    done: Callable[[dict[str, Any]], None],
) -> None:
    """Download and verify ``(url, local path, manifest entry)`` jobs, ``workers`` at a time: each is streamed
    with a hard cap at the manifest's size (a registry cannot make a pull read more), hashed as it arrives and
    moved into place only when its SHA-256 matches."""
    if not getattr(fs, "async_impl", False):
        return _fetch_threads(fs, jobs, workers, done)
    try:
        sync(fs.loop, _fetch_async, fs, jobs, workers, done)
    except ExceptionGroup as group:
        raise group.exceptions[0] from None
