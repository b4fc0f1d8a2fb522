"""Learning curves for transfer learning (Cellpose 2.0's protocol, the mission's DeepLabCut point): a training
recipe trained again on ``n`` of its training images (or ``n`` frames of each training movie), for several seeds,
from its pretrained base model and from scratch, each model scored on the benchmark's test split.

The ``n`` images (frames) of a seed are drawn at random from the train split (from each movie's frames), the
smaller sets of a seed nested in the larger ones; ``all`` trains on every one. Every run keeps the recipe's
budget (epochs, steps, batch), so the curve shows what more annotated data buys at a fixed cost. Both starts run
with the same family options (the base model's, as fine-tuning merges them with the recipe's, then any
``options`` given), so a scratch point differs from a pretrained one in its first weights only: the same
network, post-processing and test-time views. What a curve says in numbers (:func:`summary`): the zero-shot
score (the base model before any training, where it can run on the benchmark: :func:`untrained`), the mean per
``n``, ``n@90%`` (the fewest images that reach 90% of the full-data score) and the gap between pretrained and
scratch at ``n = 5``.

    cellhub models learning-curve model_cards/bbbc039-few-shot-dsb/recipe.yaml --out curves/bbbc039
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hub.bench.benchmarks import benchmark_dataset, get_benchmark
from hub.bench.evaluate import evaluate_model
from hub.cards import DatasetCard, InputChannel
from hub.dataset import Dataset, open_dataset
from hub.errors import InvalidInput
from hub.models import Model, TrainConfig, create_family, train
from hub.registry import local_path
from hub.tasks import get_task

SIZES: tuple[int | None, ...] = (1, 2, 5, 10, 20, None)  # None: every training image
SEEDS = (0, 1, 2)


def _pool(cfg: TrainConfig, ds: Dataset) -> list:
    """What ``n`` counts: the train split's samples, or the frames of its movies (tracking)."""
    if get_task(cfg.task).sequences:
        return list(range(min(ds.sample(sid).frames or 0 for sid in ds.ids("train"))))
    return ds.ids("train")


def subset(pool: list, n: int | None, seed: int) -> list | None:
    """The first ``n`` of the pool in the seed's random order (so a seed's sets are nested); None for all."""
    if n is None or n >= len(pool):
        return None
    order = np.random.default_rng(seed).permutation(len(pool))
    return sorted(pool[i] for i in order[:n])


def learning_curve(
    cfg: TrainConfig,
    out: str | Path,
    *,
    sizes: Sequence[int | None] = SIZES,
    seeds: Sequence[int] = SEEDS,
    scratch: bool = True,
    options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg`` at every size and seed, from its base model (if it has one) and, with ``scratch``, from
    scratch (the recipe's hyper-parameter grid is not searched); score each on the first benchmark of the recipe.
    ``options`` overrides family options at every point (e.g. ``{"tta": False}`` for a cheaper curve).
    Writes the models under ``out`` and the curve to ``out/curve.json`` after every point, so a long run can be
    followed and, run again, resumes: a point whose model is in ``out`` already is scored, not trained again.
    Returns the curve (``points`` and the :func:`summary`)."""
    if not cfg.benchmarks:
        raise InvalidInput(f"recipe {cfg.name} names no benchmark to score the curve on")
    out = Path(out)
    bench = get_benchmark(cfg.benchmarks[0])
    dataset = local_path("datasets", cfg.dataset, cfg.registry)
    scored = benchmark_dataset(bench, dataset)
    data = open_dataset(dataset)
    pool = _pool(cfg, data)
    base = _base(cfg)
    shared = {**(base.card.architecture.options if base else {}), **cfg.options, **(options or {})}
    curve: dict[str, Any] = {
        "recipe": cfg.name,
        "benchmark": bench.name,
        "metric": bench.primary_metric,
        "pool": len(pool),
        "unit": "frames" if get_task(cfg.task).sequences else "images",
        "options": shared,
        "zero_shot": _zero_shot(cfg, base, shared, bench, scored, data.card),
        "points": [],
        "summary": {},
    }
    inits = ([("pretrained", cfg.base_model)] if cfg.base_model else []) + ([("scratch", None)] if scratch else [])
    for init, start in inits:
        for n in sizes:
            for seed in seeds:
                chosen = subset(pool, n, seed)
                what = {"frames": chosen} if get_task(cfg.task).sequences else {"samples": chosen}
                update = {**what, "base_model": start, "seed": seed, "grid": {}, "options": shared}
                run = cfg.model_copy(update=update)
                folder = out / init / f"n{n or 'all'}-seed{seed}"
                log(f"{init}, n={n or 'all'}, seed {seed}")
                model = Model.load(folder) if (folder / "card.yaml").is_file() else train(run, folder)
                result = evaluate_model(bench, scored, model)
                curve["points"].append({"init": init, "n": n, "seed": seed, "value": result.value, "ci95": result.ci95})
                curve["summary"] = summary(curve)
                out.mkdir(parents=True, exist_ok=True)
                (out / "curve.json").write_text(json.dumps(curve, indent=1))
    return curve


def _base(cfg: TrainConfig) -> Model | None:
    """The recipe's base model when it is a hub model (not ``timm:`` weights)."""
    if not cfg.base_model or cfg.base_model.startswith("timm:"):
        return None
    return Model.load(local_path("models", cfg.base_model, cfg.registry))


def _zero_shot(
    cfg: TrainConfig, base: Model | None, options: dict[str, Any], bench, dataset: Path, data: DatasetCard
) -> float | None:
    """The base model's score on the benchmark (``dataset``, whose card is ``data``) before any training, with
    the curve's options (None where it cannot run there)."""
    model = untrained(cfg, base, options, data) if base is not None else None
    if model is None or not get_task(bench.task).accepts(model.card.task):
        return None
    return evaluate_model(bench, dataset, model).value


def untrained(cfg: TrainConfig, base: Model, options: dict[str, Any], data: DatasetCard) -> Model | None:
    """``base`` as the recipe would start to fine-tune it on ``data``, before any step: its network as the recipe's
    family with ``options``, where that is its own family or one built on it (a nucleus segmenter as a tracker's
    detector: the same network and post-processing, the recipe's linking after it), reading the dataset's channels
    in their place (as many as it has); else None."""
    family = create_family(cfg.family or base.family.name, options, at="options")
    channels = family.channels(cfg, data)[0]
    if not isinstance(family, type(base.family)) or len(channels) != len(base.card.inputs.channels):
        return None
    inputs = base.card.inputs.model_copy(update={"channels": InputChannel.of(data, channels)})
    arch = base.card.architecture.model_copy(update={"family": family.name, "options": options})
    card = base.card.model_copy(update={"task": family.task, "architecture": arch, "inputs": inputs})
    return Model(card, base.net, family)


def summary(curve: dict[str, Any]) -> dict[str, Any]:
    """Per init: the mean (and spread) of each size, ``n@90%`` and, between pretrained and scratch, the gap at
    ``n = 5``."""
    out: dict[str, Any] = {}
    for init in sorted({p["init"] for p in curve["points"]}):
        by_n: dict[Any, list[float]] = {}
        for p in curve["points"]:
            if p["init"] == init and p["value"] is not None:
                by_n.setdefault(p["n"] if p["n"] is not None else "all", []).append(p["value"])
        means = {n: float(np.mean(v)) for n, v in by_n.items()}
        full = means.get("all")
        numbered = sorted(n for n in means if n != "all")
        reach = [n for n in numbered if full is not None and means[n] >= 0.9 * full]
        out[init] = {
            "mean": {str(n): m for n, m in means.items()},
            "std": {str(n): float(np.std(v)) for n, v in by_n.items()},
            "n@90%": reach[0] if reach else None,
        }
    if "pretrained" in out and "scratch" in out:
        a, b = out["pretrained"]["mean"].get("5"), out["scratch"]["mean"].get("5")
        out["gap@5"] = a - b if a is not None and b is not None and not math.isnan(a - b) else None
    return out
