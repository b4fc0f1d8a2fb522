"""The hub's baselines: one training recipe per benchmark, with the trained model and its results committed.

Layout, per model::

    model_cards/<name>/recipe.yaml            how it is trained (``cellhub models train --recipe``) and scored
    model_cards/<name>/<version>/             the model folder: card.yaml + weights.safetensors (fp16)
    model_cards/<name>/<version>.yaml         the card (a link to <version>/card.yaml)
    model_cards/<name>/results/*.json         result records of the hub's evaluation on the recipe's benchmarks

:func:`install` puts them in a registry through the normal path: the model folder is published (validated,
SHA-256 manifest), pulled back into the verified cache, and each benchmark result is published -- the
committed record when its weights and split hashes match the published model and the frozen benchmark,
else a fresh evaluation of the pulled model. A recipe without committed weights is trained in a quick mode
(a few CPU minutes) under the name ``<name>-quick``, so it is never mistaken for the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub._readers import read_json
from hub.bench import benchmark_dataset, evaluate_model, get_benchmark
from hub.cards import ModelCard, load_card
from hub.config import REPO_ROOT, build_root
from hub.errors import IntegrityError, NotFound
from hub.models import Model, TrainConfig, load_recipe, publish_model, train
from hub.registry import Registry, local_path

RECIPE = "recipe.yaml"
QUICK = {"epochs": 2, "steps_per_epoch": 10, "grid": {}}


def model_cards_dir() -> Path:
    return REPO_ROOT / "model_cards"


@dataclass(frozen=True)
class Baseline:
    """One recipe of ``model_cards/`` and where its committed model and results live."""

    recipe: TrainConfig
    folder: Path

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def model_dir(self) -> Path:
        return self.folder / self.recipe.version

    @property
    def results_dir(self) -> Path:
        return self.folder / "results"

    @property
    def committed(self) -> bool:
        return (self.model_dir / "card.yaml").is_file()

    def record(self, benchmark: str) -> dict | None:
        """The committed result record for ``benchmark``, if any."""
        path = self.results_dir / f"{benchmark.replace('/', '.')}.json"
        return read_json(path, "result record") if path.is_file() else None


def baselines(folder: Path | None = None) -> list[Baseline]:
    """Every recipe under ``model_cards/`` (or ``folder``), by name."""
    root = folder or model_cards_dir()
    return [Baseline(load_recipe(p), p.parent) for p in sorted(root.glob(f"*/{RECIPE}"))]


def get_baseline(name: str, folder: Path | None = None) -> Baseline:
    found = {b.name: b for b in baselines(folder)}
    if name not in found:
        raise NotFound(f"no baseline {name!r} in model_cards/; known: {', '.join(found) or 'none'}")
    return found[name]


def install(
    registry: Registry, *, evaluate: bool = False, folder: Path | None = None, log: Callable[[str], None] = print
) -> list[dict]:
    """Publish every baseline of ``folder`` (default ``model_cards/``), or its quick-mode stand-in, and its
    results to ``registry``; pull it back.

    A benchmark the registry already has a result for (same model, weights and split) is left alone; with
    ``evaluate`` every result is computed again from the pulled model instead of taken from the committed
    record. Returns one summary per (model, benchmark).
    """
    summaries = []
    for base in baselines(folder):
        model_dir = base.model_dir if base.committed else _quick(base, log)
        card = load_card(ModelCard, model_dir / "card.yaml")
        _publish_model(registry, model_dir, card, log)
        pulled = Model.load(local_path("models", card.ref, registry))
        for name in base.recipe.benchmarks:
            bench = get_benchmark(name)
            record = None if evaluate else _published(registry, bench, card)
            if record is not None:
                log(f"{card.ref}: {name} result already published")
            elif not evaluate and base.committed and (record := base.record(name)) is not None:
                if record["weights_sha256"] != card.weights.sha256 or record["split_sha256"] != bench.split_sha256:
                    log(f"{card.ref}: the committed {name} record does not match the weights or the split")
                    record = None
            if record is None:
                log(f"{card.ref}: evaluating on {name}")
                data = benchmark_dataset(bench, None, registry.url)
                record = evaluate_model(bench, data, pulled).model_dump(mode="json")
            registry.publish_result(record)
            summaries.append(
                {
                    "model": card.ref,
                    "benchmark": name,
                    "primary_metric": record["primary_metric"],
                    "value": record["value"],
                    "ci95": record["ci95"],
                    "quick": not base.committed,
                }
            )
    return summaries


def _quick(base: Baseline, log: Callable[[str], None]) -> Path:
    """A quick-mode stand-in (``<name>-quick``) for a recipe without committed weights, trained once."""
    cfg = base.recipe.model_copy(update={"name": f"{base.name}-quick", **QUICK})
    out = build_root() / "models" / cfg.name / cfg.version
    if not (out / "card.yaml").is_file():
        log(
            f"{base.name}: no committed weights in {base.model_dir}; training {cfg.name} in quick mode "
            f"({QUICK['epochs']} x {QUICK['steps_per_epoch']} steps: a smoke test, not the baseline)"
        )
        train(cfg, out)
    return out


def _publish_model(registry: Registry, folder: Path, card: ModelCard, log: Callable[[str], None]) -> None:
    """Publish ``folder`` unless its version is already there -- then it must be the same weights."""
    try:
        manifest, _ = registry.manifest("models", card.ref)
    except NotFound:
        publish_model(registry, folder)
        log(f"{card.ref}: published")
        return
    if manifest["card"]["weights"]["sha256"] != card.weights.sha256:
        raise IntegrityError(
            f"the registry's {card.ref} has other weights than the committed ones; published "
            f"versions are immutable (bump the version in the recipe)",
            folder / "card.yaml",
        )
    log(f"{card.ref}: already published")


def _published(registry: Registry, bench, card: ModelCard) -> dict | None:
    """The registry's latest result of exactly this model (weights) on ``bench``'s frozen split, if any."""
    rows = [
        r
        for r in registry.results(bench.name)
        if r["model"] == card.ref
        and r["weights_sha256"] == card.weights.sha256
        and r["split_sha256"] == bench.split_sha256
    ]
    return registry.result_record(max(rows, key=lambda r: r["date"])) if rows else None
