"""``cellhub benchmarks ...``: list the benchmarks, evaluate a model or predictions on one, rank its results."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from hub.cli._options import DeviceOption, JsonOption, RegistryOption, SchedulerOption
from hub.cli.registry import console
from hub.tasks import get_task, task_keys

app = typer.Typer(
    help="Benchmarks: the frozen test splits, evaluation on them, and their leaderboards.", no_args_is_help=True
)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


@app.command("list")
def list_cmd(as_json: JsonOption = False) -> None:
    """List the hub's benchmarks (declared by the dataset recipes, frozen with their split hashes)."""
    from hub.bench import benchmarks

    rows = benchmarks()
    if as_json:
        typer.echo(json.dumps([b.model_dump() for b in rows], indent=1))
        return
    table = Table("benchmark", "dataset", "split", "primary metric", "split sha256")
    for b in rows:
        table.add_row(b.name, b.dataset, b.split, b.primary_metric, b.split_sha256[:12])
    console.print(table)


@app.command("eval")
def eval_cmd(
    ref: str | None = typer.Argument(None, help="hub model NAME[@VERSION] or model folder to run"),
    benchmark: str | None = typer.Option(None, help="benchmark, e.g. dsb2018-fluo/instance"),
    predictions: Path | None = typer.Option(
        None, help="predictions of any tool (folder, or CSV for classification) instead of a model"
    ),
    truth: Path | None = typer.Option(None, help="score against this curated dataset (with --task)"),
    task: str | None = typer.Option(None, help=", ".join(task_keys())),
    split: str = typer.Option("test", help="split scored with --truth"),
    name: str = typer.Option("submission", help="name of the method that made --predictions"),
    dataset: Path | None = typer.Option(None, help="local copy of the benchmark's dataset"),
    registry: RegistryOption = None,
    publish: bool = typer.Option(False, "--publish", help="publish the result record to the registry"),
    out: Path | None = typer.Option(None, help="write the result record (JSON) here"),
    device: DeviceOption = "cpu",
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a hub model, or predictions from any tool, on a benchmark split; print a hash-pinned result."""
    from hub.bench import adhoc_benchmark, benchmark_dataset, evaluate_model, get_benchmark, score_predictions

    if (ref is None) == (predictions is None):
        raise typer.BadParameter("give a model REF or --predictions DIR (one of them)")
    if truth is not None:
        if not task:
            raise typer.BadParameter("--truth needs --task")
        bench, path = adhoc_benchmark(truth, task, split), truth
    elif benchmark:
        bench = get_benchmark(benchmark)
        path = benchmark_dataset(bench, dataset, registry)
    else:
        raise typer.BadParameter("give --benchmark NAME, or --truth DATASET --task T")
    if ref is not None:
        from hub.models import load_model

        model = load_model(ref, registry, device=device)
        result = evaluate_model(bench, path, model, device=device, executor=scheduler)
        if (Path(ref) / "card.yaml").is_file():
            _mirror_into_card(Path(ref), result, out)
    else:
        result = score_predictions(bench, path, predictions, model=name, executor=scheduler)  # type: ignore[arg-type]
    record = result.model_dump(mode="json")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1))
    sha = None
    if publish:
        from hub.registry import Registry

        sha = Registry(registry).publish_result(record)
    if as_json:
        extra = {"per_sequence": record["per_sample"]} if get_task(result.task).sequences else {}
        typer.echo(json.dumps({**record, **extra, "published_sha256": sha}))
        return
    ci = result.ci95
    console.print(
        f"[bold]{escape(result.benchmark)}[/] {escape(result.model)}: {result.primary_metric} = "
        f"{_fmt(result.value)} (95% CI {_fmt(ci[0])}-{_fmt(ci[1])}, {len(result.per_sample)} "
        f"samples, {result.source})",
        highlight=False,
    )
    table = Table("metric", "value")
    for k, v in result.metrics.items():
        table.add_row(k, _fmt(v))
    console.print(table)
    if sha:
        console.print(f"[green]published[/] result {sha[:16]}...", highlight=False)


@app.command("leaderboard")
def leaderboard_cmd(
    benchmark: str = typer.Argument(..., help="benchmark, e.g. dsb2018-fluo/instance"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank the published results of a benchmark by its primary metric (with provenance)."""
    from hub.bench import get_benchmark, leaderboard
    from hub.registry import Registry

    board = leaderboard(get_benchmark(benchmark), Registry(registry))
    for r in board["rejected"]:  # one line each, on stderr: the board itself stays clean
        typer.echo(
            f"warning: {board['benchmark']}: not listed: result {r['sha256'][:16]} ({r['path']}): {r['reason']}",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps(board, indent=1))
        return
    table = Table(title=f"{board['benchmark']} — {board['primary_metric']} (split {board['split_sha256'][:12]})")
    for col in ("#", "model", board["primary_metric"], "95% CI", "inputs", "source", "weights"):
        table.add_column(col)
    for r in board["rows"]:
        ci = r["ci95"] or [None, None]
        peer = r.get("peer")
        table.add_row(
            str(r["rank"] or "ref"),
            r["model"] + (f" ({peer['title']} {peer['tool_version']}, peer)" if peer else ""),
            _fmt(r["value"]),
            f"{_fmt(ci[0])}-{_fmt(ci[1])}",
            ", ".join(r["inputs"] or []) + (f" ({r['reference']})" if r["reference"] else ""),
            r["source"],
            (r["weights_sha256"] or "—")[:12],
        )
    console.print(table)


def _mirror_into_card(folder: Path, result, record_path: Path | None) -> None:
    """Add (or replace) the result's summary in a local model folder's card (the weights are untouched)."""
    from hub.cards import ModelCard, ResultSummary, load_card, save_card

    card = load_card(ModelCard, folder / "card.yaml")
    summary = ResultSummary(
        benchmark=result.benchmark,
        split=result.split,
        metrics=result.metrics,
        primary_metric=result.primary_metric,
        ci95=result.ci95,
        split_sha256=result.split_sha256,
        record=str(record_path.name) if record_path else None,
    )
    card.results = [r for r in card.results if r.benchmark != result.benchmark] + [summary]
    save_card(card, folder / "card.yaml")
