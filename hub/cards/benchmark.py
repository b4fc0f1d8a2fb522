"""Benchmark (a frozen dataset split + task + metric suite) and EvalResult (one hash-pinned score)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub.cards.dataset import TaskKey, _Model


class BenchmarkSpec(_Model):
    """A benchmark as a dataset recipe declares it (``benchmarks:`` in ``datasets/NAME/recipe.yaml``)."""

    task: TaskKey
    split: str = "test"
    label: str | None = Field(None, description="Label image holding the truth (instances, tracks)")
    seg_label: str | None = Field(None, description="Sparse segmentation truth for SEG (tracking)")
    inputs: list[str] | None = Field(None, description="Channels a model may use (default: all but targets)")
    targets: list[str] | None = Field(None, description="Target channels (label-free)")
    description: str = ""


class Benchmark(BenchmarkSpec):
    """A benchmark frozen with its dataset version and split manifest hash."""

    name: str = Field(description="DATASET/TASK, e.g. dsb2018-fluo/instance")
    dataset: str = Field(description="Dataset name@version")
    split_sha256: str = Field(description="SHA-256 of the dataset's split manifest (frozen in its recipe)")
    suite_version: str
    primary_metric: str


class EvalResult(_Model):
    """One score on one benchmark, pinned to everything it depends on (GUIDE §3 "Result records")."""

    schema_version: Literal[1] = 1
    benchmark: str
    dataset: str
    split: str
    split_sha256: str
    task: TaskKey
    suite_version: str
    parameters: dict[str, Any] = Field(default_factory=dict, description="Metric parameters (thresholds, ...)")
    model: str = Field(description="Model name@version, or the submitter's name for predictions")
    weights_sha256: str | None = Field(None, description="SHA-256 of the weights that made the predictions")
    source: Literal["hub", "self-reported"] = Field(
        description="hub: the hub ran the model; self-reported: predictions submitted from another tool"
    )
    predictions_sha256: str = Field(description="SHA-256 over the prediction files (names and bytes)")
    inputs: list[str] | None = None
    primary_metric: str
    value: float | None
    ci95: list[float | None] = Field(
        description="Bootstrap 95% interval of the primary metric (resampled samples, 1000 draws, seed 0)"
    )
    metrics: dict[str, float | None]
    per_sample: list[dict[str, Any]]
    runtime_s: dict[str, float] = Field(default_factory=dict, description="predict / score seconds")
    packages: dict[str, str] = Field(default_factory=dict)
    date: str
