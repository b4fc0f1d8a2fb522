"""Cellpose 3 (Stringer et al. 2021, Stringer & Pachitariu 2025) on a hub instance benchmark, by its own code.

The recipe is Cellpose's own: a CellposeModel built from scratch (no pretrained model: ``pretrained_model=False,
model_type=None``, the default U-Net, ``diam_mean`` 30), trained by ``cellpose.train.train_seg`` with every
default (AdamW, learning rate 0.005, weight decay 1e-5, batch 8, 224 px patches, objects rescaled to ``diam_mean``,
val images for its test loss), then run by ``CellposeModel.eval`` at the mean diameter of the training masks
(``net.diam_labels``, as the training notebook does) with the default flow and cell-probability thresholds. The
one change: a shorter training to fit the hub's CPU budget, 100 epochs of 32 images (``nimg_per_epoch``) instead
of 2000 epochs of every image, so that its learning-rate warm-up (10 epochs) stays a tenth of the run
(peer.yaml says how many).

Cellpose-SAM (Cellpose 4) is out of reach here: its ViT-L encoder (about 300 M parameters) starts from SAM weights
that these machines cannot download, and trained from scratch on a CPU it would not see one epoch in the budget.

Run by ``cellhub peers run cellpose`` in this folder's environment (``make peers``).
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from common import Clock, Handoff, arguments, threads, write_labels, write_report  # noqa: E402

args = arguments(__doc__.splitlines()[0])

import torch  # noqa: E402

torch.set_num_threads(threads())
torch.manual_seed(0)
np.random.seed(0)

from cellpose import models, train  # noqa: E402

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
data = Handoff(args.data)
opts = {"n_epochs": 100, "nimg_per_epoch": 32, **args.options}
if args.quick:
    opts.update(n_epochs=1, nimg_per_epoch=None)
CHANNELS = [0, 0]  # grayscale: Cellpose's setting for one nucleus channel (an RGB image is averaged)


def image(split, sid):
    """(Y, X) for one channel, else (Y, X, C) channels-last."""
    x = data.image(split, sid).astype(np.float32)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)


def load(split):
    ids = data.ids(split)
    return [image(split, i) for i in ids], [data.labels(split, i).astype(np.int32) for i in ids]


clock = Clock()
with clock.time("train"):
    X_trn, Y_trn = load("train")
    X_val, Y_val = load("val")
    (args.out.parent / "cellpose-model").mkdir(exist_ok=True)
    model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None, diam_mean=30.0, nchan=2)
    path, train_losses, test_losses = train.train_seg(
        model.net,
        train_data=X_trn,
        train_labels=Y_trn,
        test_data=X_val,
        test_labels=Y_val,
        channels=CHANNELS,
        n_epochs=opts["n_epochs"],
        nimg_per_epoch=opts["nimg_per_epoch"],
        save_path=str(args.out.parent / "cellpose-model"),
        model_name="cellpose",
    )
    diameter = float(model.net.diam_labels.item())

with clock.time("predict"):
    ids = data.ids(data.scored)
    for sid in ids:
        masks, _, _ = model.eval(image(data.scored, sid), channels=CHANNELS, diameter=diameter)
        write_labels(args.out, sid, masks)

write_report(
    args,
    "cellpose",
    clock,
    len(ids),
    diameter=diameter,
    diam_mean=30.0,
    n_epochs=opts["n_epochs"],
    nimg_per_epoch=opts["nimg_per_epoch"],
    final_train_loss=float(train_losses[-1]),
    final_val_loss=float(test_losses[-1]) if len(test_losses) else None,
    train_images=len(X_trn),
    val_images=len(X_val),
)
