"""``cellhub datasets ...``: list, info, import, build, validate, publish, pull, preview, export."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.cards import DatasetCard, parse_card
from hub.cli._options import (
    LOCKFILE,
    JsonOption,
    LocalOption,
    LockedOption,
    LockfileOption,
    RegistryOption,
    RootOption,
    SchedulerOption,
    SearchOption,
    WorkersOption,
)
from hub.cli.registry import info_published, is_local, list_kind, publish_cmd, pull_cmd
from hub.config import build_root
from hub.curate import IMPORTERS, SplitSpec, check_dataset, create_importer, import_dataset, validate_dataset
from hub.curate.export import EXPORTERS
from hub.curate.recipe import build_dataset, build_into, recipe_names
from hub.dataset import open_dataset
from hub.errors import CardError, InvalidInput
from hub.registry import Registry
from hub.safety import MAX_CARD_BYTES, load_yaml_file, load_yaml_text

app = typer.Typer(
    help="Datasets: list and inspect published ones; import sources, build recipes, validate, publish, pull, export.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 160)  # no wrapped tables in logs and pipes
PLACEHOLDER = "not recorded"


class Stratify(StrEnum):
    cls = "class"
    shape = "shape"


def _parse_options(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise InvalidInput(f"--option {p!r}: expected KEY=VALUE")
        out[key.replace("-", "_")] = load_yaml_text(value, f"--option {key}")
    return out


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _import_card(importer, name: str, version: str, card_file: Path | None) -> DatasetCard:
    d = importer.card_defaults()
    base = {
        "name": name,
        "version": version,
        "title": name,
        "description": f"Imported from {importer.source.name} with the {importer.format} importer.",
        "tasks": d.get("tasks", []),
        "terms": {
            "license": "unknown",
            "terms": f"Terms {PLACEHOLDER} at import; fill in before publishing.",
            "redistribution": False,
            "citations": [PLACEHOLDER],
            "sources": [PLACEHOLDER],
        },
        "acquisition": {
            "organism": PLACEHOLDER,
            "cell_type": PLACEHOLDER,
            "channels": d.get("channels", []),
            "pixel_size": {"unknown": True, "note": f"{PLACEHOLDER} at import"},
        },
        "labels": d.get("labels", {}),
    }
    if card_file:
        try:
            user = load_yaml_file(card_file, MAX_CARD_BYTES, "card") or {}
        except OSError as err:
            raise CardError(f"cannot read card ({err.__class__.__name__})", card_file) from None
        except InvalidInput as err:
            raise CardError(err.problem, card_file) from None
        if not isinstance(user, dict):
            raise CardError(f"a card is a mapping of fields, not a {type(user).__name__}", card_file)
        base = _merge(base, user)
    return parse_card(DatasetCard, base, card_file or "<import card>")


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return ""


def _summary(path: Path) -> dict:
    ds = open_dataset(path)
    c, card = ds.card.counts, ds.card
    return {
        "name": card.name,
        "version": card.version,
        "path": str(path),
        "tasks": card.tasks,
        "samples": c.samples if c else len(ds.samples),
        "objects": c.objects if c else None,
        "tracks": c.tracks if c else None,
        "divisions": c.divisions if c else None,
        "classes": len(card.labels.classes) if card.labels.classes else None,
        "splits": card.splits.counts if card.splits else {},
        "bytes": _du(path),
        "split_manifest_sha256": card.splits.manifest_sha256 if card.splits else None,
    }


def _print_findings(findings, as_json: bool, path: Path) -> None:
    if as_json:
        typer.echo(json.dumps(findings.to_json(), indent=2))
        return
    for level, items, style in (
        ("error", findings.errors, "red"),
        ("warning", findings.warnings, "yellow"),
        ("info", findings.info, "blue"),
    ):
        for f in items:
            sample = escape(f" [{f.sample}]") if f.sample else ""
            console.print(f"[{style}]{level}[/] {f.check}{sample}: {escape(f.line())}", highlight=False, soft_wrap=True)
    console.print(
        f"{path}: {len(findings.errors)} error(s), {len(findings.warnings)} warning(s), {len(findings.info)} info",
        highlight=False,
    )


@app.command("list")
def list_(
    local: LocalOption = False,
    root: RootOption = None,
    search: SearchOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the datasets published in a registry; with --local, the recipes and the datasets built on this machine."""
    list_kind("datasets", local, root, search, registry, as_json, _list_local)


def _list_local(root: Path | None, as_json: bool) -> None:
    """The recipes and the datasets built under ``root`` (default: the build folder), with a summary table."""
    base = root or build_root()
    built = (
        sorted(p.parent for p in base.glob("*/*/samples.csv") if (p.parent / "card.yaml").is_file())
        if base.is_dir()
        else []
    )
    rows = [_summary(p) for p in built]
    if as_json:
        typer.echo(json.dumps({"recipes": recipe_names(), "datasets": rows}, indent=2))
        return
    table = Table(title=f"datasets in {base}")
    for col in ("dataset", "tasks", "samples", "objects / tracks / classes", "train / val / test", "size"):
        table.add_column(col)
    for r in rows:
        what = (
            f"{r['objects']} objects"
            if r["objects"]
            else f"{r['tracks']} tracks, {r['divisions']} divisions"
            if r["tracks"]
            else f"{r['classes']} classes"
            if r["classes"]
            else "-"
        )
        sp = r["splits"]
        table.add_row(
            f"{r['name']}@{r['version']}",
            ", ".join(r["tasks"]),
            str(r["samples"]),
            what,
            f"{sp.get('train', 0)} / {sp.get('val', 0)} / {sp.get('test', 0)}",
            _human(r["bytes"]),
        )
    console.print(table)
    missing = sorted(set(recipe_names()) - {r["name"] for r in rows})
    if missing:
        console.print(f"recipes not built yet: {', '.join(missing)} (cellhub datasets build NAME)")


@app.command()
def info(
    ref: str = typer.Argument(..., help="dataset folder, or NAME[@VERSION] published in the registry"),
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset: a folder's card and counts, or a published version's manifest (nothing is downloaded)."""
    if not is_local(ref):
        info_published("datasets", ref, registry, as_json)
        return
    path = Path(ref)
    s = _summary(path)
    card = open_dataset(path).card
    if as_json:
        typer.echo(json.dumps({**s, "card": card.model_dump(mode="json", exclude_none=True)}, indent=2))
        return
    console.print(f"[bold]{card.name}@{card.version}[/] — {card.title}", highlight=False)
    console.print(card.description, highlight=False)
    console.print(
        f"tasks: {', '.join(card.tasks)}; licence: {card.terms.license}; "
        f"redistribution: {'yes' if card.terms.redistribution else 'no'}",
        highlight=False,
    )
    console.print(
        f"channels: {', '.join(f'{c.name} ({c.modality})' for c in card.acquisition.channels)}", highlight=False
    )
    console.print(f"samples: {s['samples']}; splits: {s['splits']}; size: {_human(s['bytes'])}", highlight=False)
    for c in card.terms.citations:
        console.print(f"cite: {c}", highlight=False)


@app.command("import")
def import_(
    format: str = typer.Argument(..., help="source layout: " + ", ".join(sorted(IMPORTERS))),
    source: Path = typer.Argument(..., help="source folder or file"),
    name: str = typer.Option(..., "--name", help="dataset name (lower-case, dashes)"),
    out: Path = typer.Option(..., "--out", help="dataset folder to create"),
    version: str = typer.Option("0.1.0", "--version", help="semantic version"),
    card: Path | None = typer.Option(None, "--card", help="YAML with card fields (terms, acquisition, ...)"),
    option: list[str] = typer.Option([], "--option", "-o", help="importer option KEY=VALUE (YAML value)"),
    seed: int = typer.Option(0, help="split seed"),
    val: float = typer.Option(0.15, help="validation fraction"),
    test: float = typer.Option(0.15, help="test fraction"),
    stratify: Stratify | None = typer.Option(None, help="stratify splits by class or by image shape"),
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a source in a known layout into a validated OME-Zarr dataset folder."""
    importer = create_importer(format, source, **_parse_options(option))
    dataset_card = _import_card(importer, name, version, card)
    by_class = "classification" in dataset_card.tasks  # detection classes name boxes, not samples
    strat = stratify.value if stratify else ("class" if by_class else None)
    spec = SplitSpec(method="stratified-group", seed=seed, fractions={"val": val, "test": test}, stratify=strat)
    import_dataset(importer, out, dataset_card, spec, workers=workers, executor=scheduler)
    _report(out, as_json)


def _report(out: Path, as_json: bool) -> None:
    s = _summary(out)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
    else:
        console.print(
            f"[green]wrote[/] {s['name']}@{s['version']}: {s['samples']} samples, splits {s['splits']}, "
            f"{_human(s['bytes'])} -> {out}",
            highlight=False,
        )


@app.command()
def build(
    name: str = typer.Argument(..., help="dataset recipe name (a folder of datasets/)"),
    source: Path | None = typer.Option(None, help="source mirror folder (default: $CELLHUB_DATA or ../shared/data)"),
    out: Path | None = typer.Option(None, help="output folder (default: $CELLHUB_BUILD/NAME/VERSION)"),
    overwrite: bool = typer.Option(False, help="replace an existing build"),
    publish: bool = typer.Option(
        False,
        "--publish",
        help="build straight into --registry (e.g. s3://...): no dataset folder; with --scheduler the workers "
        "read the sources and write the registry themselves",
    ),
    registry: RegistryOption = None,
    accept_terms: bool = typer.Option(
        False, "--accept-terms", help="with --publish: confirm you may publish data whose terms forbid redistribution"
    ),
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a curated dataset from its recipe, checking every source file's SHA-256; --publish builds it into a
    registry instead of a folder (every check of cellhub datasets validate runs; nothing is published unless it
    passes)."""
    if accept_terms and not publish:
        raise typer.BadParameter("--accept-terms is for --publish (or for cellhub datasets publish)")
    if not publish:
        _, path = build_dataset(name, source=source, out=out, workers=workers, overwrite=overwrite, executor=scheduler)
        _report(path, as_json)
        return
    if out or overwrite:
        raise typer.BadParameter("--publish writes no folder: drop --out and --overwrite")
    reg = Registry(registry)
    card, ref, sha = build_into(
        name, reg, source=source, accept_terms=accept_terms, workers=workers, executor=scheduler
    )
    if as_json:
        out_json = {"ref": str(ref), "manifest_sha256": sha, "registry": reg.url, "card": card.model_dump(mode="json")}
        typer.echo(json.dumps(out_json))
        return
    console.print(
        f"[green]built and published[/] {escape(str(ref))} ({card.counts.samples if card.counts else 0} samples; "
        f"manifest {sha[:16]}...) to {escape(reg.url)}",
        highlight=False,
    )


@app.command()
def validate(
    path: Path = typer.Argument(..., help="dataset folder"),
    as_json: JsonOption = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Check NGFF validity, labels, lineage, card, splits, leakage and statistics (exit 1 on any error)."""
    findings = validate_dataset(path, workers=workers, executor=scheduler)
    _print_findings(findings, as_json, path)
    if findings.errors:
        raise typer.Exit(1)


@app.command()
def publish(
    path: Path = typer.Argument(..., help="dataset folder (validated first)"),
    registry: RegistryOption = None,
    accept_terms: bool = typer.Option(
        False,
        "--accept-terms",
        help="confirm you may publish data whose card says redistribution is not allowed (recorded in the manifest)",
    ),
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a dataset version to a registry (immutable: an existing version is refused); with --scheduler the
    cluster's workers validate it and upload its files, from a folder and to a registry they all reach."""
    publish_cmd("datasets", path, registry, accept_terms, as_json, check_dataset, scheduler)


@app.command()
def pull(
    ref: str = typer.Argument(..., help="NAME[@VERSION] (default: latest)"),
    registry: RegistryOption = None,
    locked: LockedOption = False,
    lockfile: LockfileOption = Path(LOCKFILE),
    split: str | None = typer.Option(None, "--split", help="pull only this split's samples (and the tables)"),
    samples: list[str] | None = typer.Option(None, "--samples", help="pull only this sample (repeat the option)"),
    as_json: JsonOption = False,
) -> None:
    """Pull a dataset version into the verified cache and print its local path; --split / --samples pull part of
    it (each file verified as usual; a later full pull fetches only the rest)."""
    pull_cmd("datasets", ref, registry, locked, lockfile, as_json, split=split, samples=samples or None)


@app.command()
def preview(
    path: Path = typer.Argument(..., help="dataset folder"),
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    n: int = typer.Option(12, help="about how many samples"),
    split: str | None = typer.Option(None, help="only this split"),
) -> None:
    """Draw a contact sheet: samples with label outlines, movie frames with tracks, examples per class."""
    from hub.viz import preview_dataset

    preview_dataset(path, out, n=n, split=split)
    console.print(f"[green]wrote[/] {out}", highlight=False)


@app.command()
def export(
    format: str = typer.Argument(..., help=f"target layout: {', '.join(EXPORTERS)}"),
    path: Path = typer.Argument(..., help="dataset folder"),
    out: Path = typer.Option(..., "--out", help="folder to write"),
) -> None:
    """Write a dataset back in a source layout (ctc: Cell Tracking Challenge folders; coco: COCO JSON + images)."""
    if format not in EXPORTERS:
        raise InvalidInput(f"no exporter {format!r}; known: {', '.join(EXPORTERS)}")
    exporter, what = EXPORTERS[format]
    written = exporter(path, out)
    shown = ", ".join(written[:10]) + (f", ... ({len(written) - 10} more)" if len(written) > 10 else "")
    console.print(f"[green]wrote[/] {what} of {len(written)} sample(s) {shown} -> {out}", highlight=False)
