"""Benchmark (a frozen dataset split + task + metric suite) and EvalResult (one hash-pinned score)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from hub.cards.dataset import TaskKey, _Model


class BenchmarkSpec(_Model):
    """A benchmark as a dataset recipe declares it (``benchmarks:`` in ``datasets/NAME/recipe.yaml``)."""

    task: TaskKey
    split: str = "test"
    label: str | None = Field(None, description="Label image holding the truth (instances, tracks)")
    seg_label: str | None = Field(None, description="Sparse segmentation truth for SEG (tracking)")
    inputs: list[str] | None = Field(None, description="Channels a model may use (default: all but targets)")
    targets: list[str] | None = Field(None, description="Target channels (label-free)")
    class_groups: dict[str, list[str]] | None = Field(
        None,
        description="A coarser view (classification): named groups of classes, e.g. interphase: [G1, S_phase, G2]; "
        "the same predictions are also scored with each group merged into one class (merged_accuracy, "
        "merged_macro_f1)",
    )
    population: dict[str, Annotated[int, Field(gt=0)]] | None = Field(
        None,
        description="Class counts of the population the samples were drawn from, where the dataset caps some "
        "classes (classification; e.g. Jurkat's interphase classes, 900 each of about 31,500 cells): the same "
        "predictions are also scored at the population's class mix (population_accuracy and, with class_groups, "
        "merged_population_accuracy: the sum over classes of the population share times the class's recall), "
        "as a paper that used the whole population measured accuracy",
    )
    per_object: bool = Field(
        False,
        description="Each sample is one object, e.g. a cell crop (label-free): also score the Pearson r of the "
        "integrated predicted against true intensity across the samples (object_pearson_r; Blasi 2016's per-cell "
        "DNA content)",
    )
    description: str = ""

    @field_validator("class_groups")
    @classmethod
    def _disjoint(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        named = [c for members in (v or {}).values() for c in members]
        if len(named) != len(set(named)):
            raise ValueError("a class is in more than one group")
        return v


class Benchmark(BenchmarkSpec):
    """A benchmark frozen with its dataset version and split manifest hash."""

    name: str = Field(description="DATASET/TASK, e.g. dsb2018-fluo/instance")
    dataset: str = Field(description="Dataset name@version")
    split_sha256: str = Field(description="SHA-256 of the dataset's split manifest (frozen in its recipe)")
    suite_version: str
    primary_metric: str


class PeerRun(_Model):
    """How a peer tool made the predictions of a ``reproduced`` result: the field's own tool, trained and run by
    its own code on the benchmark's train (and val) split by a script of ``peers/`` (``hub.peers``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64, description="The peer's folder in peers/")
    title: str = Field(max_length=120, description="How the tool is shown, e.g. StarDist 2D")
    tool: str = Field(max_length=100, description="The PyPI package that trained and predicted")
    tool_version: str = Field(max_length=64)
    url: str = Field(pattern=r"^https://[^\s\"'<>]+$", max_length=300, description="The tool's home page")
    script: str = Field(
        pattern=r"^peers/[a-z0-9][a-z0-9-]*/[a-z0-9_]+\.py$",
        description="Repository path of the script that ran it, e.g. peers/stardist/run.py",
    )
    script_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    shared_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 over the shared modules of peers/ (peers/*.py)"
    )
    requirements_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the pinned requirements of the tool's environment"
    )
    uses: dict[
        Annotated[str, Field(pattern=r"^peers/[a-z0-9][a-z0-9-]*/[a-z0-9_]+\.py$")],
        Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")],
    ] = Field(default_factory=dict, max_length=8, description="Scripts of other peers it ran (a pipeline), SHA-256")
    options: dict[str, Any] = Field(default_factory=dict, description="The run's options (peers/NAME/peer.yaml)")
    trained_on: list[Literal["train", "val"]] = Field(description="Splits the tool learned or tuned on")
    detections: str | None = Field(None, description="Hub model whose detections a linker peer linked")
    train_s: float = Field(ge=0, description="Wall time of training and tuning, seconds")
    predict_s: float = Field(ge=0, description="Wall time of predicting the scored split, seconds")
    device: str = Field(max_length=200)
    notes: dict[str, Any] = Field(default_factory=dict, description="What the tool chose (thresholds, epochs)")


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
    source: Literal["hub", "self-reported", "reproduced"] = Field(
        description="hub: the hub ran the model; self-reported: predictions submitted from another tool; "
        "reproduced: a peer tool trained and run by the hub's script of peers/ (see ``peer``)"
    )
    predictions_sha256: str = Field(description="SHA-256 over the prediction files (names and bytes)")
    inputs: list[str] | None = None
    primary_metric: str
    value: float | None
    ci95: list[float | None] = Field(
        description="Bootstrap 95% interval of the primary metric (resampled samples, or for tracking blocks of "
        "each movie's frames, see parameters.interval_blocks; 1000 draws, seed 0)"
    )
    metrics: dict[str, float | None]
    intervals: dict[str, list[float | None]] = Field(
        default_factory=dict, description="Bootstrap 95% intervals of other metrics (a benchmark's views), by name"
    )
    per_sample: list[dict[str, Any]]
    runtime_s: dict[str, float] = Field(default_factory=dict, description="predict / score seconds")
    packages: dict[str, str] = Field(default_factory=dict)
    date: str
    peer: PeerRun | None = Field(None, description="For a reproduced result: the peer tool and its run")
