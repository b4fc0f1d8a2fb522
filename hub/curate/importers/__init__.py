"""One module per source layout; importing this package registers them all."""

from hub.curate.importers import ctc, folder, kaggle_dsb, npz, paired, voc  # noqa: F401
