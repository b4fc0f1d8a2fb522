"""What the site shows, read from a registry: its datasets and models (latest card, every version), the
benchmarks on its datasets and their leaderboards, and the result records behind them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hub.bench import benchmarks, compare_board, verified_leaderboard
from hub.cards import Benchmark, DatasetCard, ModelCard, parse_card
from hub.config import REPO_ROOT
from hub.errors import NotFound, RegistryError
from hub.registry import Registry
from hub.registry.ref import Ref
from hub.tasks import get_task, task_names


@dataclass
class DatasetEntry:
    """A dataset of the registry: the card of its latest version, and every version's catalog row."""

    card: DatasetCard
    versions: list[dict]
    benchmarks: list[Benchmark] = field(default_factory=list)
    cover: object | None = None  # the first of its pictures (a hub.site.figures.Picture), once drawn

    @property
    def name(self) -> str:
        return self.card.name


@dataclass
class ModelEntry:
    """A model of the registry: the card of its latest version, every version, and its leaderboard rows."""

    card: ModelCard
    versions: list[dict]
    results: list[dict] = field(default_factory=list)  # leaderboard rows, each with its "benchmark"

    @property
    def name(self) -> str:
        return self.card.name


@dataclass
class BenchmarkEntry:
    """A benchmark with its leaderboard (rows best first, and the catalog entries ``rejected`` because no valid
    record supports them) and the secondary metrics its rows carry."""

    bench: Benchmark
    board: dict
    columns: list[str]

    @property
    def name(self) -> str:
        return self.bench.name

    @property
    def conventions(self) -> dict[str, str]:
        """How the metrics shown are computed, where the field has several conventions."""
        shown = [self.bench.primary_metric, *self.columns]
        return {m: how for m, how in get_task(self.bench.task).conventions.items() if m in shown}

    @property
    def dataset_name(self) -> str:
        return self.bench.dataset.partition("@")[0]


@dataclass
class Catalog:
    registry: Registry
    datasets: list[DatasetEntry]
    models: list[ModelEntry]
    benchmarks: list[BenchmarkEntry]
    records: dict[str, dict]  # result record SHA-256 -> the verified record

    def dataset(self, name: str) -> DatasetEntry | None:
        return next((d for d in self.datasets if d.name == name), None)

    def holds_dataset(self, ref: str) -> bool:
        """Whether the registry holds dataset ``name@version``."""
        name, _, version = ref.partition("@")
        d = self.dataset(name)
        return d is not None and any(v["version"] == version for v in d.versions)

    def model(self, ref: str) -> ModelEntry | None:
        """The model a leaderboard row's ``name@version`` names, if the registry holds it."""
        name, _, version = ref.partition("@")
        m = next((m for m in self.models if m.name == name), None)
        return m if m and any(v["version"] == version for v in m.versions) else None

    def task_counts(self) -> list[dict]:
        """Per task: how many datasets, models, benchmarks and leaderboard entries the hub holds."""
        rows = []
        for task in task_names():
            rows.append(
                {
                    "task": task,
                    "datasets": sum(task in d.card.tasks for d in self.datasets),
                    "models": sum(m.card.task == task for m in self.models),
                    "benchmarks": sum(get_task(b.bench.task).name == task for b in self.benchmarks),
                    "results": sum(
                        len(b.board["rows"]) for b in self.benchmarks if get_task(b.bench.task).name == task
                    ),
                }
            )
        return rows

    def latest_results(self, n: int = 8) -> list[dict]:
        """The ``n`` newest leaderboard entries over every benchmark (each with its ``benchmark``)."""
        rows = [{**r, "benchmark": b} for b in self.benchmarks for r in b.board["rows"]]
        return sorted(rows, key=lambda r: r["date"] or "", reverse=True)[:n]

    def peer_script(self, peer: dict) -> str | None:
        """Where the site holds the script of a peer row (``peers/NAME/SCRIPT.py``, copied from this checkout by
        :func:`hub.site.build.render`), if this checkout has that script with the record's SHA-256; else None."""
        path = peer_script_source(peer)
        return peer["script"] if path is not None else None

    def comparison(self) -> list[dict]:
        """Per benchmark with a board: the hub's best against the best peer (:func:`hub.bench.compare_board`)."""
        return [compare_board(b.bench, b.board, self.records, self.registry) for b in self.benchmarks]

    @property
    def result_count(self) -> int:
        return sum(len(b.board["rows"]) for b in self.benchmarks)


def peer_script_source(peer: dict) -> Path | None:
    """The checkout's file of a record's peer script (path already validated by :class:`hub.cards.PeerRun`:
    ``peers/NAME/SCRIPT.py``), if its bytes have the record's SHA-256."""
    path = REPO_ROOT / peer["script"]
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != peer["script_sha256"]:
        return None
    return path


def _latest_card(registry: Registry, kind: str, name: str, model: type):
    manifest, _ = registry.manifest(kind, Ref(name, "latest"))
    return parse_card(model, manifest["card"], f"{registry.url}/{kind}/{name}/{manifest['version']}/manifest.json")


def _versions(registry: Registry, kind: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in registry.list(kind):
        out.setdefault(row["name"], []).append(row)
    return out


def _columns(bench: Benchmark, rows: list[dict]) -> list[str]:
    return [m for m in get_task(bench.task).secondary if any(m in (r["metrics"] or {}) for r in rows)]


def read_catalog(registry: Registry) -> Catalog:
    """Everything the site shows, from ``registry``'s catalog; a registry with nothing published is refused."""
    try:
        index = registry.index()
    except OSError as err:  # e.g. a web server that does not answer
        raise RegistryError(f"cannot read the catalog ({err})", registry.url) from None
    if not any(index.get(k) for k in ("datasets", "models", "results")):
        raise NotFound(
            "no catalog or nothing published: not a CellHub registry (index.json missing or empty)", registry.url
        )
    datasets = [
        DatasetEntry(_latest_card(registry, "datasets", name, DatasetCard), rows)
        for name, rows in sorted(_versions(registry, "datasets").items())
    ]
    models = [
        ModelEntry(_latest_card(registry, "models", name, ModelCard), rows)
        for name, rows in sorted(_versions(registry, "models").items())
    ]
    published = {f"{d.name}@{v['version']}" for d in datasets for v in d.versions}
    with_results = set(index.get("results", {}))
    entries, records = [], {}
    for bench in benchmarks():
        if bench.dataset not in published and bench.name not in with_results:
            continue
        board, verified = verified_leaderboard(bench, registry)  # every value shown comes from a verified record
        records.update(verified)
        entries.append(BenchmarkEntry(bench, board, _columns(bench, board["rows"])))
    catalog = Catalog(registry, datasets, models, entries, records)
    for d in datasets:
        d.benchmarks = [b.bench for b in entries if b.dataset_name == d.name]
    for b in entries:
        for row in b.board["rows"]:
            m = catalog.model(row["model"])
            if m is not None:
                m.results.append({**row, "benchmark": b, "of": len(b.board["rows"])})
    return catalog
