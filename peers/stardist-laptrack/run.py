"""StarDist 2D detections linked by laptrack: a full peer pipeline on a hub tracking benchmark, by the two tools'
own code.

Nothing of the pipeline is new: it runs the two other peers' scripts, unchanged, one after the other.

1. Detection: every frame of the training movies becomes an instance sample with its track masks as labels, and
   ``peers/stardist/run.py`` trains StarDist on them by its notebook recipe and predicts every frame of the scored
   movies. Its early stopping and threshold optimisation need val frames: the benchmark's val movies where it has
   them, else the last tenth of each training movie, after a guard of 2 frames (the report says which).
2. Linking: ``peers/laptrack/run.py`` links those detections, with its distances read off the training movies'
   truth, exactly as it links the hub's detections.

Run by ``cellhub peers run stardist-laptrack`` in this folder's environment (``make peers``), which holds both
tools.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from common import Clock, Handoff, arguments, write_report  # noqa: E402

HELD_OUT, GUARD = 0.1, 2  # val frames cut from a training movie when the benchmark has no val movie

args = arguments(__doc__.splitlines()[0])
data = Handoff(args.data)
work = args.out.parent / "stardist-laptrack"
opts = {"epochs": 20, "steps_per_epoch": 100, **args.options}


def instance_handoff(folder: Path) -> str:
    """The tracking hand-off as an instance hand-off, each frame ``<id>_tNNN`` a sample (a quick run keeps 3
    training and 3 val frames); returns where the val frames come from."""
    has_val = bool(data.ids("val"))
    picks = {"train": [], "val": [], data.scored: []}  # (split of the movie, movie, frames, instance split)
    for sid in data.ids("train"):
        n = len(data.image("train", sid))
        cut = n if has_val else n - max(1, round(HELD_OUT * n))
        picks["train"].append(("train", sid, range(cut if has_val else cut - GUARD)))
        if not has_val:
            picks["val"].append(("train", sid, range(cut, n)))
    picks["val"] += [("val", sid, range(len(data.image("val", sid)))) for sid in data.ids("val")]
    picks[data.scored] = [(data.scored, sid, None) for sid in data.ids(data.scored)]
    ids: dict[str, list[str]] = {}
    for split, movies in picks.items():
        (folder / split).mkdir(parents=True)
        ids[split] = []
        for movie_split, sid, ts in movies:
            movie = data.image(movie_split, sid)
            masks = data.labels(movie_split, sid) if split != data.scored else None
            for t in range(len(movie)) if ts is None else ts:
                if args.quick and split != data.scored and len(ids[split]) == 3:
                    break
                fid = f"{sid}_t{t:03d}"
                tifffile.imwrite(folder / split / f"{fid}.tif", movie[t])
                if masks is not None:
                    tifffile.imwrite(folder / split / f"{fid}.labels.tif", masks[t])
                ids[split].append(fid)
    meta = {**data.meta, "task": "instance", "axes": "cyx", "splits": ids}
    (folder / "benchmark.json").write_text(json.dumps(meta, indent=1))
    return "the benchmark's val movies" if has_val else f"the last {HELD_OUT:.0%} of each training movie"


def tracking_handoff(folder: Path, detections: Path, most: int | None) -> None:
    """The tracking hand-off with ``detections/<id>.tif``: StarDist's masks of each scored movie, stacked. ``most``
    (quick runs, whose barely trained detector finds noise): keep each frame's largest objects, as many as a
    training frame holds, so that the linking stage runs on a sane number of objects."""
    folder.mkdir()
    for entry in args.data.iterdir():
        (folder / entry.name).symlink_to(entry.resolve())
    (folder / "detections").mkdir()
    for sid in data.ids(data.scored):
        n = len(data.image(data.scored, sid))
        stack = np.stack([tifffile.imread(detections / f"{sid}_t{t:03d}.tif") for t in range(n)])
        if most is not None:
            for plane in stack:
                sizes = np.bincount(plane.ravel())
                sizes[0] = 0
                plane[~np.isin(plane, np.argsort(sizes)[::-1][:most])] = 0
        tifffile.imwrite(folder / "detections" / f"{sid}.tif", stack, compression="zlib")


def tool(name: str, data_dir: Path, out: Path, options: dict) -> dict:
    """Run ``peers/<name>/run.py`` in this environment; returns its run report."""
    report = work / f"{name}.json"
    command = [sys.executable, str(HERE.parent / name / "run.py"), "--data", str(data_dir), "--out", str(out)]
    command += ["--report", str(report), "--options", json.dumps(options), *(["--quick"] if args.quick else [])]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)
    return json.loads(report.read_text())


work.mkdir(parents=True, exist_ok=True)
clock = Clock()
val_from = instance_handoff(work / "frames")
detected = tool("stardist", work / "frames", work / "detections", opts)
most = max(len(np.unique(tifffile.imread(f))) - 1 for f in (work / "frames" / "train").glob("*.labels.tif"))
tracking_handoff(work / "tracking", work / "detections", most if args.quick else None)
linked = tool("laptrack", work / "tracking", args.out, {})
clock.times = {p: detected[f"{p}_s"] + linked[f"{p}_s"] for p in ("train", "predict")}
write_report(
    args,
    "stardist",
    clock,
    linked["predicted"],
    val_frames=val_from,
    laptrack_version=linked["tool_version"],
    stardist=detected["notes"],
    laptrack=linked["notes"],
)
