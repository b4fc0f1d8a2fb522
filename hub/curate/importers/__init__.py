"""One module per source layout; importing this package registers them all."""

from hub.curate.importers import bbbc, coco, ctc, folder, kaggle_dsb, npz, paired, polygons, voc  # noqa: F401
