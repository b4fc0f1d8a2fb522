"""The hub's benchmarks: declared by each dataset recipe, frozen with its split manifest hash."""

from __future__ import annotations

from pathlib import Path

from hub.cards import Benchmark, BenchmarkSpec, DatasetCard
from hub.config import build_root
from hub.curate.recipe import load_recipe, recipe_names
from hub.dataset import manifest_sha256, open_dataset
from hub.errors import IntegrityError, NotFound
from hub.metrics import SUITE_VERSION
from hub.registry import local_path
from hub.tasks import get_task


def _frozen(spec: BenchmarkSpec, card: DatasetCard, split_sha256: str) -> Benchmark:
    return Benchmark(
        **spec.model_dump(),
        name=f"{card.name}/{spec.task}",
        dataset=card.ref,
        split_sha256=split_sha256,
        suite_version=SUITE_VERSION,
        primary_metric=get_task(spec.task).primary,
    )


def benchmarks() -> list[Benchmark]:
    """Every benchmark of every dataset recipe (those whose split is frozen)."""
    out = []
    for name in recipe_names():
        recipe, card, _ = load_recipe(name)
        if recipe.split_manifest_sha256:
            out += [_frozen(spec, card, recipe.split_manifest_sha256) for spec in recipe.benchmarks]
    return out


def get_benchmark(name: str) -> Benchmark:
    found = {b.name: b for b in benchmarks()}
    if name not in found:
        raise NotFound(f"no benchmark {name!r}; known: {', '.join(found) or 'none'}")
    return found[name]


def adhoc_benchmark(dataset: Path, task: str, split: str = "test") -> Benchmark:
    """A benchmark on any curated dataset folder (e.g. one just imported), pinned to its split manifest. On a
    benchmark's frozen dataset it is that benchmark (its labels, inputs and targets) on ``split``; leaderboards
    count only the frozen split."""
    spec = get_task(task)
    task = spec.key
    ds = open_dataset(dataset)
    card = ds.card
    sha = manifest_sha256(ds.split_manifest)
    for b in benchmarks():
        if (b.name, b.dataset, b.split_sha256) == (f"{card.name}/{task}", card.ref, sha):
            return b.model_copy(update={"split": split})
    return _frozen(
        BenchmarkSpec(
            task=task,
            split=split,
            label=spec.label,
            seg_label=spec.seg_label,
            inputs=card.labels.inputs if spec.channel_targets else None,
            targets=card.labels.targets if spec.channel_targets else None,
        ),
        card,
        sha,
    )


def benchmark_dataset(bench: Benchmark, dataset: str | Path | None = None, registry: str | None = None) -> Path:
    """The benchmark's dataset: a given folder, else the registry's ``name@version``; its split manifest must
    be the frozen one. (Scoring then checks each scored sample's content against that manifest, whichever copy
    this is: :func:`hub.bench.truth.verify_truth`.)"""
    try:
        path = local_path("datasets", dataset or bench.dataset, registry)
    except NotFound:
        name, _, version = bench.dataset.partition("@")
        path = build_root() / name / version  # built locally but not published
        if dataset or not (path / "card.yaml").is_file():
            raise
    ds = open_dataset(path)
    sha = manifest_sha256(ds.split_manifest)
    if ds.card.ref != bench.dataset or sha != bench.split_sha256:
        raise IntegrityError(
            f"benchmark {bench.name} is frozen on {bench.dataset} with split {bench.split_sha256[:16]}"
            f"..., this dataset is {ds.card.ref} with split {sha[:16]}...",
            path,
        )
    return path
