"""Streaming from a registry vs training on a local pull: an epoch of random training patches read through
``hub.load_dataset(ref, streaming=True)`` from a web server on loopback vs the same epoch from a pulled copy.

Workload: dsb2018-fluo published into a temporary registry folder, served by ``python -m hub.serve`` (as in
``bench/pull.py``). Both sides iterate ``SegmentationDataset(..., "train", patch=128, samples_per_epoch=N, seed=0)``
through a torch DataLoader (batch 16, no worker processes), so they read the very same patches:
  - local: ``pull`` of the whole version into an empty cache, then the epoch twice (the second is timed);
  - streamed: the tables only, then the first epoch, which fetches and verifies each sample it reads (its time
    is printed beside the pull's), and a second epoch from what the first kept (timed).
Ends with ``RATIO stream_vs_local <streamed epoch s / local epoch s>`` (after the first pass; target <= 1.5) and
``RATIO first_batch_vs_pull <streamed time to the first batch / full pull time>`` (lower: training starts
before a full pull would have finished).

    .venv/bin/python bench/stream.py [--dataset PATH] [--patches 1024]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from pull import serve
from torch.utils.data import DataLoader

from hub.curate import publish_dataset
from hub.curate.recipe import build_dataset
from hub.data import SegmentationDataset
from hub.registry import Registry, pull, stream_dataset

os.environ["CELLHUB_NO_PROGRESS"] = "1"
NAME = "dsb2018-fluo"


def epoch(dataset) -> tuple[float, float]:
    """Seconds to the first batch and for the whole epoch."""
    start = time.perf_counter()
    first = None
    for _ in DataLoader(dataset, batch_size=16):
        first = first or time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="built dsb2018-fluo folder (default: build it, about 30 s)")
    ap.add_argument("--patches", type=int, default=1024, help="patches per epoch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellhub-bench-stream-") as tmp:
        tmp = Path(tmp)
        src = args.dataset or build_dataset(NAME, out=tmp / "built")[1]
        publish_dataset(Registry(tmp / "registry"), src)
        proc, url = serve(tmp / "registry", "hub")
        try:
            loader = dict(patch=128, samples_per_epoch=args.patches, seed=0)
            os.environ["CELLHUB_CACHE"] = str(tmp / "pulled")
            start = time.perf_counter()
            local = pull("datasets", NAME, Registry(url)).path
            pull_s = time.perf_counter() - start
            pulled = SegmentationDataset(local, "train", **loader)
            epoch(pulled)
            _, local_s = epoch(pulled)  # the same loader object on both sides: its chunk cache is warm
            os.environ["CELLHUB_CACHE"] = str(tmp / "streamed")
            start = time.perf_counter()
            streamed = SegmentationDataset(stream_dataset(NAME, Registry(url)), "train", **loader)
            first_batch, first_s = epoch(streamed)
            first_batch += time.perf_counter() - start - first_s  # the tables count too
            _, stream_s = epoch(streamed)
            files = sum(1 for p in (tmp / "pulled").rglob("*") if p.is_file())
        finally:
            proc.kill()
            shutil.rmtree(tmp / "registry", ignore_errors=True)
    print(f"{NAME}: {files} files; an epoch = {args.patches} random 128x128 train patches, batch 16")
    print(f"full pull                     {pull_s:8.2f} s")
    print(f"local epoch (pulled copy)     {local_s:8.2f} s")
    print(f"streamed: first batch         {first_batch:8.2f} s")
    print(f"streamed: first epoch         {first_s:8.2f} s (fetching and verifying what it reads)")
    print(f"streamed: second epoch        {stream_s:8.2f} s")
    print(f"RATIO stream_vs_local {stream_s / local_s:.2f}")
    print(f"RATIO first_batch_vs_pull {first_batch / pull_s:.3f}")


if __name__ == "__main__":
    main()
