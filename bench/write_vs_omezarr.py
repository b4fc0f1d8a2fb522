"""Conversion throughput: hub.ome.write_image vs ome-zarr-py's write_image used plainly, on the same real images.

Workloads (decoded once, before any timing; only the writing is timed):
  - GOWT1: the 92 frames of Fluo-N2DH-GOWT1/01 (1024x1024 uint8), each written as its own 2-D image  [RATIO]
  - DSB:   the first --dsb DSB2018 fluorescence images (channel 0 of the grey RGBA PNG), 2-D images  [info]

Anchor: ``ome_zarr.writer.write_image(image, zarr.open_group(path, mode="w-", zarr_format=3), axes="yx")`` with
its defaults (scale_factors (2, 4, 8, 16) -> 5 levels, dask, zstd). The hub writes fewer levels (while the small
side stays >= 256 px: 3 for 1024x1024), so a second anchor row with the hub's level count
(``scale_factors`` = (2, 4, ...) to match) is printed for context; the RATIO line uses the plain anchor.

Each repeat writes the whole workload into a fresh temporary folder (deleted afterwards, outside the timing);
writers alternate in order between repeats. Throughput = raw image bytes / median seconds.

    .venv/bin/python bench/write_vs_omezarr.py [--repeats 5] [--dsb 40] [--data DIR] [--tmp DIR]

Ends with one line: ``RATIO write_vs_omezarr <hub MB/s / ome-zarr-py MB/s>`` (GOWT1; higher = hub faster).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
import zarr

from hub.config import data_mirror
from hub.ome import pyramid_levels, write_image

warnings.filterwarnings("ignore", category=DeprecationWarning)  # ome_zarr.writer's Scaler default at import
from ome_zarr.writer import write_image as omezarr_write_image  # noqa: E402

Writer = Callable[[Path, np.ndarray], None]
HUB, PLAIN, MATCHED = "hub write_image", "ome-zarr-py write_image", "ome-zarr-py (hub's levels)"


def hub_writer(path: Path, image: np.ndarray) -> None:
    write_image(path, image, "yx")


def omezarr_plain(path: Path, image: np.ndarray) -> None:
    omezarr_write_image(image, zarr.open_group(str(path), mode="w-", zarr_format=3), axes="yx")


def omezarr_matched(path: Path, image: np.ndarray) -> None:
    """ome-zarr-py with the hub's number of pyramid levels (context only)."""
    n = pyramid_levels(image.shape[-2:])
    factors = tuple(2**i for i in range(1, n))
    # an empty tuple means one level; None would mean ome-zarr-py's default (2, 4, 8, 16)
    omezarr_write_image(image, zarr.open_group(str(path), mode="w-", zarr_format=3), axes="yx", scale_factors=factors)


def load_gowt1(data: Path) -> list[np.ndarray]:
    files = sorted((data / "tracking/Fluo-N2DH-GOWT1/01").glob("t*.tif"))
    if len(files) != 92:
        sys.exit(f"{data}: expected 92 GOWT1 frames in tracking/Fluo-N2DH-GOWT1/01, found {len(files)}")
    return [tifffile.imread(f) for f in files]


def load_dsb(data: Path, n: int) -> list[np.ndarray]:
    root = data / "segmentation/dsb2018-fluo/stage1_train"
    ids = sorted(p.name for p in root.iterdir() if p.is_dir())[:n]
    return [np.ascontiguousarray(iio.imread(root / i / "images" / f"{i}.png")[..., 0]) for i in ids]


def time_once(writer: Writer, images: list[np.ndarray], tmp_root: Path | None) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench-write-", dir=tmp_root))
    try:
        t0 = time.perf_counter()
        for i, image in enumerate(images):
            writer(folder / f"{i:04d}.zarr", image)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(
    writers: dict[str, Writer], images: list[np.ndarray], repeats: int, tmp_root: Path | None
) -> dict[str, float]:
    """Median seconds per writer over ``repeats`` runs of the whole workload (after one warm-up image each)."""
    for w in writers.values():
        time_once(w, images[:1], tmp_root)
    runs: dict[str, list[float]] = {name: [] for name in writers}
    names = list(writers)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(time_once(writers[name], images, tmp_root))
    for name, secs in runs.items():
        print(f"    {name:<28} runs (s): " + " ".join(f"{s:.3f}" for s in secs))
    return {name: statistics.median(secs) for name, secs in runs.items()}


def report(title: str, images: list[np.ndarray], medians: dict[str, float]) -> float:
    mb = sum(im.nbytes for im in images) / 1e6
    print(f"  {title}: {len(images)} images, {mb:.1f} MB raw")
    for name, sec in medians.items():
        print(f"    {name:<28} median {sec:8.3f} s  {mb / sec:8.1f} MB/s  {len(images) / sec:8.1f} images/s")
    ratio = medians[PLAIN] / medians[HUB]  # = hub MB/s / ome-zarr-py MB/s
    print(f"    ratio hub / ome-zarr-py (plain):   {ratio:.2f}x")
    if MATCHED in medians:
        print(f"    ratio hub / ome-zarr-py (matched): {medians[MATCHED] / medians[HUB]:.2f}x")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dsb", type=int, default=40, help="number of DSB2018 images (0 = skip)")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default $CELLHUB_DATA)")
    ap.add_argument("--tmp", type=Path, default=None, help="where temporary outputs go (default system temp)")
    args = ap.parse_args()
    data = args.data or data_mirror()

    writers: dict[str, Writer] = {HUB: hub_writer, PLAIN: omezarr_plain, MATCHED: omezarr_matched}
    print(f"write_vs_omezarr: zarr {zarr.__version__}, repeats {args.repeats}, data {data}")

    gowt1 = load_gowt1(data)
    print("GOWT1 Fluo-N2DH-GOWT1/01 (1024x1024 uint8, 2-D images)")
    ratio = report("GOWT1", gowt1, measure(writers, gowt1, args.repeats, args.tmp))

    if args.dsb > 0:
        dsb = load_dsb(data, args.dsb)
        print("DSB2018 fluorescence (channel 0, 2-D images of mixed size)")
        report("DSB2018", dsb, measure(writers, dsb, args.repeats, args.tmp))

    print(f"RATIO write_vs_omezarr {ratio:.3f}")


if __name__ == "__main__":
    main()
