"""Leaderboards: the registry's result records of a benchmark, ranked by the primary metric."""

from __future__ import annotations

from hub.cards import Benchmark
from hub.registry import Registry


def leaderboard(bench: Benchmark, registry: Registry) -> dict:
    """``{"benchmark", "primary_metric", "split_sha256", "inputs", "rows": [...]}``, best first.

    Only results on the benchmark's frozen split and suite count; of several results of one model (same
    name and weights), the latest is kept. Each row carries its provenance: weights and split hashes, suite
    version, who computed it (``hub`` or ``self-reported``) and the record's path in the registry. Results
    that used input channels beyond the benchmark's come last, unranked, as references.
    """
    latest: dict[tuple, dict] = {}
    for r in registry.results(bench.name):
        split = r["split"] if "split" in r else registry.result_record(r)["split"]  # older catalogs lack it
        if (r["split_sha256"], split, r["suite_version"]) != (bench.split_sha256, bench.split, bench.suite_version):
            continue
        key = (r["model"], r["weights_sha256"], r["predictions_sha256"] if r["weights_sha256"] is None else "")
        if key not in latest or r["date"] > latest[key]["date"]:
            latest[key] = r
    rows = sorted(latest.values(), key=lambda r: (r["value"] is None, -(r["value"] or 0), r["model"]))
    keep = ("model", "value", "ci95", "metrics", "weights_sha256", "split_sha256", "suite_version", "source",
            "inputs", "date", "path", "sha256")
    extra = [_extra_inputs(bench, r) for r in rows]
    ranked = [r for r, e in zip(rows, extra) if not e]
    board = [{"rank": i + 1, "reference": None, **{k: r.get(k) for k in keep}} for i, r in enumerate(ranked)]
    board += [{"rank": None, "reference": f"also uses {', '.join(e)}", **{k: r.get(k) for k in keep}}
              for r, e in zip(rows, extra) if e]
    return {"benchmark": bench.name, "dataset": bench.dataset, "primary_metric": bench.primary_metric,
            "split_sha256": bench.split_sha256, "inputs": bench.inputs, "rows": board}


def _extra_inputs(bench: Benchmark, row: dict) -> list[str]:
    """Input channels a result used beyond those the benchmark allows: such a row is a reference, not ranked
    (e.g. a classifier that also sees the DNA stain on a label-free benchmark)."""
    if not bench.inputs or not row.get("inputs"):
        return []
    return [c for c in row["inputs"] if c not in bench.inputs]
