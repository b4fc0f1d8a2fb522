"""Curation layer: importers per source layout, splits, statistics, the validator and recipes."""

from hub.curate import importers as _importers  # noqa: F401  (registers the importers)
from hub.curate._build import import_dataset
from hub.curate._importer import IMPORTERS, Importer, create_importer, register_importer
from hub.curate._staged import import_into
from hub.curate.publish import check_dataset, publish_dataset
from hub.curate.splits import SplitSpec
from hub.curate.validate import Findings, validate_dataset
from hub.dataset import Dataset, open_dataset  # re-exported for API users: the read model is hub.dataset

__all__ = [
    "IMPORTERS",
    "Dataset",
    "Findings",
    "Importer",
    "check_dataset",
    "SplitSpec",
    "create_importer",
    "import_dataset",
    "import_into",
    "open_dataset",
    "publish_dataset",
    "register_importer",
    "validate_dataset",
]
