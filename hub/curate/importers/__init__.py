"""One module per source layout; importing this package registers them all."""

from hub.curate.importers import coco, ctc, folder, kaggle_dsb, npz, paired  # noqa: F401
