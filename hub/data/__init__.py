"""Data layer: torch Datasets per task over curated datasets, and Hugging Face ``datasets`` export.

Every torch Dataset here reads lazily from the OME-Zarr images (level 0, whole chunks, a bounded LRU cache
of decoded chunks per worker process) and is safe in multi-worker DataLoaders: open stores are never
pickled and are reopened in each worker process.
"""

from hub.data._reader import DEFAULT_CACHE_BYTES, Reader
from hub.data._transforms import Intensity, Normalizer, random_dihedral
from hub.data.classification import ClassificationDataset
from hub.data.detection import DetectionDataset
from hub.data.hf import to_hf_dataset
from hub.data.labelfree import LabelFreeDataset
from hub.data.segmentation import SegmentationDataset
from hub.data.tracking import Frames, TrackingDataset, TrackingSequence

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "ClassificationDataset",
    "DetectionDataset",
    "Frames",
    "Intensity",
    "LabelFreeDataset",
    "Normalizer",
    "Reader",
    "SegmentationDataset",
    "TrackingDataset",
    "TrackingSequence",
    "random_dihedral",
    "to_hf_dataset",
]
