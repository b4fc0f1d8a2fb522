"""Where per-sample work runs: a local process pool, or a Dask distributed cluster.

:func:`map_samples` is what every per-sample job calls (import and build, validation with its statistics). The
executor it runs on is, first found: its ``executor=`` argument; the one :func:`use_executor` set for the block
(the ``executor=`` of :func:`hub.curate.build_dataset` and the others; ``cellhub ... --scheduler tcp://HOST:PORT``
or ``$CELLHUB_SCHEDULER`` on the command line); else a local process pool of ``workers=`` (or
``$CELLHUB_WORKERS``) processes.

On a Dask cluster the workers import ``hub`` themselves and read and write the paths they are given, so those paths
must be storage every worker reaches (a shared folder). A task whose worker dies is run again on another worker
(Dask's own retry); the per-sample writers make that safe (a sample is written beside its place and renamed in).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from hub._progress import progress_bar
from hub.errors import CellHubError

T = TypeVar("T")
_current: ContextVar[Executor | None] = ContextVar("cellhub_executor", default=None)


def default_workers() -> int:
    return int(os.environ.get("CELLHUB_WORKERS", 0)) or min(os.cpu_count() or 1, 8)


@contextmanager
def dask_executor(scheduler: str) -> Iterator[Executor]:
    """A ``concurrent.futures`` executor on the Dask cluster whose scheduler listens at ``scheduler``
    (``tcp://HOST:PORT``), open for the block."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of the hub
        raise CellHubError("--scheduler needs Dask distributed (pip install distributed)") from None
    try:
        client = Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise CellHubError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()


@contextmanager
def use_executor(executor: Executor | str | None) -> Iterator[Executor | None]:
    """Run the :func:`map_samples` calls of the block on ``executor``: a ``concurrent.futures.Executor`` (e.g. a
    Dask ``client.get_executor()``) or a Dask scheduler's address (a client is opened for the block and closed
    after). ``None`` changes nothing: the enclosing block's executor, else the local pool."""
    if executor is None:
        yield _current.get()
        return
    if isinstance(executor, str):
        with dask_executor(executor) as ex, use_executor(ex):
            yield ex
        return
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)


def map_samples(
    fn: Callable[[Any], T],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    description: str = "samples",
    executor: Executor | None = None,
) -> list[T]:
    """``[fn(x) for x in items]`` in order, on ``executor`` (default: the block's, see :func:`use_executor`, else
    a process pool), with a progress bar.

    ``fn`` and the items must be picklable. The first failure cancels the rest and is re-raised.
    """
    items = list(items)
    executor = executor or _current.get()
    workers = workers or default_workers()
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(items))
        if executor is None and (workers == 1 or len(items) <= 1):
            out = []
            for x in items:
                out.append(fn(x))
                bar.advance(task)
            return out
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=workers)
        futures = []
        try:
            futures = [pool.submit(fn, x) for x in items]
            results = []
            for f in futures:
                results.append(f.result())
                bar.advance(task)
            return results
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        finally:
            if own:
                pool.shutdown(wait=True, cancel_futures=True)
