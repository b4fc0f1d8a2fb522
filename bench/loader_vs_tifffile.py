"""Training-loader throughput: random 256x256 patches per second through hub.data.SegmentationDataset vs
cropping the same windows out of the source TIFF frames with tifffile.

Workload: the train movie of ctc-gowt1 (Fluo-N2DH-GOWT1/01: 92 frames of 1024x1024 uint8, LZW TIFFs).
  - loader: ``SegmentationDataset(path, "train", patch=256, label="tracks", seed=0)[i]`` at epoch = repeat
    -> normalised float32 image and int64 label tensors, read lazily from level 0 of the OME-Zarr store in whole chunks
    through the loader's per-process cache of decoded chunks (default budget, see hub.data.DEFAULT_CACHE_BYTES);
  - anchor: ``tifffile.imread(<source>/<seq>/t###.tif)[y:y+256, x:x+256]`` for the very same windows (image only);
  - context (not in the ratio): plain zarr-python ``array[t, y:y+256, x:x+256]`` of image and label, same windows.
All run in this one process, single-threaded, the same --patches windows per repeat (new windows each repeat;
the loader's cache starts empty and carries over between repeats as it would between epochs); the order
alternates between repeats. Rates are patches / second; medians over --repeats. The first repeat (cold loader
cache) is printed too.

    .venv/bin/python bench/loader_vs_tifffile.py [--dataset PATH] [--patches 1000] [--repeats 5] [--data DIR]

Without --dataset, ctc-gowt1 is built from its recipe into a temporary folder (about a minute).
Ends with one line: ``RATIO loader_vs_tifffile <loader patches/s / tifffile patches/s>`` (higher = loader faster).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from hub.config import data_mirror
from hub.curate import open_dataset
from hub.curate.recipe import build_dataset, load_recipe
from hub.data import DEFAULT_CACHE_BYTES, SegmentationDataset

PATCH = 256


def source_files(dataset: Path, data: Path) -> dict[str, tuple[Path, int, int]]:
    """sample id -> (source sequence folder, first source frame, digits of the t###.tif names)."""
    ds = open_dataset(dataset)
    recipe, _, _ = load_recipe(ds.card.name)
    out = {}
    for sample_id in ds.ids():
        attrs = ds.image(sample_id).attrs
        folder = recipe.options.get("images") or attrs["sequence"]  # flat CTC layout (e.g. img/) or NN/
        out[sample_id] = (
            data / recipe.source / recipe.input / folder,
            int(attrs["source_frames"][0]),
            int(attrs.get("frame_digits", 3)),
        )
    return out


def tiff_patches(windows, sources) -> None:
    for w in windows:
        folder, first, digits = sources[w.sample]
        frame = tifffile.imread(folder / f"t{first + w.frame:0{digits}d}.tif")
        np.ascontiguousarray(frame[w.y : w.y + PATCH, w.x : w.x + PATCH])


def zarr_patches(windows, dataset: Path) -> None:
    """Context row (the guide's anchor for loaders): plain zarr-python reads of image and label windows."""
    ds = open_dataset(dataset)
    arrays = {s: (ds.image(s).array(0), ds.image(s).label("tracks")) for s in {w.sample for w in windows}}
    for w in windows:
        for a in arrays[w.sample]:
            a[w.frame, w.y : w.y + PATCH, w.x : w.x + PATCH]


def loader_patches(ds: SegmentationDataset) -> None:
    for i in range(len(ds)):
        ds[i]


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, help="a built ctc-gowt1 (or ecoli-lineage) dataset folder")
    ap.add_argument("--data", type=Path, default=data_mirror(), help="source data mirror")
    ap.add_argument("--patches", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    tmp = None
    if args.dataset is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-loader-"))
        print("building ctc-gowt1 into", tmp)
        _, args.dataset = build_dataset("ctc-gowt1", source=args.data, out=tmp / "ctc-gowt1")
    try:
        sources = source_files(args.dataset, args.data)
        ds = SegmentationDataset(
            args.dataset, "train", patch=PATCH, samples_per_epoch=args.patches, label="tracks", seed=0
        )
        for i in range(5):  # both sides read the same pixels
            w = ds.window(i)
            folder, first, digits = sources[w.sample]
            want = tifffile.imread(folder / f"t{first + w.frame:0{digits}d}.tif")[w.y : w.y + PATCH, w.x : w.x + PATCH]
            assert np.array_equal(ds.read_image(w)[0], want), f"window {w} differs from the source TIFF"

        rates: dict[str, list[float]] = {"loader": [], "tifffile": [], "zarr": []}
        for r in range(args.repeats):
            ds.set_epoch(r)
            windows = [ds.window(i) for i in range(len(ds))]
            runs = [
                ("loader", loader_patches, ds),
                ("tifffile", tiff_patches, windows, sources),
                ("zarr", zarr_patches, windows, args.dataset),
            ]
            for name, fn, *fargs in runs if r % 2 == 0 else runs[::-1]:
                rates[name].append(args.patches / timed(fn, *fargs))
            print(
                f"repeat {r}: loader {rates['loader'][-1]:7.1f}   tifffile {rates['tifffile'][-1]:7.1f}   plain zarr "
                f"{rates['zarr'][-1]:7.1f} patches/s   (loader cache {ds.reader.cache.nbytes / 2**20:.0f} MiB)"
            )
        loader, tiff = statistics.median(rates["loader"]), statistics.median(rates["tifffile"])
        print(
            f"dataset {args.dataset}, {args.patches} patches of {PATCH}x{PATCH} per repeat, {args.repeats} repeats,"
            f" loader cache budget {DEFAULT_CACHE_BYTES / 2**20:.0f} MiB"
        )
        print(f"first repeat (cold loader cache): loader/tifffile = {rates['loader'][0] / rates['tifffile'][0]:.2f}")
        print(f"median loader   {loader:8.1f} patches/s (image + label, normalised tensors)")
        print(f"median tifffile {tiff:8.1f} patches/s (image only)")
        print(
            f"context: median plain zarr-python {statistics.median(rates['zarr']):8.1f} patches/s (image + label,"
            " uncached, no normalisation)"
        )
        print(f"RATIO loader_vs_tifffile {loader / tiff:.2f}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
