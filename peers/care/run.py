"""CARE (Weigert et al. 2018, csbdeep) on a hub label-free benchmark, by its own code.

The recipe is csbdeep's own for image-to-image restoration, applied to predicting a fluorescence stain from
transmitted-light channels: raw/target pairs percentile-normalised (2, 99.8) and sampled into patches where the
target has signal, as ``csbdeep.data.create_patches`` does; a CARE model with every ``csbdeep.models.Config``
default (U-Net depth 2, kernel 5, 32 first filters, MAE loss, batch 16, Adam 4e-4, the learning rate halved on
plateaus, the weights of the best val loss kept), and prediction with
``PercentileNormalizer`` (1, 99.8) and ``PadAndCropResizer``. The changes: the val split gives the validation
patches (not a random tenth of train), and the number of epochs and steps is cut from 100 x 400 to fit the hub's
CPU budget (peer.yaml says how many).

Run by ``cellhub peers run care`` in this folder's environment (``make peers``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from common import Clock, Handoff, arguments, threads, write_report  # noqa: E402

args = arguments(__doc__.splitlines()[0])

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads())
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.random.set_seed(0)
np.random.seed(0)

import tifffile  # noqa: E402
from csbdeep.data import PadAndCropResizer, PercentileNormalizer  # noqa: E402
from csbdeep.models import CARE, Config  # noqa: E402
from csbdeep.utils import normalize  # noqa: E402

data = Handoff(args.data)
opts = {"epochs": 30, "steps_per_epoch": 50, "patch": 64, "patches_per_image": 16, **args.options}
if args.quick:
    opts.update(epochs=1, steps_per_epoch=2)


def pairs(split):
    ids = data.ids(split)
    return [data.image(split, i).astype(np.float32) for i in ids], [data.target(split, i) for i in ids]


def patches(split):
    """Training patches, (N, Y, X, C): every pair normalised per channel by percentiles (2, 99.8), as
    ``create_patches`` does (which itself needs as many target channels as raw ones, so its sampling is redone
    here): ``patches_per_image`` random windows, drawn among those whose target reaches 40% of the image's
    maximum (csbdeep's ``no_background_patches`` rule), or the whole image when it is smaller than a patch."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for x, y in zip(*pairs(split)):
        x = normalize(x, 2, 99.8, axis=(1, 2))
        y = normalize(y, 2, 99.8, axis=(1, 2))
        size = min(opts["patch"], *x.shape[1:])
        size -= size % 4  # the U-Net (depth 2) halves twice
        n = 1 if size >= min(x.shape[1:]) - 3 else opts["patches_per_image"]
        for _ in range(n):
            for _try in range(20):
                r, c = rng.integers(0, x.shape[1] - size + 1), rng.integers(0, x.shape[2] - size + 1)
                win = y[:, r : r + size, c : c + size]
                if n == 1 or win.max() >= 0.4 * y.max():
                    break
            xs.append(x[:, r : r + size, c : c + size])
            ys.append(win)
    return np.moveaxis(np.stack(xs), 1, -1), np.moveaxis(np.stack(ys), 1, -1)


clock = Clock()
with clock.time("train"):
    X, Y = patches("train")
    X_val, Y_val = patches("val")
    config = Config(
        "YXC",
        n_channel_in=X.shape[-1],
        n_channel_out=Y.shape[-1],
        train_epochs=opts["epochs"],
        train_steps_per_epoch=opts["steps_per_epoch"],
    )
    model = CARE(config, "care", basedir=str(args.out.parent / "care-model"))
    history = model.train(X, Y, validation_data=(X_val, Y_val))

with clock.time("predict"):
    ids = data.ids(data.scored)
    normalizer = PercentileNormalizer(1, 99.8)
    for sid in ids:
        x = np.moveaxis(data.image(data.scored, sid).astype(np.float32), 0, -1)
        n_tiles = (max(1, x.shape[0] // 512), max(1, x.shape[1] // 512), 1)
        y = model.predict(x, "YXC", normalizer=normalizer, resizer=PadAndCropResizer(), n_tiles=n_tiles)
        y = y[None] if y.ndim == 2 else np.moveaxis(y, -1, 0)
        tifffile.imwrite(args.out / f"{sid}.tif", y.astype(np.float32), compression="zlib")

write_report(
    args,
    "csbdeep",
    clock,
    len(ids),
    train_patches=int(len(X)),
    val_patches=int(len(X_val)),
    patch=int(X.shape[1]),
    epochs=opts["epochs"],
    steps_per_epoch=opts["steps_per_epoch"],
    best_val_loss=float(min(history.history["val_loss"])),
)
