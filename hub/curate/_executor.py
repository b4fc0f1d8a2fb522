"""Map a per-sample function over work items: a local process pool now, any executor later."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

from hub._progress import progress_bar

T = TypeVar("T")


def default_workers() -> int:
    return int(os.environ.get("CELLHUB_WORKERS", 0)) or min(os.cpu_count() or 1, 8)


def map_samples(
    fn: Callable[[Any], T],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    description: str = "samples",
    executor: Executor | None = None,
) -> list[T]:
    """``[fn(x) for x in items]`` in order, on ``executor`` (default: a process pool), with a progress bar.

    ``fn`` and the items must be picklable. The first failure cancels the rest and is re-raised.
    """
    items = list(items)
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
