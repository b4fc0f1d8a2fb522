"""Leaderboards: the registry's result records of a benchmark, ranked by the primary metric.

The catalog (``index.json``) only says which records exist; every value a leaderboard shows comes from the
record itself, read from the one place a record of that benchmark can live (``results/<benchmark>/<sha256>.json``),
verified against its SHA-256 and parsed as an :class:`EvalResult`. A catalog entry whose summary disagrees with
its record, whose record is missing, altered or not a valid result of this benchmark, or whose path points
anywhere else, is left off the board and listed under ``rejected`` with the reason.
"""

from __future__ import annotations

import json
import math
import re

from pydantic import ValidationError

from hub.cards import Benchmark, EvalResult
from hub.errors import CellHubError, IntegrityError
from hub.registry import Registry
from hub.registry.registry import RESULT_SUMMARY_KEYS
from hub.safety import check_relpath, printable

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: What a leaderboard row carries, every value taken from the verified record.
_ROW_KEYS = (
    "model",
    "value",
    "ci95",
    "metrics",
    "weights_sha256",
    "split",
    "split_sha256",
    "suite_version",
    "source",
    "inputs",
    "date",
    "predictions_sha256",
    "peer",
)


class Rejected(Exception):
    """A catalog entry the leaderboard does not list (the message says why)."""


def record_path(benchmark: str, sha256: object) -> str:
    """The only path a result record of ``benchmark`` with this SHA-256 may have in a registry."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise Rejected(f"catalog key {str(sha256)[:80]!r} is not a SHA-256")
    return check_relpath(f"results/{benchmark}/{sha256}.json", "result record path")


def _finite(x) -> bool:
    return x is None or math.isfinite(x)


def verified_record(bench: Benchmark, registry: Registry, entry: dict) -> dict:
    """The record behind catalog ``entry`` of ``bench`` (its ``sha256`` and summary), verified: read from
    ``results/<benchmark>/<sha256>.json`` only, its SHA-256 checked, parsed as an :class:`EvalResult` of this
    benchmark and equal to the summary on every field the summary holds. Anything else raises :class:`Rejected`."""
    sha = entry.get("sha256")
    try:
        path = record_path(bench.name, sha)
    except CellHubError as err:
        raise Rejected(err.problem) from None
    if entry.get("path") != path:
        raise Rejected(f"catalog path {str(entry.get('path'))[:200]!r} is not {path}")
    try:
        raw = registry.result_record({"path": path, "sha256": sha})
    except IntegrityError:
        raise Rejected("record altered: its bytes do not match its SHA-256") from None
    except FileNotFoundError:
        raise Rejected("record missing") from None
    except (OSError, ValueError, RecursionError, CellHubError) as err:  # unreadable, or not JSON
        raise Rejected(f"record unreadable ({err.__class__.__name__}: {str(err)[:200]})") from None
    try:
        record = EvalResult.model_validate(raw, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "record"
        raise Rejected(f"record is not a valid result ({where}: {first['msg']})") from None
    if record.benchmark != bench.name:
        raise Rejected(f"record is a result of {record.benchmark[:100]!r}, not of {bench.name}")
    if record.primary_metric != bench.primary_metric:
        raise Rejected(f"record's primary metric {record.primary_metric[:100]!r} is not {bench.primary_metric}")
    if not (_finite(record.value) and all(map(_finite, record.ci95)) and all(map(_finite, record.metrics.values()))):
        raise Rejected("record holds a value that is not a finite number")
    if record.value != record.metrics.get(record.primary_metric, record.value):
        raise Rejected(f"record value differs from its own {record.primary_metric}")
    for key in RESULT_SUMMARY_KEYS:  # every summary field must equal the record's
        if key in entry and entry[key] != raw.get(key):
            raise Rejected(
                f"catalog summary's {key} {json.dumps(entry[key])[:80]} differs from the record's "
                f"{json.dumps(raw.get(key))[:80]}"
            )
    return raw


def _entries(bench: Benchmark, registry: Registry) -> list[tuple[object, object]]:
    """The catalog's ``(sha256, summary)`` pairs of ``bench``, as they are (checked by :func:`verified_record`)."""
    index = registry.index()
    results = index.get("results", {}) if isinstance(index, dict) else None
    found = results.get(bench.name, {}) if isinstance(results, dict) else None
    if not isinstance(found, dict):
        return [(None, found)]
    return sorted(found.items(), key=lambda kv: str(kv[0]))


def _key(row: dict) -> tuple:
    """Results of one model: same name and weights (for predictions without weights: the same predictions)."""
    return row["model"], row["weights_sha256"], row["predictions_sha256"] if row["weights_sha256"] is None else ""


def verified_leaderboard(bench: Benchmark, registry: Registry) -> tuple[dict, dict[str, dict]]:
    """:func:`leaderboard`, and the verified records of its rows (SHA-256 -> the record as published)."""
    latest: dict[tuple, tuple[dict, dict]] = {}
    rejected = []
    for sha, summary in _entries(bench, registry):
        entry = {**summary, "sha256": sha} if isinstance(summary, dict) else {"sha256": sha}
        try:
            if not isinstance(summary, dict):
                raise Rejected("catalog entry is not an object")
            raw = verified_record(bench, registry, entry)
        except Rejected as err:
            rejected.append(
                {"sha256": printable(sha, 80), "path": printable(entry.get("path"), 200), "reason": printable(err, 500)}
            )
            continue
        if (raw["split_sha256"], raw["split"], raw["suite_version"]) != (
            bench.split_sha256,
            bench.split,
            bench.suite_version,
        ):
            continue
        row = {k: raw.get(k) for k in _ROW_KEYS} | {"path": entry["path"], "sha256": sha}
        if _key(row) not in latest or row["date"] > latest[_key(row)][0]["date"]:
            latest[_key(row)] = (row, raw)
    rows = sorted((r for r, _ in latest.values()), key=lambda r: (r["value"] is None, -(r["value"] or 0), r["model"]))
    extra = [_extra_inputs(bench, r) for r in rows]
    board = [{"rank": i + 1, "reference": None, **r} for i, r in enumerate(r for r, e in zip(rows, extra) if not e)]
    board += [{"rank": None, "reference": f"also uses {', '.join(e)}", **r} for r, e in zip(rows, extra) if e]
    records = {r["sha256"]: raw for r, raw in latest.values()}
    return {
        "benchmark": bench.name,
        "dataset": bench.dataset,
        "primary_metric": bench.primary_metric,
        "split_sha256": bench.split_sha256,
        "inputs": bench.inputs,
        "rows": board,
        "rejected": rejected,
    }, records


def leaderboard(bench: Benchmark, registry: Registry) -> dict:
    """``{"benchmark", "primary_metric", "split_sha256", "inputs", "rows": [...], "rejected": [...]}``, best first.

    Only results on the benchmark's frozen split and suite count; of several results of one model (same
    name and weights), the latest is kept. Each row carries its provenance: weights and split hashes, suite
    version, who computed it (``hub``; ``reproduced``: a peer tool run by the hub's script of ``peers/``; or
    ``self-reported``) and the record's path in the registry, every value
    read from the verified record (:func:`verified_record`). Results that used input channels beyond the
    benchmark's come last, unranked, as references. ``rejected``: the catalog entries left off, each with its
    ``sha256``, ``path`` and ``reason``.
    """
    return verified_leaderboard(bench, registry)[0]


def _extra_inputs(bench: Benchmark, row: dict) -> list[str]:
    """Input channels a result used beyond those the benchmark allows: such a row is a reference, not ranked
    (e.g. a classifier that also sees the DNA stain on a label-free benchmark)."""
    if not bench.inputs or not row.get("inputs"):
        return []
    return [c for c in row["inputs"] if c not in bench.inputs]
