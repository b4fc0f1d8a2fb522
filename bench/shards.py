"""Sharded vs unsharded OME-Zarr: file counts, registry pull time and training-loader throughput of ctc-gowt1.

Three layouts of the very same pixels (each built from the recipe with the writer's ``_chunking`` swapped in this
process; the split manifest hash comes out the same for all three), 256x256 chunks in every case:
  - array: one shard per array, a movie's 92 frames in one file (the writer's layout since ctc-gowt1 1.1.0);
  - frame: one shard per frame (ctc-gowt1 1.0.x, the layout this benchmark's target is measured against);
  - none:  no sharding codec, one file per chunk (plain Zarr v3).
Each is published into its own temporary registry folder and served by ``python -m hub.serve`` on loopback (as in
``bench/pull.py``). Pull: ``hub.registry.pull`` into an empty cache (in /dev/shm where it exists), --repeats times,
the layouts' order rotating between repeats; medians. Loader: ``SegmentationDataset(pulled, "train",
label="tracks", patch=256, samples_per_epoch=--patches, seed=0)`` through a DataLoader (batch 4, no worker
processes), the detector recipe's reads; first with its chunk cache off (every window is read from the store), then
the default cache's first epoch, --repeats times in rotating order; medians. Ends with ``RATIO`` lines: the array
layout's pull speed-up over the frame and none layouts (target >= 3 over frame), and its uncached loader rate over
the frame layout's.

    .venv/bin/python bench/shards.py [--repeats 5] [--patches 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from pull import SHM, serve
from torch.utils.data import DataLoader

import hub.ome._write as writer
from hub.curate import publish_dataset
from hub.curate.recipe import build_dataset
from hub.data import SegmentationDataset
from hub.registry import Registry, pull

os.environ["CELLHUB_NO_PROGRESS"] = "1"
NAME = "ctc-gowt1"


WHOLE = writer._chunking  # the writer's own layout, kept before any patching


def _frame_shards(shape, axes):
    chunks, shards = WHOLE(shape, axes)
    return chunks, tuple(1 if a == "t" else s for a, s in zip(axes, shards))


def _no_shards(shape, axes):
    return WHOLE(shape, axes)[0], None


LAYOUTS = {"array": WHOLE, "frame": _frame_shards, "none": _no_shards}


def build(layout: str, out: Path) -> Path:
    with mock.patch.object(writer, "_chunking", LAYOUTS[layout]):
        return build_dataset(NAME, out=out, workers=1)[1]  # in this process, so the patched writer is the one used


def epoch(dataset) -> float:
    start = time.perf_counter()
    for _ in DataLoader(dataset, batch_size=4):
        pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--patches", type=int, default=512, help="256x256 train patches per loader epoch")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    dest_root = Path(tempfile.mkdtemp(prefix="bench-shards-", dir=SHM if SHM.is_dir() else tmp))
    servers, rows = [], {}
    try:
        for layout in LAYOUTS:
            t0 = time.perf_counter()
            folder = build(layout, tmp / layout / "built")
            build_s = time.perf_counter() - t0
            ref, _ = publish_dataset(Registry(tmp / layout / "registry"), folder, accept_terms=True)
            proc, url = serve(tmp / layout / "registry", "hub")
            servers.append(proc)
            manifest, _ = Registry(url).manifest("datasets", ref)
            rows[layout] = {
                "registry": Registry(url),
                "ref": str(ref),
                "files": len(manifest["files"]),
                "mb": sum(f["size"] for f in manifest["files"]) / 1e6,
                "build": build_s,
                "pulls": [],
            }
            print(
                f"{layout:5s}: {rows[layout]['files']:5d} files, {rows[layout]['mb']:6.1f} MB, built in {build_s:.1f} s"
            )
        order = list(LAYOUTS)
        for r in range(args.repeats):
            for layout in order[r % 3 :] + order[: r % 3]:
                row = rows[layout]
                os.environ["CELLHUB_CACHE"] = str(dest_root / f"{layout}-{r}")
                t0 = time.perf_counter()
                row["path"] = pull("datasets", row["ref"], row["registry"]).path
                row["pulls"].append(time.perf_counter() - t0)
                if r < args.repeats - 1:
                    shutil.rmtree(dest_root / f"{layout}-{r}")
            print(f"repeat {r}: " + "   ".join(f"{k} {rows[k]['pulls'][-1]:6.2f} s" for k in order))
        loader = dict(label="tracks", patch=256, samples_per_epoch=args.patches, seed=0)
        for r in range(args.repeats):
            for layout in order[r % 3 :] + order[: r % 3]:
                row = rows[layout]
                for key, cache in (("uncached", dict(cache_bytes=0)), ("cached", {})):
                    rate = args.patches / epoch(SegmentationDataset(row["path"], "train", **cache, **loader))
                    row.setdefault(key, []).append(rate)
    finally:
        for proc in servers:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest_root, ignore_errors=True)

    print(f"\n{NAME}, {args.repeats} pulls each from loopback (median), {args.patches} random 256x256 train patches")
    print("layout  files      MB   pull s  files/s   MB/s   loader patches/s (no cache / cached first epoch)")
    for layout, row in rows.items():
        s = statistics.median(row["pulls"])
        print(
            f"{layout:6s} {row['files']:6d} {row['mb']:7.1f} {s:8.2f} {row['files'] / s:8.0f} {row['mb'] / s:6.1f}"
            f"   {statistics.median(row['uncached']):8.1f} / {statistics.median(row['cached']):8.1f}"
        )
    pull_s = {k: statistics.median(v["pulls"]) for k, v in rows.items()}
    print(f"RATIO sharded_pull_vs_frame_shards {pull_s['frame'] / pull_s['array']:.2f}")
    print(f"RATIO sharded_pull_vs_unsharded {pull_s['none'] / pull_s['array']:.2f}")
    load = {k: statistics.median(v["uncached"]) for k, v in rows.items()}
    print(f"RATIO sharded_loader_vs_frame_shards {load['array'] / load['frame']:.2f}")


if __name__ == "__main__":
    main()
