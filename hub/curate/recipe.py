"""Build a curated dataset from its recipe in ``datasets/NAME/``: check sources, import, freeze the split."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hub.cards import BenchmarkSpec, DatasetCard, format_validation_error, load_card
from hub.config import build_root, data_mirror, recipes_dir
from hub.curate._build import import_dataset
from hub.curate._importer import Importer, create_importer
from hub.curate._staged import R, Stager, import_into
from hub.curate.splits import SplitSpec
from hub.errors import BuildError, CardError, NotFound, SourceMissing, SplitDrift
from hub.executor import ExecutorLike
from hub.safety import MAX_CARD_BYTES, load_yaml_file

RECIPE, SOURCES = "recipe.yaml", "sources.sha256"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str  # folder under the source mirror
    sources_sha256: str = SOURCES
    importer: str
    input: str = "."
    options: dict = {}
    split: SplitSpec
    split_manifest_sha256: str | None = None
    benchmarks: list[BenchmarkSpec] = []


def recipe_names() -> list[str]:
    return sorted(p.parent.name for p in recipes_dir().glob(f"*/{RECIPE}"))


def load_recipe(name: str) -> tuple[Recipe, DatasetCard, Path]:
    folder = recipes_dir() / name
    path = folder / RECIPE
    if not path.is_file():
        raise NotFound(f"no recipe for dataset {name!r}; known: {', '.join(recipe_names())}")
    try:
        recipe = Recipe.model_validate(load_yaml_file(path, MAX_CARD_BYTES, "recipe"))
    except ValidationError as err:
        raise CardError(format_validation_error(err), path) from None
    return recipe, load_card(DatasetCard, folder / "card.yaml"), folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sources(root: Path, listing: Path) -> int:
    """Verify every listed source file's SHA-256; a missing or changed file is an error naming it."""
    entries = [ln.split(None, 1) for ln in listing.read_text().splitlines() if ln.strip()]
    for _, rel in entries:
        if not (root / rel).is_file():
            raise SourceMissing(f"source file missing (listed in {listing})", root / rel)
    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(lambda e: _sha256(root / e[1]), entries))
    for (want, rel), got in zip(entries, digests):
        if want != got:
            raise BuildError(f"SHA-256 {got[:12]}... differs from {want[:12]}... recorded in {listing}", root / rel)
    return len(entries)


def default_output(card: DatasetCard) -> Path:
    return build_root() / card.name / card.version


def _recipe_importer(name: str, source: str | Path | None) -> tuple[Recipe, DatasetCard, Path, Importer]:
    """The recipe, card and folder of dataset ``name`` and the importer of its checked sources."""
    recipe, card, folder = load_recipe(name)
    mirror = Path(source) if source else data_mirror()
    root = mirror / recipe.source
    if not root.is_dir():
        raise SourceMissing(
            f"source data for {name} not found; expected the folder {recipe.source!r} of a local mirror "
            f"(pass --source DIR or set CELLHUB_DATA). Where it comes from: {card.terms.sources[0]}",
            root,
        )
    check_sources(root, folder / recipe.sources_sha256)
    options = dict(recipe.options)
    if "ids_file" in options:
        options["ids_file"] = str(root / options["ids_file"])
    return recipe, card, folder, create_importer(recipe.importer, root / recipe.input, **options)


def build_dataset(
    name: str,
    *,
    source: str | Path | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    executor: ExecutorLike | None = None,
) -> tuple[DatasetCard, Path]:
    """Build dataset ``name`` from its recipe and the source mirror; refuses a split that drifted. ``executor``:
    where the samples are converted (:func:`hub.executor.use_executor`; e.g. a Dask scheduler's address)."""
    recipe, card, folder, importer = _recipe_importer(name, source)
    out = Path(out) if out else default_output(card)
    try:
        built = import_dataset(
            importer,
            out,
            card,
            recipe.split,
            workers=workers,
            overwrite=overwrite,
            executor=executor,
            expected_manifest_sha256=recipe.split_manifest_sha256,
        )
    except SplitDrift as err:
        raise SplitDrift(err.problem, folder / RECIPE) from None
    if not recipe.split_manifest_sha256:
        freeze_split(name, built.splits.manifest_sha256)  # type: ignore[union-attr, arg-type]  # a build has its split
    return built, out


def build_into(
    name: str,
    registry: Stager[R],
    *,
    source: str | Path | None = None,
    accept_terms: bool = False,
    workers: int | None = None,
    executor: ExecutorLike | None = None,
) -> tuple[DatasetCard, R, str]:
    """Build dataset ``name`` from its recipe straight into ``registry`` (see :mod:`hub.curate._staged`): no
    dataset folder; on a Dask ``executor`` the workers read the sources and write the registry themselves.
    Returns the card, the published ref and the manifest SHA-256."""
    recipe, card, folder, importer = _recipe_importer(name, source)
    try:
        built, ref, sha = import_into(
            importer,
            registry,
            card,
            recipe.split,
            accept_terms=accept_terms,
            workers=workers,
            executor=executor,
            expected_manifest_sha256=recipe.split_manifest_sha256,
        )
    except SplitDrift as err:
        raise SplitDrift(err.problem, folder / RECIPE) from None
    if not recipe.split_manifest_sha256:
        freeze_split(name, built.splits.manifest_sha256)  # type: ignore[union-attr, arg-type]  # a build has its split
    return built, ref, sha


def freeze_split(name: str, sha256: str) -> None:
    """Record the split manifest hash in the recipe at its first build; later builds must reproduce it."""
    path = recipes_dir() / name / RECIPE
    text = path.read_text()
    if re.search(r"^split_manifest_sha256:", text, re.M):
        return
    path.write_text(text.rstrip("\n") + f"\nsplit_manifest_sha256: {sha256}\n")
