"""``cellhub peers ...``: the field's own tools on the hub's benchmarks (list, run, publish, compare)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.cli._options import JsonOption, RegistryOption

app = typer.Typer(
    help="Peers: the field's own tools (StarDist, Cellpose, CARE, laptrack, ...) trained and run by their own "
    "code on the benchmarks' splits, in their own environments (make peers).",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def _log(message: str) -> None:
    err.print(escape(message), highlight=False)


@app.command("list")
def list_cmd(as_json: JsonOption = False) -> None:
    """List the peers of peers/, the benchmarks each enters, whether its environment is installed and its
    committed results."""
    from hub.peers import peers

    rows = []
    for peer in peers():
        for name in peer.benchmarks():
            record = peer.record(name)
            rows.append(
                {
                    "peer": peer.name,
                    "title": peer.spec.title,
                    "benchmark": name,
                    "ready": peer.ready,
                    "primary_metric": record["primary_metric"] if record else None,
                    "value": record["value"] if record else None,
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("peer", "benchmark", "environment", "committed result")
    for r in rows:
        value = "—" if r["value"] is None else f"{r['primary_metric']} {r['value']:.3f}"
        ready = "ready" if r["ready"] else "not installed (make peers)"
        table.add_row(str(r["title"]), str(r["benchmark"]), ready, value)
    console.print(table)


def _needs_run(peer, benchmark: str) -> bool:
    """No committed record, or a stale one (another split, suite, script or environment)."""
    from hub.errors import IntegrityError
    from hub.peers import check_record

    try:
        return check_record(peer, benchmark) is None
    except IntegrityError as err:
        _log(f"{err}: running it again")
        return True


@app.command("run")
def run_cmd(
    name: str = typer.Argument(None, help="peer (a folder of peers/; default: every peer)"),
    benchmark: list[str] = typer.Option(None, "--benchmark", help="benchmark(s) to run (default: all of the peer's)"),
    missing: bool = typer.Option(
        False, "--missing", help="only the runs without a valid committed result (make peers)"
    ),
    quick: bool = typer.Option(False, "--quick", help="smoke test on a few training images (not a peer result)"),
    out: Path = typer.Option(
        None, "--out", help="folder for the result records (default: peers/NAME/results; none with --quick)"
    ),
    dataset: Path = typer.Option(None, "--dataset", help="local copy of the benchmark's dataset"),
    threads: int = typer.Option(None, "--threads", help="CPU threads for the tool (default: all)"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the peer with its own code on the benchmark's train split (val for its own tuning), predict the
    scored split and score it with the hub's harness; write the result records."""
    from hub.peers import get_peer, peers, run_peer, save_record

    records = []
    for peer in [get_peer(name)] if name else peers():
        wanted = benchmark or [run.benchmark for run in peer.spec.runs]
        if missing:
            wanted = [b for b in wanted if any(_needs_run(peer, x) for x in (b, *peer.run_for(b).also))]
        folder = out or (None if quick else peer.results_dir)
        for b in wanted:
            results = run_peer(peer, b, quick=quick, dataset=dataset, registry=registry, threads=threads, log=_log)
            for result in results:
                if folder is not None:
                    save_record(result, folder / f"{result.benchmark.replace('/', '.')}.json")
                records.append(result.model_dump(mode="json"))
    if as_json:
        typer.echo(json.dumps(records, indent=1))
        return
    table = Table("peer", "benchmark", "metric", "value", "95% CI", "train s", "predict s")
    for r in records:
        ci = [("—" if v is None else f"{v:.3f}") for v in r["ci95"]]
        value = "—" if r["value"] is None else f"{r['value']:.3f}"
        p = r["peer"]
        table.add_row(
            r["model"],
            r["benchmark"],
            r["primary_metric"],
            value,
            "–".join(ci),
            f"{p['train_s']:.0f}",
            f"{p['predict_s']:.1f}",
        )
    console.print(table)


@app.command("publish")
def publish_cmd(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Publish the committed peer records of peers/ to the registry (each checked against the frozen benchmark
    and the script and requirements that made it); leaderboards list them as peer rows."""
    from hub.peers import install
    from hub.registry import Registry

    rows = install(Registry(registry), log=_log)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("peer", "benchmark", "metric", "value", "95% CI")
    for r in rows:
        ci = "–".join("—" if v is None else f"{v:.3f}" for v in r["ci95"])
        table.add_row(r["title"], r["benchmark"], r["primary_metric"], _num(r["value"]), ci)
    console.print(table)


def _num(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _time(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 60:.0f} min" if v >= 60 else f"{v:.0f} s" if v >= 1 else f"{v * 1000:.0f} ms"


def _cell(e: dict | None) -> list[str]:
    if e is None:
        return ["—", "—", "—", "—"]
    lo, hi = e["ci95"]
    return [
        e["name"],
        f"{_num(e['value'])} [{_num(lo)}, {_num(hi)}]",
        _time(e["train_s"]),
        _time(e["predict_s_per_sample"]),
    ]


@app.command("compare")
def compare_cmd(
    registry: RegistryOption = None,
    markdown: bool = typer.Option(False, "--markdown", help="print a Markdown table (the README's)"),
    as_json: JsonOption = False,
) -> None:
    """Per benchmark, the hub's best model against the best peer: primary metric with its 95% interval,
    training wall time and inference time per sample, from the registry's verified leaderboards."""
    from hub.bench import comparison
    from hub.registry import Registry

    rows = comparison(Registry(registry))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    header = [
        "benchmark",
        "metric",
        "hub's best",
        "value [95% CI]",
        "train",
        "per image",
        "best peer",
        "value [95% CI]",
        "train",
        "per image",
        "verdict",
    ]
    cells = [[r["benchmark"], r["primary_metric"], *_cell(r["hub"]), *_cell(r["peer"]), r["verdict"]] for r in rows]
    if markdown:
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for c in cells:
            typer.echo("| " + " | ".join(x.replace("|", "\\|") for x in c) + " |")
        return
    table = Table(*header)
    for c in cells:
        table.add_row(*map(escape, c))
    console.print(table)
