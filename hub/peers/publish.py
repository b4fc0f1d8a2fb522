"""The committed peer records: checked against the frozen benchmarks and the scripts that made them, published
to a registry (``cellhub peers publish``; ``make demo`` runs it), where leaderboards show them as peer rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from hub.bench import get_benchmark
from hub.cards import EvalResult
from hub.errors import IntegrityError
from hub.peers.spec import Peer, peers
from hub.registry import Registry


def check_record(peer: Peer, benchmark: str) -> EvalResult | None:
    """The committed record of ``peer`` on ``benchmark`` (None if there is none), once it is shown to be a
    ``reproduced`` result of this peer on the frozen split and suite, made by the script and requirements this
    checkout holds; else a one-line :class:`IntegrityError` naming the record."""
    raw = peer.record(benchmark)
    if raw is None:
        return None
    path = peer.record_path(benchmark)
    try:
        record = EvalResult.model_validate(raw, strict=True)
    except ValidationError as err:
        first = err.errors()[0]
        raise IntegrityError(
            f"not a valid result record ({'.'.join(map(str, first['loc']))}: {first['msg']})", path
        ) from None
    bench = get_benchmark(benchmark)
    run = record.peer
    problems = [
        (record.benchmark != bench.name, f"a result of {record.benchmark}, not {bench.name}"),
        (record.split_sha256 != bench.split_sha256, "scored on another split than the frozen one"),
        (
            record.suite_version != bench.suite_version,
            f"metric suite {record.suite_version}, not {bench.suite_version}",
        ),
        (record.source != "reproduced" or run is None, "not a reproduced (peer) result"),
        (run is not None and (record.model, run.name) != (peer.name, peer.name), f"not a record of peer {peer.name}"),
        (
            run is not None and run.script_sha256 != peer.script_sha256(),
            f"made by another {peer.script_path()} than this one (rerun it)",
        ),
        (
            run is not None and run.shared_sha256 is not None and run.shared_sha256 != peer.shared_sha256(),
            "made with other shared modules of peers/ (common.py, linking.py) than these (rerun it)",
        ),
        (
            run is not None and run.uses != peer.uses_sha256(),
            f"made with other scripts of the peers it runs ({', '.join(peer.spec.uses)}) than these (rerun it)",
        ),
        (
            run is not None and run.requirements_sha256 != peer.requirements_sha256(),
            "made in another environment than requirements.txt pins (rerun it)",
        ),
    ]
    for bad, why in problems:
        if bad:
            raise IntegrityError(f"committed peer record is {why}", path)
    return record


def install(registry: Registry, *, folder: Path | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Publish every committed peer record of ``folder`` (default ``peers/``) that passes :func:`check_record`
    (publishing is content-addressed: a record already there is left as it is). Returns one summary per record."""
    summaries = []
    for peer in peers(folder):
        for name in peer.benchmarks():
            record, raw = check_record(peer, name), peer.record(name)
            if record is None or raw is None:
                log(f"{peer.name}: no committed result for {name} (cellhub peers run {peer.name})")
                continue
            registry.publish_result(raw)  # the committed bytes' content, as checked
            summaries.append(
                {
                    "peer": peer.name,
                    "title": peer.spec.title,
                    "benchmark": name,
                    "primary_metric": record.primary_metric,
                    "value": record.value,
                    "ci95": record.ci95,
                }
            )
    return summaries
