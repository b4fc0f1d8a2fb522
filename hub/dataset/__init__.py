"""The dataset read model: a curated dataset folder (``card.yaml``, ``samples.csv``, ``splits.json``,
``images/<id>.ome.zarr``) opened for reading, its samples as typed frozen rows, and the content hashes that
freeze it. Above ``hub.ome`` and ``hub.cards``; below curation, storage, loaders, models, benchmarks and the site.

Reading a dataset imports no curation code (no scikit-learn, no scikit-image)."""

from hub.dataset._boxes import Boxes, clean_boxes, detects
from hub.dataset._folder import CARD, REPORT, SAMPLES, SPLIT_NAMES, SPLITS, Dataset, open_dataset
from hub.dataset._hash import array_sha256, canonical_json, manifest_sha256, sample_sha256
from hub.dataset._sample import COLUMNS, SAFE_ID, Sample

__all__ = [
    "Boxes",
    "CARD",
    "COLUMNS",
    "REPORT",
    "SAFE_ID",
    "SAMPLES",
    "SPLITS",
    "SPLIT_NAMES",
    "Dataset",
    "Sample",
    "array_sha256",
    "canonical_json",
    "clean_boxes",
    "detects",
    "manifest_sha256",
    "open_dataset",
    "sample_sha256",
]
