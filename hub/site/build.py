"""``cellhub site build``: render a registry's catalog, cards and results as a self-contained static site.

Pages (relative links only, so the site works under any prefix)::

    index.html                          what the hub holds, counts per task, latest results
    datasets/index.html, NAME.html      one page per dataset; pictures under datasets/NAME/
    models/index.html, NAME.html        one page per model; example predictions under models/NAME/
    benchmarks/index.html, DATASET/TASK.html   leaderboards
    benchmarks/peers.html               the hub's best against the best peer tool, per benchmark
    peers/NAME/SCRIPT.py                the scripts that made the peer rows (copied from this checkout)
    records/SHA256.json                 the verified result records the leaderboards list
    assets/                             style sheet, scripts, icon (copied from the repository's site/)
    site.json                           what was built from which registry, when (marks the folder as a site)

The folder appears complete or not at all; ``overwrite`` replaces a previous site, never another folder.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from hub import __version__
from hub._atomic import new_folder
from hub._progress import progress_bar
from hub.config import REPO_ROOT
from hub.dataset import open_dataset
from hub.errors import BuildError, NotFound
from hub.registry import Registry, local_path
from hub.site import charts
from hub.site import formatting as fmt
from hub.site.catalog import BenchmarkEntry, Catalog, DatasetEntry, ModelEntry, peer_script_source, read_catalog
from hub.site.curves import bundled_curve, curve_chart
from hub.site.examples import example_benchmark, model_examples
from hub.site.figures import (
    area_unit,
    class_counts,
    cover,
    dataset_pictures,
    log_bins,
    object_areas,
    split_counts,
)

SITE_SOURCE = REPO_ROOT / "site"
MARKER = "site.json"


def _environment() -> Environment:
    if not (SITE_SOURCE / "templates").is_dir():
        raise NotFound(
            "site templates not found (the site is built from a source checkout of cellhub)", SITE_SOURCE / "templates"
        )
    env = Environment(
        loader=FileSystemLoader(SITE_SOURCE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt.number,
        plain=fmt.plain,
        ci=fmt.interval,
        short=fmt.short_hash,
        day=fmt.day,
        size=fmt.file_size,
        count=fmt.count,
        licence=fmt.licence,
        value=fmt.value,
        duration=fmt.duration,
    )
    env.globals.update(version=__version__)
    return env


class _Pages:
    """Writes pages into the site folder; each page gets ``root``, the relative path back to the site root."""

    def __init__(self, env: Environment, site: Path, common: dict):
        self.env, self.site, self.common, self.written = env, site, common, list[str]()

    def write(self, rel: str, template: str, **context) -> None:
        root = "../" * rel.count("/")
        html = self.env.get_template(template).render(root=root, page=rel, **self.common, **context)
        path = self.site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        self.written.append(rel)


def _pull_command(registry_url: str | None):
    """``pull_command(kind, ref)`` for the templates: the exact command that pulls ``ref`` from this registry."""

    def pull_command(kind: str, ref: str) -> str:
        return f"cellhub {kind} pull {ref}" + (f" --registry {shlex.quote(registry_url)}" if registry_url else "")

    return pull_command


def _dataset_context(entry: DatasetEntry, registry: Registry, site: Path) -> dict:
    """Pictures and distributions of a dataset, from its verified local copy."""
    ds = open_dataset(local_path("datasets", f"{entry.name}@{entry.card.version}", registry))
    groups = dataset_pictures(ds, site, f"datasets/{entry.name}")
    classes = class_counts(ds)
    context = {
        "groups": groups,
        "splits": split_counts(ds),
        "classes": classes,
        "class_chart": None,
        "size_chart": None,
        "sizes": None,
    }
    if classes:
        context["class_chart"] = charts.bar_chart(
            [charts.Bar(c["class"], c["total"], text=f"{c['total']:,}") for c in classes],
            f"samples per class in {entry.name}",
            "samples",
        )
    areas, planes = object_areas(ds)
    if areas.size:
        scale, unit = area_unit(ds)
        values = areas * scale
        counts, edges = log_bins(values)
        context["sizes"] = {
            "objects": int(areas.size),
            "planes": planes,
            "unit": unit,
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
        context["size_chart"] = charts.histogram(
            counts, edges, f"object areas in {entry.name}", f"object area ({unit})", log_x=True
        )
    return context


def _model_context(entry: ModelEntry, catalog: Catalog, site: Path) -> dict:
    """Example predictions of a model's latest version on a benchmark of its task, when the registry holds one;
    the learning curve of its recipe, when this checkout holds one."""
    card = entry.card
    bench = example_benchmark(
        card.task,
        card.training.dataset if card.training else None,
        [r["benchmark"].bench for r in entry.results] + [b.bench for b in catalog.benchmarks],
    )
    curve = bundled_curve(card)
    context: dict = {"examples": [], "example_bench": None, "curve": curve, "curve_chart": curve and curve_chart(curve)}
    if bench is None or not catalog.holds_dataset(bench.dataset):
        return context
    from hub.models import load_model  # torch: imported only when a model runs

    ds = open_dataset(local_path("datasets", bench.dataset, catalog.registry))
    model = load_model(f"{card.name}@{card.version}", catalog.registry.url)
    return {
        **context,
        "examples": model_examples(model, ds, bench, site, f"models/{entry.name}"),
        "example_bench": bench,
    }


def _leaderboard_chart(entry: BenchmarkEntry) -> Markup:
    rows = entry.board["rows"]
    bars = [charts.Bar(r["model"], r["value"], *(r["ci95"] or [None, None]), text=fmt.number(r["value"])) for r in rows]  # type: ignore[misc]
    return charts.bar_chart(
        bars,
        f"{entry.name}: {entry.bench.primary_metric} of every entry with its 95% interval",
        f"{entry.bench.primary_metric} (bars: value, whiskers: bootstrap 95% CI)",
        width=1120,
        label_width=280,
        value_width=80,
    )


def render(catalog: Catalog, site: Path, public_url: str | None) -> list[str]:
    """Write every page, picture, record and asset of ``catalog`` into the empty folder ``site``."""
    shutil.copytree(SITE_SOURCE / "assets", site / "assets")
    built = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pages = _Pages(
        _environment(),
        site,
        {"catalog": catalog, "registry_url": public_url, "built": built, "pull_command": _pull_command(public_url)},
    )
    with progress_bar() as bar:
        job = bar.add_task(
            "drawing dataset pictures and example predictions", total=len(catalog.datasets) + len(catalog.models)
        )
        for d in catalog.datasets:
            context = _dataset_context(d, catalog.registry, site)
            d.cover = cover(site, context["groups"], f"datasets/{d.name}/cover.png", spread=bool(context["classes"]))
            pages.write(f"datasets/{d.name}.html", "dataset.html.j2", d=d, **context)
            bar.advance(job)
        for m in catalog.models:
            pages.write(f"models/{m.name}.html", "model.html.j2", mdl=m, **_model_context(m, catalog, site))
            bar.advance(job)
    pages.write("index.html", "home.html.j2")
    pages.write("datasets/index.html", "datasets.html.j2")
    pages.write("models/index.html", "models.html.j2")
    pages.write("benchmarks/index.html", "benchmarks.html.j2")
    pages.write("benchmarks/peers.html", "peers.html.j2", rows=catalog.comparison())
    for b in catalog.benchmarks:
        pages.write(f"benchmarks/{b.name}.html", "benchmark.html.j2", b=b, chart=_leaderboard_chart(b))
    (site / "records").mkdir()
    for sha, record in catalog.records.items():
        (site / "records" / f"{sha}.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        script = peer_script_source(record["peer"]) if record.get("peer") else None
        if script is not None:  # the exact script of a peer row, as this checkout holds it
            (site / record["peer"]["script"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(script, site / record["peer"]["script"])
    (site / MARKER).write_text(
        json.dumps(
            {
                "built": built.isoformat(),
                "cellhub_version": __version__,
                "registry": catalog.registry.url,
                "public_url": public_url,
                "pages": sorted(pages.written),
                "datasets": [d.name for d in catalog.datasets],
                "models": [m.name for m in catalog.models],
                "benchmarks": [b.name for b in catalog.benchmarks],
                "results": catalog.result_count,
            },
            indent=1,
        )
    )
    return pages.written


@contextmanager
def _site_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh folder to fill, put in place of ``out`` at the end; ``out`` must be absent, empty, or (with
    ``overwrite``) a site built before."""
    if out.exists() and not out.is_dir():
        raise BuildError("output path exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise BuildError("output folder exists and is not empty (use --overwrite to replace a site)", out)
        if not (out / MARKER).is_file():
            raise BuildError(f"not a site built by cellhub (no {MARKER}): refusing to replace it", out)
    staged = out.parent / f".{out.name}.staged-{uuid.uuid4().hex[:8]}"
    with new_folder(staged) as tmp:
        yield tmp
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    staged.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def build_site(
    out: str | Path, registry: str | None = None, *, overwrite: bool = False, public_url: str | None = None
) -> dict:
    """Build the static site of ``registry`` (default: the local one) into the folder ``out``.

    ``public_url``: the registry URL printed in the pull commands (default: ``registry`` as given; none for the
    default registry). Returns what was built (the content of ``site.json``).
    """
    out = Path(out)
    reg = Registry(registry)
    catalog = read_catalog(reg)  # a missing or empty registry fails here, before anything is written
    with _site_folder(out, overwrite) as tmp:
        render(catalog, tmp, public_url or registry)
    return {**json.loads((out / MARKER).read_text()), "out": str(out)}
