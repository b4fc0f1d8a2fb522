"""StarDist 2D (Schmidt et al. 2018, Weigert et al. 2020) on a hub instance benchmark, by its own code.

The recipe is the 2D training notebook of the stardist repository (examples/2D/2_training.ipynb): per-image
percentile normalisation (1, 99.8; channels apart), label holes filled, 32 rays, grid (2, 2), the notebook's
augmenter (flips, quarter turns, intensity change, a little noise), every Config2D default (U-Net depth 3, 256 px
patches, batch 4, Adam 3e-4, the learning rate halved on plateaus), the weights of the best val loss kept, then
its probability and NMS thresholds optimised on val. The one change: the number of epochs, cut from 400 to fit
the hub's CPU budget (peer.yaml says how many).

Run by ``cellhub peers run stardist`` in this folder's environment (``make peers``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from common import Clock, Handoff, arguments, threads, write_labels, write_report  # noqa: E402

args = arguments(__doc__.splitlines()[0])

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads())
tf.config.threading.set_inter_op_parallelism_threads(1)

from csbdeep.utils import normalize  # noqa: E402
from stardist import calculate_extents, fill_label_holes  # noqa: E402
from stardist.models import Config2D, StarDist2D  # noqa: E402

np.random.seed(42)
tf.random.set_seed(42)
data = Handoff(args.data)
opts = {"epochs": 40, "steps_per_epoch": 100, **args.options}
if args.quick:
    opts.update(epochs=1, steps_per_epoch=2)


def image(split, sid):
    """(Y, X) for one channel, else (Y, X, C) channels-last, normalised per channel as in the notebook."""
    x = data.image(split, sid)
    x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
    return normalize(x, 1, 99.8, axis=(0, 1))


def load(split):
    ids = data.ids(split)
    return [image(split, i) for i in ids], [fill_label_holes(data.labels(split, i)) for i in ids]


def random_fliprot(img, mask):
    axes = tuple(range(mask.ndim))
    perm = tuple(np.random.permutation(axes))
    img = img.transpose(perm + tuple(range(mask.ndim, img.ndim)))
    mask = mask.transpose(perm)
    for ax in axes:
        if np.random.rand() > 0.5:
            img, mask = np.flip(img, axis=ax), np.flip(mask, axis=ax)
    return img, mask


def augmenter(x, y):
    x, y = random_fliprot(x, y)
    x = x * np.random.uniform(0.6, 2) + np.random.uniform(-0.2, 0.2)
    return x + 0.02 * np.random.uniform(0, 1) * np.random.normal(0, 1, x.shape), y


clock = Clock()
with clock.time("train"):
    X_trn, Y_trn = load("train")
    X_val, Y_val = load("val")
    n_channel = 1 if X_trn[0].ndim == 2 else X_trn[0].shape[-1]
    conf = Config2D(
        n_rays=32,
        grid=(2, 2),
        use_gpu=False,
        n_channel_in=n_channel,
        train_epochs=opts["epochs"],
        train_steps_per_epoch=opts["steps_per_epoch"],
    )
    model = StarDist2D(conf, name="stardist", basedir=str(args.out.parent / "stardist-model"))
    median_size = calculate_extents(Y_trn, np.median)
    fov = np.array(model._axes_tile_overlap("YX"))
    model.train(X_trn, Y_trn, validation_data=(X_val, Y_val), augmenter=augmenter)
    thresholds = model.optimize_thresholds(X_val, Y_val)

with clock.time("predict"):
    ids = data.ids(data.scored)
    for sid in ids:
        x = image(data.scored, sid)
        labels, _ = model.predict_instances(x, n_tiles=model._guess_n_tiles(x), show_tile_progress=False)
        write_labels(args.out, sid, labels)

write_report(
    args,
    "stardist",
    clock,
    len(ids),
    thresholds={k: float(v) for k, v in thresholds.items()},
    median_object_size=[float(v) for v in median_size],
    field_of_view=[int(v) for v in fov],
    train_images=len(X_trn),
    val_images=len(X_val),
    epochs=opts["epochs"],
    steps_per_epoch=opts["steps_per_epoch"],
)
