"""Frozen, deterministic, group-aware splits and their manifest (``splits.json``)."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.model_selection import StratifiedGroupKFold

from hub.cards import GuardText
from hub.curate._sample import SampleRecord
from hub.dataset import SPLIT_NAMES
from hub.errors import BuildError


class SplitSpec(BaseModel):
    """How a recipe splits its samples.

    - ``stratified-group``: groups never straddle splits; classes (or another ``stratify`` key) keep their
      proportions; ``fractions`` of val and test, the rest train; seeded.
    - ``assign``: explicit lists of sample ids (or groups) per split, for sequences and spatial blocks.
    - ``source``: the source's own split, as its importer reads it (e.g. PASCAL VOC's ``ImageSets`` lists).
    """

    model_config = ConfigDict(extra="forbid")
    method: Literal["stratified-group", "assign", "source"]
    seed: int = 0
    fractions: dict[str, float] = Field(default_factory=lambda: {"val": 0.15, "test": 0.15})
    stratify: Literal["class", "shape"] | None = None
    assign: dict[str, list[str]] | None = None
    guard: GuardText | None = None  # '32 px' (tiles of one field) or '2 frames' (windows of one movie)


def _fold(n_splits: int, y, groups, seed: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (rest, held-out) with one fold of a seeded StratifiedGroupKFold."""
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held = next(cv.split(np.zeros(len(idx)), y[idx], groups[idx]))
    return idx[rest], idx[held]


def assign_splits(records: list[SampleRecord], spec: SplitSpec) -> dict[str, str]:
    """Sample id -> split name."""
    if spec.method == "assign":
        if not spec.assign:
            raise BuildError("split method 'assign' needs an 'assign' map of split -> ids or groups")
        where = {k: s for s, keys in spec.assign.items() for k in keys}
        out = {}
        for r in records:
            split = where.get(r.id) or where.get(r.group)
            if split is None:
                raise BuildError(f"split 'assign' does not place sample {r.id!r}")
            out[r.id] = split
        return out
    if spec.method == "source":
        unplaced = next((r.id for r in records if r.source_split not in SPLIT_NAMES), None)
        if unplaced is not None:
            raise BuildError(f"split method 'source': the source places sample {unplaced!r} in no split")
        return {r.id: str(r.source_split) for r in records}
    ids = np.array([r.id for r in records])
    groups = np.array([r.group for r in records])
    if spec.stratify == "class":
        missing = next((r.id for r in records if "class" not in r.targets), None)
        if missing is not None:
            raise BuildError(f"splits stratified by class, but sample {missing!r} has no class")
        y = np.array([int(r.targets["class"]) for r in records])
    elif spec.stratify == "shape":
        y = np.array(["x".join(map(str, r.shape)) for r in records])
        counts = Counter(y.tolist())  # shapes too rare to stratify go into one pool
        y = np.array([v if counts[v] >= 10 else "rare" for v in y])
    else:
        y = np.zeros(len(records), int)
    idx = np.arange(len(records))
    out = {}
    test_f, val_f = spec.fractions.get("test", 0), spec.fractions.get("val", 0)
    for name, frac, seed in (("test", test_f, spec.seed), ("val", val_f / max(1 - test_f, 1e-9), spec.seed + 1)):
        n_folds = min(round(1 / frac), len(set(groups[idx].tolist()))) if frac else 0
        if n_folds >= 2:  # too few groups left for a held-out fold: the split stays empty
            idx, held = _fold(n_folds, y, groups, seed, idx)
            out.update(dict.fromkeys(ids[held], name))
    out.update(dict.fromkeys(ids[idx], "train"))
    return out


def split_manifest(records: list[SampleRecord], spec: SplitSpec) -> dict:
    """The frozen split: method, seed, and per split the sorted sample ids with their content hashes."""
    by = {s: sorted((r.id, r.sha256) for r in records if r.split == s) for s in SPLIT_NAMES}
    return {
        "method": spec.method,
        "seed": spec.seed,
        "stratify": spec.stratify,
        "guard": None if spec.guard is None else str(spec.guard),  # the recipe's text, as frozen
        "splits": {s: [{"id": i, "sha256": h} for i, h in rows] for s, rows in by.items()},
    }
