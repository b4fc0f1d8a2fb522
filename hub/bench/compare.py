"""The hub against the field's own tools: per benchmark, the hub's best model beside the best peer (a
``reproduced`` row), each with its primary metric and 95% interval, training wall time and inference time per
sample, every value read from the verified leaderboard (:func:`hub.bench.leaderboard.verified_leaderboard`)."""

from __future__ import annotations

import math

from hub.bench.benchmarks import benchmarks
from hub.bench.leaderboard import verified_leaderboard
from hub.cards import Benchmark
from hub.errors import CellHubError
from hub.registry import Registry
from hub.registry.ref import Ref


def _seconds(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 else None


def _train_s(registry: Registry, row: dict) -> float | None:
    """Training wall time: a peer's from its record, a hub model's from its published card."""
    if row.get("peer"):
        return _seconds(row["peer"].get("train_s"))
    name, _, version = row["model"].partition("@")
    try:
        manifest, _ = registry.manifest("models", Ref(name, version))
    except (CellHubError, OSError, ValueError):
        return None
    training = manifest.get("card", {}).get("training") if isinstance(manifest, dict) else None
    return _seconds(training.get("wall_time_s")) if isinstance(training, dict) else None


def _entry(registry: Registry, row: dict | None, record: dict | None) -> dict | None:
    if row is None or record is None:
        return None
    runtime = record.get("runtime_s") or {}
    n = len(record.get("per_sample") or [])
    predict = _seconds(runtime.get("predict_s"))
    peer = row.get("peer")
    return {
        "name": f"{peer['title']} {peer['tool_version']}" if peer else row["model"],
        "model": row["model"],
        "source": row["source"],
        "value": row["value"],
        "ci95": row["ci95"],
        "train_s": _train_s(registry, row),
        "predict_s_per_sample": predict / n if predict is not None and n else None,
        "sha256": row["sha256"],
    }


def _verdict(hub: dict | None, peer: dict | None) -> str:
    if hub is None or peer is None or hub["value"] is None or peer["value"] is None:
        return "no peer" if peer is None else "no hub model"
    h, p = round(hub["value"], 3), round(peer["value"], 3)  # as shown: a difference below the third decimal is a tie
    lead = "hub ahead" if h > p else "peer ahead" if p > h else "tie"
    (hl, hh), (pl, ph) = hub["ci95"], peer["ci95"]
    if None not in (hl, hh, pl, ph) and lead != "tie" and hl <= ph and pl <= hh:
        lead += " (intervals overlap)"
    return lead


def compare_benchmark(bench: Benchmark, registry: Registry) -> dict:
    """``{"benchmark", "primary_metric", "hub", "peer", "peers", "verdict"}``: the best ranked hub row and the
    best ranked peer row of ``bench`` (None where there is none), how many peer rows the board has, and who leads
    (``hub ahead``, ``peer ahead``, with ``(intervals overlap)`` when the 95% intervals overlap, or ``tie`` when
    the values agree to the three decimals shown)."""
    return compare_board(bench, *verified_leaderboard(bench, registry), registry)


def compare_board(bench: Benchmark, board: dict, records: dict[str, dict], registry: Registry) -> dict:
    """:func:`compare_benchmark` on a verified leaderboard already read (its rows and records)."""
    ranked = [r for r in board["rows"] if r["rank"] is not None]
    hub_row = next((r for r in ranked if r["source"] == "hub"), None)
    peer_row = next((r for r in ranked if r["source"] == "reproduced"), None)
    hub = _entry(registry, hub_row, records.get(hub_row["sha256"]) if hub_row else None)
    peer = _entry(registry, peer_row, records.get(peer_row["sha256"]) if peer_row else None)
    return {
        "benchmark": bench.name,
        "primary_metric": bench.primary_metric,
        "hub": hub,
        "peer": peer,
        "peers": sum(r["source"] == "reproduced" for r in ranked),
        "verdict": _verdict(hub, peer),
    }


def comparison(registry: Registry) -> list[dict]:
    """:func:`compare_benchmark` for every benchmark of the hub, by name."""
    return [compare_benchmark(b, registry) for b in benchmarks()]
