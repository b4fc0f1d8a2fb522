"""Where per-sample work runs: a local process pool, or a Dask distributed cluster.

:func:`map_samples` is what every per-sample job calls (import and build, validation with its statistics). The
executor it runs on is, first found: its ``executor=`` argument; the one :func:`use_executor` set for the block
(the ``executor=`` of :func:`hub.curate.build_dataset` and the others; ``cellhub ... --scheduler tcp://HOST:PORT``
or ``$CELLHUB_SCHEDULER`` on the command line); else a local process pool of ``workers=`` (or
``$CELLHUB_WORKERS``) processes.

On a Dask cluster the workers import ``hub`` themselves and read and write the paths they are given, so those paths
must be storage every worker reaches (a shared folder). A task whose worker dies is run again on another worker
(Dask's own retry); the per-sample writers make that safe (a sample is written beside its place and renamed in).
When a job fails, :func:`map_samples` returns only once none of its tasks still runs on a worker (a Dask task
cancelled after it started runs to its end), so the caller's clean-up is not undone by a late writer.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, Union

from hub._progress import progress_bar
from hub.errors import CellHubError

if TYPE_CHECKING:
    from distributed import Client

#: what an ``executor=`` argument takes (see :func:`use_executor`)
ExecutorLike: TypeAlias = Union[Executor, "Client", str]  # noqa: UP007 - "Client" is imported for type checks only

T = TypeVar("T")
_current: ContextVar[Executor | None] = ContextVar("cellhub_executor", default=None)
IN_FLIGHT = 256  # tasks submitted ahead of the results taken (at least 4 per worker slot): memory stays flat


def default_workers() -> int:
    return int(os.environ.get("CELLHUB_WORKERS", 0)) or min(os.cpu_count() or 1, 8)


_RUNNABLE = {"waiting", "ready", "constrained", "executing", "long-running", "cancelled", "resumed"}


def _runnable_keys(dask_worker) -> list[str]:
    """The keys a worker runs or may still run (a task cancelled while running stays ``cancelled`` to its end)."""
    return [str(ts.key) for ts in dask_worker.state.tasks.values() if ts.state in _RUNNABLE]


class DaskExecutor(Executor):
    """A ``concurrent.futures`` executor on a Dask ``Client`` that can also wait for its cancelled tasks:
    Dask cannot stop a task that has started, and a plain ``client.get_executor()`` forgets it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._executor = client.get_executor(pure=False)
        self._pending: set[str] = set()  # keys of the tasks not done yet
        self._lock = threading.Lock()  # a future's done callback runs in the client's thread

    @property
    def slots(self) -> int:
        """Tasks the cluster runs at once (its workers' threads)."""
        return sum(self.client.nthreads().values()) or 1

    def submit(self, fn, /, *args, **kwargs):
        key = f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"
        with self._lock:
            self._pending.add(key)
        future = self._executor.submit(fn, *args, key=key, **kwargs)
        future.add_done_callback(lambda _: self._done(key))
        return future

    def _done(self, key: str) -> None:
        with self._lock:
            self._pending.discard(key)

    def cancel_and_wait(self, futures: Iterable[Any], timeout: float = 600.0) -> None:
        """Cancel ``futures`` (all submitted here) and return once no worker runs or may still run a task of this
        executor (one that had started has ended), or after ``timeout`` seconds."""
        with self._lock:
            waiting = set(self._pending)  # a cancelled future is done at once, its task maybe not
        for f in futures:
            f.cancel()
        deadline, clear = time.monotonic() + timeout, 0
        while clear < 2 and time.monotonic() < deadline:  # twice in a row: a cancellation may still be on its way
            time.sleep(0.2)
            runnable = self.client.run(_runnable_keys, on_error="return")
            busy = waiting & {k for keys in runnable.values() if isinstance(keys, list) for k in keys}
            clear = 0 if busy else clear + 1


@contextmanager
def dask_executor(scheduler: str) -> Iterator[Executor]:
    """A :class:`DaskExecutor` on the Dask cluster whose scheduler listens at ``scheduler`` (``tcp://HOST:PORT``),
    open for the block."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency of the hub
        raise CellHubError("--scheduler needs Dask distributed (pip install distributed)") from None
    try:
        client = Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise CellHubError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    try:
        yield DaskExecutor(client)
    finally:
        client.close()


@contextmanager
def use_executor(executor: ExecutorLike | None) -> Iterator[Executor | None]:
    """Run the :func:`map_samples` calls of the block on ``executor``: a Dask ``Client``, a Dask scheduler's
    address (a client is opened for the block and closed after) or any ``concurrent.futures.Executor`` (after a
    failure, only a :class:`DaskExecutor`'s started tasks are waited for). ``None`` changes nothing: the
    enclosing block's executor, else the local pool."""
    if executor is not None and not isinstance(executor, Executor | str):
        if not hasattr(executor, "get_executor"):
            raise TypeError(f"not an executor, a Dask client or a scheduler address: {executor!r}")
        executor = DaskExecutor(executor)
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
    """``[fn(x) for x in items]``: :func:`imap_samples` collected into a list."""
    return list(imap_samples(fn, items, workers=workers, description=description, executor=executor))


def imap_samples(
    fn: Callable[[Any], T],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    description: str = "samples",
    executor: Executor | None = None,
) -> Iterator[T]:
    """``fn(x) for x in items``, yielded in order as they are done, on ``executor`` (default: the block's, see
    :func:`use_executor`, else a process pool), with a progress bar. A caller that folds the results as they come
    (statistics, findings) keeps its memory flat however many samples there are.

    ``fn`` and the items must be picklable. At most :data:`IN_FLIGHT` tasks (or 4 per worker slot) are submitted
    ahead of the results taken, so neither the pool's queue nor a Dask scheduler holds a whole million-sample job,
    and a result's task is released as soon as it is taken. The first failure (or the caller leaving the loop)
    cancels the rest and is re-raised once no task of the job still runs (for a :class:`DaskExecutor` or the own
    pool; see the module's note).
    """
    items = list(items)
    executor = executor or _current.get()
    workers = workers or default_workers()
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(items))
        if executor is None and (workers == 1 or len(items) <= 1):
            for x in items:
                yield fn(x)
                bar.advance(task)
            return
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=workers)
        ahead = max(IN_FLIGHT, 4 * (pool.slots if isinstance(pool, DaskExecutor) else workers))
        pending: deque = deque()
        rest = iter(items)
        try:  # a bounded window of tasks ahead of the results: the scheduler never holds the whole job
            pending.extend(pool.submit(fn, x) for x in islice(rest, ahead))
            while pending:
                yield pending.popleft().result()
                bar.advance(task)
                pending.extend(pool.submit(fn, x) for x in islice(rest, 1))
        except BaseException:
            if isinstance(pool, DaskExecutor):
                pool.cancel_and_wait(pending)
            else:
                for f in pending:
                    f.cancel()
            raise
        finally:
            if own:
                pool.shutdown(wait=True, cancel_futures=True)
