"""CellHub: curated microscopy datasets in OME-Zarr, with cards, frozen splits and loaders.

Layers, lower first (a module imports only from layers below it): ``hub.ome`` (formats: OME-Zarr, Cell
Tracking Challenge files and the lineage check, source image files) -> ``hub.metrics`` (metric suites) ->
``hub.tasks`` (task registry) -> ``hub.cards`` (contract) -> ``hub.dataset`` (the read model of a curated dataset:
folder, typed sample rows, content hashes) -> ``hub.curate`` (curation) | ``hub.registry`` (storage) ->
``hub.data`` (loaders) -> ``hub.models`` (models) -> ``hub.bench`` (benchmarks) -> ``hub.viz`` ->
``hub.baselines`` -> ``hub.site`` | ``hub.peers`` (the field's own tools, run in their own environments) ->
``hub.cli`` (presentation); "a | b": siblings that do not import each other. The import-linter contracts in
``pyproject.toml`` enforce this map (``make check``). Reading a dataset (``hub.dataset``) imports no curation,
scikit-learn, scikit-image, scipy or torch.
"""

from hub._versions import cellhub_version

__version__ = cellhub_version()


def load_dataset(
    ref: str,
    registry: str | None = None,
    *,
    split: str | None = None,
    samples: list[str] | None = None,
    streaming: bool = False,
):
    """Pull dataset ``name[@version]`` (verified, cached) and open it: ``hub.load_dataset("dsb2018-fluo@1.0.1")``;
    ``split="test"`` or ``samples=[...]`` pull only those samples' images (and the dataset's tables);
    ``streaming=True`` pulls nothing but the tables and each sample's files when it is first read."""
    from hub.dataset import open_dataset
    from hub.registry import Registry, pull, stream_dataset

    if streaming:
        return stream_dataset(ref, Registry(registry))
    return open_dataset(pull("datasets", ref, Registry(registry), split=split, samples=samples).path)


def load_model(ref: str, registry: str | None = None, device: str = "cpu"):
    """A ready model from a folder or ``name[@version]`` (pulled, verified, cached): ``model.predict(array)``."""
    from hub.models import load_model as _load

    return _load(ref, registry, device)


def __getattr__(name: str):
    if name == "Registry":  # imported lazily: `import hub` stays light
        from hub.registry import Registry

        return Registry
    raise AttributeError(name)
