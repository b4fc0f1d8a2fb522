"""laptrack (Fukai & Kawaguchi 2023) linking a hub model's detections on a hub tracking benchmark.

Detection and linking are compared apart: the hub hands over the masks that its tracking baseline detects on the
scored sequences (``detections/``), and laptrack's LAP tracker links their centroids (frame-to-frame links, gap
closing over up to 2 frames, divisions as splits), with the linking distances read off the training sequences'
truth (``peers/linking.py``: the candidates that recover the most true links when laptrack links the training
sequences' true masks). Nothing else is learned.

Run by ``cellhub peers run laptrack`` in this folder's environment (``make peers``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from common import Clock, Handoff, arguments, write_report  # noqa: E402
from linking import distances, link, read_tracks, tune, write_ctc  # noqa: E402

args = arguments(__doc__.splitlines()[0])
data = Handoff(args.data)
clock = Clock()
with clock.time("train"):
    steps, born, sequences = [], [], []
    for split in ("train", "val"):
        for sid in data.ids(split):
            masks, tracks = data.labels(split, sid), read_tracks(data.file(split, f"{sid}.tracks.txt"))
            s, b = distances(masks, tracks)
            steps.append(s)
            born.append(b)
            sequences.append((masks, tracks))
    cut = tune(sequences, np.concatenate(steps), np.concatenate(born))

with clock.time("predict"):
    ids = data.ids(data.scored)
    counts = {}
    for sid in ids:
        masks = tifffile.imread(args.data / "detections" / f"{sid}.tif")
        out, rows, _ = link(masks, cut["link_distance"], cut["division_distance"])
        write_ctc(args.out / f"{sid}_RES", out, rows)
        counts[sid] = {"tracks": len(rows), "divisions": len({r[3] for r in rows if r[3]})}

write_report(
    args,
    "laptrack",
    clock,
    len(ids),
    **cut,
    steps=int(sum(len(s) for s in steps)),
    divisions=int(sum(len(b) for b in born)),
    sequences=counts,
)
