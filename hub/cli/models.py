"""``cellhub models ...``: list, info, families, train, finetune, predict, tune, publish, pull, export, baselines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.cli._options import (
    LOCKFILE,
    DeviceOption,
    JsonOption,
    LocalOption,
    LockedOption,
    LockfileOption,
    RegistryOption,
    RootOption,
    SchedulerOption,
    SearchOption,
)
from hub.cli.registry import info_published, is_local, list_kind, publish_cmd, pull_cmd
from hub.tasks import task_names

app = typer.Typer(
    help="Models: list and inspect published ones; train, fine-tune, run, tune, publish, pull, export.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 160)  # no wrapped tables in logs and pipes


def _grid(items: list[str], flag: str = "--grid", single: bool = False) -> dict[str, list]:
    """``key=v1,v2`` -> {key: [v1, v2]} with YAML scalars (numbers, booleans) decoded (no aliases); ``single``:
    one value per key."""
    from hub.safety import load_yaml_text

    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values or (single and "," in values):
            raise typer.BadParameter(f"{flag} expects {'key=value' if single else 'key=v1,v2,...'}, got {item!r}")
        grid[key.strip().replace("-", "_")] = [load_yaml_text(v, f"{flag} {key}") for v in values.split(",")]
    return grid


def _summary(model, out: Path, as_json: bool) -> None:
    card = model.card
    t = card.training
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ref": card.ref,
                    "path": str(out),
                    "weights_sha256": card.weights.sha256,
                    "parameters": card.weights.parameters,
                    "epochs": t.epochs,
                    "best_epoch": t.best_epoch,
                    "device": t.device,
                    "wall_time_s": t.wall_time_s,
                    "trials": [tr.model_dump() for tr in t.trials],
                }
            )
        )
        return
    console.print(
        f"[green]trained[/] {escape(card.ref)} ({escape(card.architecture.network)}, "
        f"{card.weights.parameters:,} parameters) in "
        f"{t.wall_time_s:.0f} s on {escape(t.device)}; best epoch {t.best_epoch}/{t.epochs}",
        highlight=False,
    )
    for tr in t.trials:
        console.print(f"  trial {tr.hyperparameters}: val loss {tr.val_loss}", highlight=False)
    console.print(str(out), highlight=False)


@app.command("list")
def list_cmd(
    local: LocalOption = False,
    root: RootOption = None,
    search: SearchOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the models published in a registry; with --local, the model folders trained on this machine."""
    list_kind("models", local, root, search, registry, as_json, _list_local)


def _list_local(root: Path | None, as_json: bool) -> None:
    """The model folders (card.yaml + weights) under ``root``/models (default: the build folder), as a table."""
    from hub.cards import ModelCard, load_card
    from hub.config import build_root

    base = (root or build_root()) / "models"
    cards = sorted(base.rglob("card.yaml")) if base.is_dir() else []
    rows: list[dict[str, Any]] = []
    for path in cards:
        if not (path.parent / "weights.safetensors").is_file():
            continue
        card = load_card(ModelCard, path)
        rows.append(
            {
                "name": card.name,
                "version": card.version,
                "path": str(path.parent),
                "task": card.task,
                "family": card.architecture.family,
                "backbone": card.architecture.backbone,
                "parameters": card.weights.parameters,
                "weights_sha256": card.weights.sha256,
                "benchmarks": [r.benchmark for r in card.results],
            }
        )
    if as_json:
        typer.echo(json.dumps({"models": rows}, indent=2))
        return
    table = Table(title=f"models in {base}")
    table.add_column("model", no_wrap=True)
    for col in ("task", "family", "backbone", "parameters", "benchmarks"):
        table.add_column(col)
    table.add_column("path", overflow="fold")
    for r in rows:
        table.add_row(
            escape(f"{r['name']}@{r['version']}"),
            escape(str(r["task"])),
            escape(r["family"]),
            escape(r["backbone"]),
            f"{r['parameters']:,}",
            escape(", ".join(r["benchmarks"])) or "-",
            escape(r["path"]),
        )
    console.print(table)


@app.command("info")
def info_cmd(
    ref: str = typer.Argument(..., help="model folder, or NAME[@VERSION] published in the registry"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a model: a folder's card (its network is built, so a bad card fails here), or a published
    version's manifest (nothing is downloaded)."""
    if not is_local(ref):
        info_published("models", ref, registry, as_json)
        return
    from hub.cards import dump_card
    from hub.models import load_model

    card = load_model(ref, registry).card
    typer.echo(card.model_dump_json(indent=1, exclude_none=True) if as_json else dump_card(card))


@app.command("families")
def families_cmd(as_json: JsonOption = False) -> None:
    """List the registered model families and their tasks."""
    from hub.models import families

    fams = families()
    if as_json:
        typer.echo(json.dumps(fams))
        return
    table = Table("family", "task")
    for name, task in fams.items():
        table.add_row(name, task)
    console.print(table)


def _train(
    overrides: dict, recipe: Path | None, grid: list[str], out: Path | None, as_json: bool, nproc: int = 1
) -> None:
    from hub.config import build_root
    from hub.models import TrainConfig, load_recipe, train

    if grid:
        overrides["grid"] = _grid(grid)
    if recipe is not None:
        cfg = load_recipe(recipe, **overrides)
    else:
        missing = [k for k in ("name", "task", "dataset") if not overrides.get(k)]
        if missing:
            raise typer.BadParameter(f"give --recipe FILE, or --{missing[0]} (and --name, --task, --dataset)")
        cfg = TrainConfig.model_validate({k: v for k, v in overrides.items() if v is not None})
    out = out or build_root() / "models" / cfg.name / cfg.version
    model = train(cfg, out, nproc=nproc)
    _summary(model, out, as_json)


@app.command("train")
def train_cmd(
    recipe: Path | None = typer.Option(None, help="training recipe YAML (model_cards/<name>/recipe.yaml)"),
    task: str | None = typer.Option(None, help=", ".join(task_names())),
    dataset: str | None = typer.Option(None, help="curated dataset folder, or NAME@VERSION from the registry"),
    family: str | None = typer.Option(None, help="model family (see `cellhub models families`)"),
    name: str | None = typer.Option(None, help="model name (lower case, dashes)"),
    version: str | None = typer.Option(None, help="model version X.Y.Z"),
    backbone: str | None = typer.Option(None, help="timm backbone, e.g. resnet18"),
    epochs: int | None = typer.Option(None),
    steps_per_epoch: int | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    patch: int | None = typer.Option(None),
    lr: float | None = typer.Option(None),
    optimizer: str | None = typer.Option(None, help="adamw or sgd"),
    weight_decay: float | None = typer.Option(None),
    dropout: float | None = typer.Option(None),
    class_weighting: str | None = typer.Option(None, help="none, balanced or resample"),
    label: str | None = typer.Option(None, help="label image to train on (e.g. tracks, segmentation)"),
    seed: int | None = typer.Option(None),
    members: int | None = typer.Option(None, help="a deep ensemble of this many networks (seeds seed, seed+1...)"),
    device: str | None = typer.Option(None, help="auto, cpu, cuda"),
    grid: list[str] = typer.Option([], help="hyper-parameter grid: key=v1,v2 (repeatable); best on validation"),
    registry: RegistryOption = None,
    out: Path | None = typer.Option(None, help="model folder to write (default: $CELLHUB_BUILD/models/NAME/VERSION)"),
    nproc: int = typer.Option(
        1, "--nproc", help="data-parallel processes (DDP: gloo on CPU, nccl on GPU); the batch is split over them"
    ),
    as_json: JsonOption = False,
) -> None:
    """Train a model on a curated dataset and write its card and safetensors weights."""
    overrides = dict(
        task=task,
        dataset=dataset,
        family=family,
        name=name,
        version=version,
        backbone=backbone,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        patch=patch,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        dropout=dropout,
        class_weighting=class_weighting,
        label=label,
        seed=seed,
        members=members,
        device=device,
        registry=registry,
    )
    _train(overrides, recipe, grid, out, as_json, nproc)


@app.command("finetune")
def finetune_cmd(
    base: str = typer.Argument(..., help="hub model NAME@VERSION or folder, or timm:<backbone> (pretrained)"),
    dataset: str = typer.Option(..., help="curated dataset folder, or NAME@VERSION from the registry"),
    name: str = typer.Option(..., help="name of the fine-tuned model"),
    task: str | None = typer.Option(None, help="task (default: the base model's)"),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="train the decoder / head only"),
    label: str | None = typer.Option(None, help="label image to train on (e.g. tracks, segmentation)"),
    recipe: Path | None = typer.Option(None, help="recipe YAML with further settings"),
    version: str | None = typer.Option(None),
    epochs: int | None = typer.Option(None),
    steps_per_epoch: int | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    patch: int | None = typer.Option(None),
    lr: float | None = typer.Option(None),
    seed: int | None = typer.Option(None),
    device: str | None = typer.Option(None),
    registry: RegistryOption = None,
    out: Path | None = typer.Option(None, help="model folder to write"),
    as_json: JsonOption = False,
) -> None:
    """Fine-tune (transfer learning) a hub model or a pretrained timm backbone on a dataset."""
    if task is None and not base.startswith("timm:"):
        from hub.models import load_model

        task = load_model(base, registry).card.task
    overrides = dict(
        base_model=base,
        dataset=dataset,
        name=name,
        task=task,
        freeze_encoder=freeze_encoder,
        label=label,
        version=version,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        patch=patch,
        lr=lr,
        seed=seed,
        device=device,
        registry=registry,
    )
    if base.startswith("timm:"):
        overrides["backbone"] = base[5:]
    _train(overrides, recipe, [], out, as_json)


@app.command("predict")
def predict_cmd(
    ref: str = typer.Argument(..., help="model NAME[@VERSION] from the registry, or a model folder"),
    source: Path = typer.Argument(..., help="an image file, a folder of images, or a curated dataset folder"),
    out: Path = typer.Option(..., help="output folder (new or empty)"),
    split: str | None = typer.Option(None, help="only this split of a dataset"),
    scale: float = typer.Option(
        1.0,
        help="resize images by this factor first, e.g. 0.5 when the objects are "
        "twice as large as in the training data (outputs keep the input size)",
    ),
    registry: RegistryOption = None,
    device: DeviceOption = "cpu",
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a model: label TIFFs, CTC <seq>_RES folders, predicted-channel TIFFs or predictions.csv."""
    from hub.models import load_model
    from hub.models.predict import predict_to

    model = load_model(ref, registry, device=device)
    ids = predict_to(model, source, out, split=split, scale=scale, executor=scheduler)
    if as_json:
        typer.echo(json.dumps({"model": model.card.ref, "out": str(out), "samples": ids}))
    else:
        console.print(
            f"[green]predicted[/] {len(ids)} sample(s) with {escape(model.card.ref)} -> {escape(str(out))}",
            highlight=False,
        )


@app.command("publish")
def publish(
    path: Path = typer.Argument(..., help="model folder (card.yaml + weights.safetensors)"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a model version (its card must validate and its weights match the card's SHA-256)."""
    from hub.models import check_model

    publish_cmd("models", path, registry, False, as_json, check_model)


@app.command("pull")
def pull(
    ref: str = typer.Argument(..., help="NAME[@VERSION]"),
    registry: RegistryOption = None,
    locked: LockedOption = False,
    lockfile: LockfileOption = Path(LOCKFILE),
    as_json: JsonOption = False,
) -> None:
    """Download a model version into the verified cache and print its local path."""
    pull_cmd("models", ref, registry, locked, lockfile, as_json)


@app.command("export")
def export_cmd(
    ref: str = typer.Argument(..., help="model NAME[@VERSION] from the registry, or a model folder"),
    fmt: str = typer.Option(..., "--format", help="hf (Hugging Face model card) or bioimageio (rdf.yaml package)"),
    out: Path = typer.Option(..., help="output folder (new or empty)"),
    sample: Path | None = typer.Option(
        None,
        help="bioimageio: image file, folder or curated dataset whose first "
        "(test) image becomes the test input (default: synthetic)",
    ),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a model as a Hugging Face model card folder or a bioimage.io model package."""
    from hub.models import Model
    from hub.models.export import export, sample_image
    from hub.registry import local_path

    folder = local_path("models", ref, registry)
    model = Model.load(folder)
    files = export(model, fmt, out, sample_image(model, sample) if sample is not None else None, source=folder)
    if as_json:
        typer.echo(json.dumps({"format": fmt, "out": str(out), "files": files}))
    else:
        console.print(
            f"[green]exported[/] {escape(model.card.ref)} as {escape(fmt)} ({len(files)} files)", highlight=False
        )
        console.print(escape(str(out)), highlight=False)


@app.command("baselines")
def baselines_cmd(
    registry: RegistryOption = None,
    evaluate: bool = typer.Option(
        False, "--evaluate", help="evaluate every baseline again instead of publishing its committed result records"
    ),
    as_json: JsonOption = False,
) -> None:
    """Publish the bundled baselines of model_cards/ and their results to the registry, and pull them back.

    A recipe without committed weights is trained in a quick mode first (as NAME-quick, not a baseline)."""
    from hub.baselines import install
    from hub.registry import Registry

    err = Console(stderr=True)
    rows = install(Registry(registry), evaluate=evaluate, log=lambda m: err.print(escape(m), highlight=False))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("model", "benchmark", "metric", "value", "95% CI")
    for r in rows:
        ci = r["ci95"] or [None, None]
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(
            r["model"] + (" (quick mode)" if r["quick"] else ""),
            r["benchmark"],
            r["primary_metric"],
            fmt(r["value"]),
            f"{fmt(ci[0])}–{fmt(ci[1])}",
        )
    console.print(table)


@app.command("tune")
def tune_cmd(
    folder: Path = typer.Argument(..., help="model folder (card.yaml + weights.safetensors)"),
    dataset: str = typer.Option(..., help="curated dataset folder, or NAME@VERSION from the registry"),
    split: str | None = typer.Option(None, help="labelled split to tune on [default: val, else train]"),
    grid: list[str] = typer.Option([], help="key=v1,v2 (repeatable) [default: the family's grid]"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tune a segmentation or tracking model's post-processing thresholds on a labelled split (never test);
    the best options go into its card, the weights stay as they are."""
    from hub.models.tuning import tune
    from hub.registry import local_path

    if split == "test":
        raise typer.BadParameter("tuning on the test split would leak it into the benchmark; use val or train")
    result = tune(folder, local_path("datasets", dataset, registry), split, _grid(grid) or None)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console.print(
        f"tuned on {result['split']} ({result['planes']} images): {result['metric']} "
        f"{result['score_before']:.4f} -> {result['score']:.4f} with {result['options']}",
        highlight=False,
    )


@app.command("learning-curve")
def learning_curve_cmd(
    recipe: Path = typer.Argument(..., help="training recipe YAML (model_cards/<name>/recipe.yaml)"),
    out: Path = typer.Option(..., help="folder for the trained models, curve.json and its chart curve.svg"),
    sizes: list[str] = typer.Option(
        ["1", "2", "5", "10", "20", "all"], "--n", help="training images (frames) per run; 'all' for every one"
    ),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="seeds per size (each draws its own images)"),
    scratch: bool = typer.Option(True, "--scratch/--no-scratch", help="also train from scratch at every point"),
    option: list[str] = typer.Option(
        [], "--option", help="family option at every point: key=value (repeatable), e.g. tta=false"
    ),
    as_json: JsonOption = False,
) -> None:
    """Train a recipe on n of its training images (or frames) for several seeds, from its base model and from
    scratch, and score each on its benchmark: the transfer-learning curve, n@90% and the gap at n = 5."""
    from hub.bench.curve import learning_curve
    from hub.models import load_recipe

    try:
        ns = [None if s == "all" else int(s) for s in sizes]
    except ValueError:
        ns = [0]
    if any(n is not None and n < 1 for n in ns):
        raise typer.BadParameter(f"--n takes whole numbers from 1, or 'all'; got {' '.join(sizes)}")
    options = {key: values[0] for key, values in _grid(option, "--option", single=True).items()}
    curve = learning_curve(
        load_recipe(recipe),
        out,
        sizes=ns,
        seeds=seeds,
        scratch=scratch,
        options=options,
        log=lambda m: typer.echo(m, err=True),
    )
    from hub.site.curves import curve_chart

    (out / "curve.svg").write_text(curve_chart(curve, standalone=True))
    if as_json:
        typer.echo(json.dumps(curve))
        return
    table = Table("init", *[str(n or "all") for n in ns], "n@90%")
    for init, s in curve["summary"].items():
        if isinstance(s, dict):
            table.add_row(init, *[_mean(s, n) for n in ns], str(s["n@90%"] or "—"))
    console.print(f"{curve['benchmark']} {curve['metric']}, mean over seeds (zero-shot {curve['zero_shot']}):")
    console.print(table)
    gap = curve["summary"].get("gap@5")
    console.print(f"gap at n = 5 (pretrained - scratch): {gap}; {out / 'curve.json'}, drawn in {out / 'curve.svg'}")


def _mean(summary: dict, n: int | None) -> str:
    v = summary["mean"].get(str(n or "all"))
    return "—" if v is None else f"{v:.3f}"
