"""Stream a published dataset from its registry: read samples before (or without) a full pull.

:func:`stream_dataset` pulls the dataset's tables (card, samples table, splits; verified) and returns a
:class:`StreamedDataset`, a :class:`hub.dataset.Dataset` whose :meth:`~StreamedDataset.image` fetches a sample's
files the first time the sample is read in a process, each file SHA-256-checked against the manifest before it is
used and kept in the cache (the same version folder a pull fills, so a later pull reuses them). Loaders take it like
any dataset: ``SegmentationDataset(hub.load_dataset("bbbc039", streaming=True), split="train")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hub.dataset import Dataset
from hub.ome import OmeImage, open_image
from hub.registry.cache import IMAGES, fetch, images_of, prepare, tables_of, version_dir
from hub.registry.manifest import sha256_bytes
from hub.registry.ref import Ref, parse_ref
from hub.registry.registry import Registry

WORKERS = 8  # requests in flight for one sample's files


@dataclass
class StreamedDataset(Dataset):
    """A dataset version read from ``registry_url`` sample by sample (see the module docstring)."""

    registry_url: str = ""
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    _ready: set[str] = field(default_factory=set, repr=False)  # samples verified in this process

    def image(self, sample_id: str) -> OmeImage:
        path = self.image_path(sample_id)  # a safe path inside the version folder, from the verified table
        if sample_id not in self._ready:
            files = self._sample_files.get(path.relative_to(self.path / IMAGES).parts[0], [])
            fetch(self._registry, "datasets", self.manifest, self.path, files, WORKERS)
            self._ready.add(sample_id)
        return open_image(path)

    @cached_property
    def _registry(self) -> Registry:
        return Registry(self.registry_url)

    @cached_property
    def _sample_files(self) -> dict[str, list[dict[str, Any]]]:
        """The manifest's image files by sample folder, indexed once: a read looks up its own, whatever the
        dataset's size."""
        by_folder: dict[str, list[dict[str, Any]]] = {}
        for f in images_of(self.manifest["files"], None):
            by_folder.setdefault(f["path"].split("/")[1], []).append(f)
        return by_folder

    def __getstate__(self) -> dict[str, Any]:
        """A loader's worker processes verify what they read themselves, through their own connections."""
        state = {**self.__dict__, "_ready": set()}
        state.pop("_registry", None)
        state.pop("_sample_files", None)
        return state


def stream_dataset(ref: Ref | str, registry: Registry | None = None) -> StreamedDataset:
    """Open dataset ``ref`` of ``registry`` for streaming: its tables are pulled (verified) now, each sample's
    images when first read."""
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    registry = registry or Registry()
    manifest, data, _ = registry.manifest_data("datasets", ref)
    exact = Ref(manifest["name"], manifest["version"])
    dest = version_dir("datasets", exact)
    if not prepare(dest, manifest, sha256_bytes(data)):
        fetch(registry, "datasets", manifest, dest, tables_of(manifest["files"]), WORKERS, f"{exact}'s tables")
    return StreamedDataset(Path(dest), registry_url=registry.url, manifest=manifest)
