"""CellHub: curated microscopy datasets in OME-Zarr, with cards, frozen splits and loaders.

Layers, lower first (a module imports only from layers below it): ``hub.cards`` (contract) ->
``hub.ome`` (formats) -> ``hub.curate`` (curation) -> ``hub.data`` (loaders) -> ``hub.cli`` (presentation).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cellhub")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
