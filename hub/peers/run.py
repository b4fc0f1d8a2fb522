"""Run a peer tool on a benchmark and score it with the hub's harness: hand-off, the tool's script in its own
environment, the same scoring as every other result, and a record that says how it was made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, ValidationError

from hub._readers import read_json
from hub.baselines import get_baseline
from hub.bench import benchmark_dataset, get_benchmark, score_predictions
from hub.bench.truth import verify_truth
from hub.cards import Benchmark, EvalResult, PeerRun
from hub.cards.dataset import _Model
from hub.config import build_root
from hub.dataset import open_dataset
from hub.errors import InvalidInput, NotFound
from hub.peers.handoff import input_channels, write_handoff
from hub.peers.spec import Peer, PeerBenchmarkRun
from hub.tasks import get_task

QUICK_IMAGES = 3  # training images per split in a quick run
MAX_REPORT_BYTES = 1 << 20


class RunReport(_Model):
    """What a peer script reports back (``--report``), validated before it enters a record."""

    tool: str
    tool_version: str = Field(max_length=64)
    train_s: float = Field(ge=0)
    predict_s: float = Field(ge=0)
    predicted: int = Field(ge=0)
    device: str = Field(max_length=200)
    options: dict
    notes: dict


def _read_report(path: Path, peer: Peer) -> RunReport:
    if not path.is_file():
        raise InvalidInput(f"peer {peer.name} wrote no run report", path)
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise InvalidInput(f"run report is larger than {MAX_REPORT_BYTES} bytes", path)
    try:
        report = RunReport.model_validate(read_json(path, "run report"))
    except ValidationError as err:
        first = err.errors()[0]
        raise InvalidInput(f"run report: {'.'.join(map(str, first['loc']))}: {first['msg']}", path) from None
    if report.tool != peer.spec.package:
        raise InvalidInput(f"run report names tool {report.tool!r}, peer.yaml {peer.spec.package!r}", path)
    return report


def _detections(run: PeerBenchmarkRun, bench: Benchmark, dataset: Path, out: Path) -> str:
    """The masks a hub baseline predicts for the scored split, one ``<id>.tif`` stack each (linker peers link
    them); returns the model's name@version."""
    import numpy as np
    import tifffile

    from hub.models import Model
    from hub.models.predict import predict_to
    from hub.ome.ctc import MASK, numbered, read_stack

    base = get_baseline(run.detections or "")
    if not base.committed:
        raise NotFound(f"baseline {base.name} has no committed model to detect with", base.model_dir)
    model = Model.load(base.model_dir)
    with tempfile.TemporaryDirectory(prefix="cellhub-detections-") as tmp:
        ids = predict_to(model, dataset, Path(tmp) / "pred", split=bench.split)
        out.mkdir()
        for sid in ids:
            frames = numbered(Path(tmp) / "pred" / f"{sid}_RES", MASK)
            masks = read_stack([frames[t] for t in sorted(frames)])
            tifffile.imwrite(out / f"{sid}.tif", np.asarray(masks), compression="zlib")
    return model.card.ref


def run_peer(
    peer: Peer,
    benchmark: str,
    *,
    quick: bool = False,
    dataset: str | Path | None = None,
    registry: str | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> list[EvalResult]:
    """Train and run ``peer`` for ``benchmark`` (its run in peer.yaml) and score the predictions on the run's
    benchmark and its ``also`` benchmarks. ``quick``: a smoke test on the first few training images (the model
    is ``<name>-quick``, never a peer row). The tool's output goes to ``<build>/peers/<name>/<benchmark>.log``."""
    if not peer.ready:
        raise NotFound(f"peer {peer.name} has no environment (run `make peers`)", peer.python)
    run = peer.run_for(benchmark)
    bench = get_benchmark(run.benchmark)
    data = benchmark_dataset(bench, dataset, registry)
    ds = open_dataset(data)
    verify_truth(bench, ds)  # a copy that is not the frozen truth is refused before hours of training
    code = {  # what runs, hashed before it runs
        "script_sha256": peer.script_sha256(),
        "shared_sha256": peer.shared_sha256(),
        "requirements_sha256": peer.requirements_sha256(),
        "uses": peer.uses_sha256(),
    }
    logs = build_root() / "peers" / peer.name
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{bench.name.replace('/', '.')}{'.quick' if quick else ''}.log"
    with tempfile.TemporaryDirectory(prefix=f"cellhub-peer-{peer.name}-") as tmp:
        work = Path(tmp)
        log(f"{peer.name}: handing {bench.name} over ({'quick' if quick else 'full'} run)")
        write_handoff(bench, ds, work / "data", limit=QUICK_IMAGES if quick else None)
        detections = _detections(run, bench, data, work / "data" / "detections") if run.detections else None
        command = [
            str(peer.python),
            str(peer.script),
            "--data",
            str(work / "data"),
            "--out",
            str(work / "pred"),
            "--report",
            str(work / "report.json"),
            "--options",
            json.dumps(run.options),
            *(["--quick"] if quick else []),
        ]
        env = {**os.environ, "PEER_THREADS": str(threads or os.cpu_count() or 1), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)  # the tool's environment, not the hub's
        log(f"{peer.name}: training and predicting (output: {log_path})")
        with open(log_path, "w") as out:
            done = subprocess.run(command, cwd=peer.folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise InvalidInput(f"peer {peer.name} failed (exit {done.returncode}): {tail[0][:300]}", log_path)
        report = _read_report(work / "report.json", peer)
        results = []
        for name in (run.benchmark, *run.also):
            target = get_benchmark(name)
            pred = work / "pred"
            spec = get_task(target.task)
            if target.task != bench.task:
                if spec.adapt is None:
                    raise InvalidInput(
                        f"{bench.task} predictions cannot be scored on {name}", peer.folder / "peer.yaml"
                    )
                pred = work / f"pred-{spec.key}"
                shutil.copytree(work / "pred", pred)
                spec.adapt(pred)
            result = score_predictions(
                target,
                benchmark_dataset(target, dataset, registry),
                pred,
                model=f"{peer.name}-quick" if quick else peer.name,
                source="reproduced",
                inputs=input_channels(target, ds),
                predict_s=report.predict_s,
            )
            result.peer = PeerRun(
                name=peer.name,
                title=peer.spec.title,
                tool=report.tool,
                tool_version=report.tool_version,
                url=peer.spec.url,
                script=peer.script_path(),
                **code,
                options=report.options,
                trained_on=[s for s in ("train", "val") if s != target.split],
                detections=detections,
                train_s=report.train_s,
                predict_s=report.predict_s,
                device=report.device,
                notes=report.notes,
            )
            result.packages[report.tool] = report.tool_version
            log(f"{peer.name}: {name} {result.primary_metric} = {result.value}")
            results.append(result)
    return results


def save_record(result: EvalResult, path: Path) -> None:
    """Write a result record (JSON), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result.model_dump(mode="json"), indent=1) + "\n")
    os.replace(tmp, path)
