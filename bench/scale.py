"""Scale: a dataset of up to 16,000 real tiles built on 1 and 2 Dask workers, then published, pulled, streamed
and loaded, at growing sizes, to see how each cost grows and whether memory stays flat.

Workload: non-overlapping 32x32 tiles of BBBC039's real U2OS fields (the mirror's 50 fields of 520x696 px,
16-bit, with their nucleus masks, give 16,800; no synthetic pixels), each tile's nuclei relabelled 1..N, grouped
by well like the bbbc039 recipe, split stratified-group (val 0.15, test 0.2). The first N tiles in field order
make the size-N dataset. For each N and each worker count, one child process (so that peak memory is that run's
own):
  - build: ``hub.curate.import_dataset`` on a fresh ``distributed.LocalCluster`` of W worker processes, one
    thread each (conversion, validation, statistics: the whole build); samples/s, and per worker;
  - for the 2-worker build of each N: publish into a registry folder, serve it with ``python -m hub.serve`` on
    loopback, ``pull`` it whole into an empty cache (files/s), stream it (``stream_dataset``, every test sample
    read once: fetched, verified, decoded) and load it (an epoch over every train sample through
    ``SegmentationDataset`` and a torch DataLoader, batch 64, from the pulled copy);
  - peak memory: the largest resident set of the client and of any worker (``ru_maxrss``).
The base anchor is the one-worker build of the same N in the same run.

    .venv/bin/python bench/scale.py [--sizes 1000 4000 16000] [--workers 1 2] [--source MIRROR]

Ends with ``RATIO build_2_vs_1_workers <2-worker samples/s / 1-worker samples/s at the largest N>`` (target
>= 1.7), ``RATIO build_growth <seconds per sample at the largest N / at the smallest>`` (1.0 = linear), the same
for pull, stream and load, and ``RATIO memory_growth <peak worker memory at the largest N / at the smallest>``
(1.0 = flat).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import distributed
import numpy as np
from skimage.segmentation import relabel_sequential
from torch.utils.data import DataLoader

from hub.cards import DatasetCard
from hub.config import data_mirror
from hub.curate import publish_dataset
from hub.curate._build import import_dataset
from hub.curate._importer import Importer
from hub.curate._sample import SampleData
from hub.curate.importers.bbbc import BBBC
from hub.curate.recipe import load_recipe
from hub.curate.splits import SplitSpec
from hub.data import SegmentationDataset
from hub.errors import CellHubError
from hub.registry import Registry, pull, stream_dataset

os.environ["CELLHUB_NO_PROGRESS"] = "1"
TILE = 32  # BBBC039's 50 fields of 520 x 696 px give 16,800 tiles
NAME = "bbbc039-tiles"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


@dataclass
class Tiles(Importer):
    """The first ``n`` TILE x TILE tiles of the bbbc039 fields, in field order."""

    base: Any = None
    n: int = 0

    def scan(self) -> list[tuple[Any, int, int]]:
        fields = self.base.scan()
        height, width = self.base.load(fields[0]).image.shape[-2:]  # every BBBC039 field is 520 x 696
        grid = [(y, x) for y in range(0, height - TILE + 1, TILE) for x in range(0, width - TILE + 1, TILE)]
        items = [(f, y, x) for f in fields for y, x in grid]
        if len(items) < self.n:
            raise SystemExit(f"only {len(items)} tiles of {TILE} px in {self.source}")
        return items[: self.n]

    def describe(self, item) -> str:
        return f"{item[0][1]} at y={item[1]}, x={item[2]}"

    def load(self, item) -> SampleData:
        field, y, x = item
        s = _FIELDS.get(field[0])
        if s is None:  # tiles of one field come in a row: keep the last few decoded fields in this worker
            s = _FIELDS[field[0]] = self.base.load(field)
            while len(_FIELDS) > 4:
                _FIELDS.pop(next(iter(_FIELDS)))
        window = (..., slice(y, y + TILE), slice(x, x + TILE))
        labels = relabel_sequential(s.labels["instances"][window])[0]
        return SampleData(
            id=f"{s.id}_y{y:03d}_x{x:03d}",
            image=np.ascontiguousarray(s.image[window]),
            axes=s.axes,
            labels={"instances": labels},
            label_attrs={"instances": {"meaning": "instance", "objects": int(labels.max())}},
            group=s.group,
            source=s.id,
            region=[y, x, y + TILE, x + TILE],
        )


_FIELDS: dict[str, SampleData] = {}


def tiles(source: Path, n: int) -> tuple[Tiles, DatasetCard, SplitSpec]:
    """The importer, card and split of the size-``n`` tile dataset."""
    recipe, card, _ = load_recipe("bbbc039")
    base = BBBC(source=source / recipe.source / recipe.input, **recipe.options)
    card = card.model_copy(update={"name": NAME, "version": f"0.{n}.0", "title": f"{n} tiles of BBBC039"})
    return Tiles(source=base.source, base=base, n=n), card, recipe.split


def _files(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _serve_pull_stream_load(tmp: Path, card: DatasetCard, out: dict[str, Any]) -> None:
    """Publish the built dataset, serve it on loopback, pull, stream and load it; timings into ``out``."""
    from pull import serve  # bench/ is on the path: this script's folder

    publish_dataset(Registry(tmp / "registry"), tmp / "built")
    proc, url = serve(tmp / "registry", "hub")
    try:
        os.environ["CELLHUB_CACHE"] = str(tmp / "pulled")
        start = time.perf_counter()
        local = pull("datasets", f"{NAME}@{card.version}", Registry(url)).path
        out["pull_s"] = time.perf_counter() - start
        os.environ["CELLHUB_CACHE"] = str(tmp / "streamed")
        start = time.perf_counter()
        streamed = stream_dataset(f"{NAME}@{card.version}", Registry(url))
        test = streamed.ids("test")
        for sid in test:
            image = streamed.image(sid)
            image.array()[...], image.label("instances")[...]
        out["stream_s"], out["streamed"] = time.perf_counter() - start, len(test)
    finally:
        proc.kill()
    train = SegmentationDataset(local, "train")
    start = time.perf_counter()
    for _ in DataLoader(train, batch_size=64):
        pass
    out["load_s"], out["loaded"] = time.perf_counter() - start, len(train)


def one_run(n: int, workers: int, source: Path, serve_too: bool) -> dict:
    """One build of ``n`` tiles on ``workers`` Dask workers (and, if ``serve_too``, its pull, stream and load)."""
    importer, card, split = tiles(source, n)
    out: dict[str, Any] = {"n": n, "workers": workers}
    with tempfile.TemporaryDirectory(prefix="cellhub-bench-scale-") as tmp:
        tmp = Path(tmp)
        with (
            distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            start = time.perf_counter()
            import_dataset(importer, tmp / "built", card, split, executor=client)
            out["build_s"] = time.perf_counter() - start
            out["worker_peak_mb"] = max(
                client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values()
            )
        out["files"], out["bytes"] = _files(tmp / "built")
        if serve_too:
            try:
                _serve_pull_stream_load(tmp, card, out)
            except CellHubError as err:  # e.g. a manifest over the registry client's size cap
                out["serve_error"] = str(err)
    out["client_peak_mb"] = _peak_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--source", type=Path, default=data_mirror(), help="the source mirror (default: $CELLHUB_DATA)")
    ap.add_argument("--one", type=int, nargs=2, metavar=("N", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # the workers import this module as ``scale`` (the tile importer is pickled by reference)
        import scale

        n, w = args.one
        print(json.dumps(scale.one_run(n, w, args.source, serve_too=w == max(args.workers))))
        return
    rows = []
    for n in args.sizes:
        for w in args.workers:
            cmd = [sys.executable, __file__, "--one", str(n), str(w), "--source", str(args.source)]
            cmd += ["--workers", *map(str, args.workers)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"run n={n} workers={w} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"n={n:6d} workers={w}: build {r['build_s']:7.1f} s ({n / r['build_s']:6.1f} samples/s, "
                f"{n / r['build_s'] / w:6.1f} per worker), {r['files']} files, {r['bytes'] / 1e6:.1f} MB, "
                f"peak memory: worker {r['worker_peak_mb']:.0f} MB, client {r['client_peak_mb']:.0f} MB",
                flush=True,
            )
            if "serve_error" in r:
                print(f"{'':22}pull refused: {r['serve_error']}", flush=True)
            if "pull_s" in r:
                print(
                    f"{'':22}pull {r['pull_s']:7.1f} s ({r['files'] / r['pull_s']:6.0f} files/s); stream "
                    f"{r['streamed']} test samples {r['stream_s']:6.1f} s; load {r['loaded']} train samples "
                    f"{r['load_s']:6.1f} s ({r['loaded'] / r['load_s']:6.0f} samples/s)",
                    flush=True,
                )
    by = {(r["n"], r["workers"]): r for r in rows}
    small, large, w1, w2 = min(args.sizes), max(args.sizes), min(args.workers), max(args.workers)
    print(f"RATIO build_{w2}_vs_{w1}_workers {by[large, w1]['build_s'] / by[large, w2]['build_s']:.2f}")
    growth = {  # seconds per unit at the largest size / at the smallest
        "build": ("build_s", "n", w1),
        "pull": ("pull_s", "files", w2),
        "stream": ("stream_s", "streamed", w2),
        "load": ("load_s", "loaded", w2),
    }
    for name, (key, count, w) in growth.items():
        a, b = by[small, w], by[large, w]
        if key in a and key in b:
            print(f"RATIO {name}_growth {(b[key] / b[count]) / (a[key] / a[count]):.2f}")
    print(f"RATIO memory_growth {by[large, w1]['worker_peak_mb'] / by[small, w1]['worker_peak_mb']:.2f}")
    print(f"RATIO client_memory_growth {by[large, w1]['client_peak_mb'] / by[small, w1]['client_peak_mb']:.2f}")


if __name__ == "__main__":
    main()
