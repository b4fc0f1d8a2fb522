"""Leaderboards: the registry's result records of a benchmark, ranked by the primary metric."""

from __future__ import annotations

from hub.cards import Benchmark
from hub.registry import Registry


def leaderboard(bench: Benchmark, registry: Registry) -> dict:
    """``{"benchmark", "primary_metric", "split_sha256", "rows": [...]}``, best first.

    Only results on the benchmark's frozen split and suite count; of several results of one model (same
    name and weights), the latest is kept. Each row carries its provenance: weights and split hashes, suite
    version, who computed it (``hub`` or ``self-reported``) and the record's path in the registry.
    """
    latest: dict[tuple, dict] = {}
    for r in registry.results(bench.name):
        if r["split_sha256"] != bench.split_sha256 or r["suite_version"] != bench.suite_version:
            continue
        key = (r["model"], r["weights_sha256"], r["predictions_sha256"] if r["weights_sha256"] is None else "")
        if key not in latest or r["date"] > latest[key]["date"]:
            latest[key] = r
    rows = sorted(latest.values(), key=lambda r: (r["value"] is None, -(r["value"] or 0), r["model"]))
    keep = ("model", "value", "ci95", "metrics", "weights_sha256", "split_sha256", "suite_version", "source",
            "inputs", "date", "path", "sha256")
    return {"benchmark": bench.name, "dataset": bench.dataset, "primary_metric": bench.primary_metric,
            "split_sha256": bench.split_sha256,
            "rows": [{"rank": i + 1, **{k: r.get(k) for k in keep}} for i, r in enumerate(rows)]}
