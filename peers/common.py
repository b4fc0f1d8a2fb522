"""What every peer script shares: the hub's hand-off folder (layout: ``hub/peers/handoff.py``) read with numpy
and tifffile only, the run report, and the command line. Imported by the scripts of ``peers/<tool>/``, which run
in the tool's own environment, never in the hub's."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import tifffile


def arguments(description: str) -> argparse.Namespace:
    """``--data DIR --out DIR --report FILE [--options JSON] [--quick]``: the contract of every peer script."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, required=True, help="the hub's hand-off folder")
    ap.add_argument("--out", type=Path, required=True, help="prediction folder to write (benchmark format)")
    ap.add_argument("--report", type=Path, required=True, help="run report (JSON) to write")
    ap.add_argument("--options", default="{}", help="JSON object of the run's options (peer.yaml)")
    ap.add_argument("--quick", action="store_true", help="smoke test: a few steps, not the peer's result")
    args = ap.parse_args()
    args.options = json.loads(args.options)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def threads() -> int:
    return int(os.environ.get("PEER_THREADS") or os.cpu_count() or 1)


class Handoff:
    """The hand-off folder: ``meta`` (benchmark.json) and readers for each split."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "benchmark.json").read_text())

    def ids(self, split: str) -> list[str]:
        return list(self.meta["splits"][split])

    @property
    def scored(self) -> str:
        return self.meta["scored"]

    def image(self, split: str, sid: str) -> np.ndarray:
        """(C, Y, X), or (T, C, Y, X) for a movie."""
        return tifffile.imread(self.folder / split / f"{sid}.tif")

    def labels(self, split: str, sid: str) -> np.ndarray:
        return tifffile.imread(self.folder / split / f"{sid}.labels.tif")

    def target(self, split: str, sid: str) -> np.ndarray:
        return tifffile.imread(self.folder / split / f"{sid}.target.tif")

    def table(self, split: str, name: str) -> list[dict]:
        with open(self.folder / split / name, newline="") as f:
            return list(csv.DictReader(f))

    def file(self, split: str, name: str) -> Path:
        return self.folder / split / name


class Clock:
    """Wall time of the phases of a run, for the report."""

    def __init__(self):
        self.times: dict[str, float] = {}

    def time(self, phase: str):
        clock = self

        class _Phase:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                clock.times[phase] = clock.times.get(phase, 0.0) + time.perf_counter() - self.start

        return _Phase()


def write_report(args: argparse.Namespace, package: str, clock: Clock, n_predicted: int, **notes) -> None:
    """The run report the hub reads back: tool version, phase times, device, options and the tool's notes."""
    report = {
        "tool": package,
        "tool_version": version(package),
        "train_s": round(clock.times.get("train", 0.0), 1),
        "predict_s": round(clock.times.get("predict", 0.0), 1),
        "predicted": n_predicted,
        "device": f"cpu ({threads()} threads, {platform.machine()})",
        "options": args.options,
        "notes": notes,
    }
    args.report.write_text(json.dumps(report, indent=1, default=float))


def write_labels(out: Path, sid: str, labels: np.ndarray) -> None:
    """One instance label image of the prediction folder (``<id>.tif``, as ``cellhub benchmarks eval`` reads)."""
    dtype = np.uint16 if labels.max(initial=0) < 65536 else np.uint32
    tifffile.imwrite(out / f"{sid}.tif", labels.astype(dtype), compression="zlib")
