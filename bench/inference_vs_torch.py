"""Inference overhead: ``Model.maps`` (normalisation + tiled forward with halo + stitching) vs a plain torch forward
pass of the same network over the same image in one piece.

Workload: a deep-watershed U-Net (resnet18 encoder, 4 stages, the hub's default family options, random weights:
speed does not depend on them) on real GOWT1 frames (1024x1024 uint8) from ctc-gowt1's test movie.
  - hub: ``model.maps(frame)`` -> per-image percentile normalisation, tiles of up to 1024 px with a 64-px halo
    (the card defaults; this frame fits one tile), softmax, stitched (3, 1024, 1024) float32 probabilities;
  - anchor: ``net(x)`` on the whole normalised 1024x1024 frame in one call, then softmax (what a user with enough
    memory would write by hand; no tiling, so it cannot bound memory on large images).
Same process, same torch threads, alternating order; medians over --repeats of --frames frames each.

    .venv/bin/python bench/inference_vs_torch.py [--dataset PATH] [--frames 4] [--repeats 5] [--data DIR]

Without --dataset, ctc-gowt1 is built from its recipe into a temporary folder (about a minute).
Ends with: ``RATIO inference_vs_torch <torch seconds / hub seconds>`` (1.0 = no overhead; tiling recomputes the
halo, so expect somewhat below 1).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hub.cards import (
    Architecture,
    InputChannel,
    Inputs,
    ModelCard,
    Normalization,
    Outputs,
    Weights,
)
from hub.config import data_mirror
from hub.curate import open_dataset
from hub.curate.recipe import build_dataset
from hub.models import Model, create_family


def make_model() -> Model:
    arch = Architecture(family="deep-watershed", backbone="resnet18")
    family = create_family(arch.family, arch.options)
    torch.manual_seed(0)
    net = family.build(arch, 1, 1)
    card = ModelCard(
        name="bench-dw",
        version="0.0.0",
        title="bench",
        task="instance-segmentation",
        architecture=arch,
        inputs=Inputs(
            channels=[InputChannel(name="GFP", modality="fluorescence")],
            normalization=Normalization(mode="image-percentile", low=1, high=99.8),
            size_multiple=net.size_multiple,
        ),
        outputs=Outputs(meaning="instances", axes="yx"),
        weights=Weights(sha256="0" * 64, size=1, parameters=1),
    )
    return Model(card, net, family)


@torch.inference_mode()
def plain(model: Model, frames: list[np.ndarray]) -> None:
    for f in frames:
        x = torch.from_numpy(model.normalize(f[None]))[None]
        model.net(x).softmax(1).numpy()


def hub(model: Model, frames: list[np.ndarray]) -> None:
    for f in frames:
        model.maps(f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", type=Path, default=data_mirror())
    args = ap.parse_args()
    tmp = None
    if args.dataset is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-infer-"))
        _, args.dataset = build_dataset("ctc-gowt1", source=args.data, out=tmp / "ctc-gowt1")
    try:
        ds = open_dataset(args.dataset)
        movie = ds.image(ds.ids("test")[0]).array()
        frames = [np.asarray(movie[t]) for t in range(args.frames)]
        model = make_model()
        assert model.maps(frames[0]).shape == _whole(model, frames[0]).shape == (3, *frames[0].shape)
        times = {"hub": [], "torch": []}
        for r in range(args.repeats):
            order = [("hub", hub), ("torch", plain)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                fn(model, frames)
                times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"torch threads: {torch.get_num_threads()}; {args.frames} frames of {frames[0].shape}")
        for k, v in med.items():
            print(f"{k:>6}: {v:.3f} s  ({args.frames / v:.2f} frames/s)")
        print(f"RATIO inference_vs_torch {med['torch'] / med['hub']:.2f}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@torch.inference_mode()
def _whole(model: Model, frame: np.ndarray) -> np.ndarray:
    return model.net(torch.from_numpy(model.normalize(frame[None]))[None]).softmax(1)[0].numpy()


if __name__ == "__main__":
    main()
