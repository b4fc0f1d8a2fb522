"""The task registry: every fact about a task of the hub, in one :class:`TaskSpec` per task.

Code that behaves differently per task asks the task's spec (``get_task(bench.task).primary``,
``spec.truth(bench, ds, sid)``) instead of comparing task names. A task has one spec and two spellings, both
frozen in published files: the card name (``instance-segmentation``: dataset and model cards) and the
benchmark key (``instance``: benchmark names ``DATASET/KEY`` and result records). :func:`get_task` accepts
either; nothing else normalises task names.

This module sits low in the layers (it imports only :mod:`hub.metrics`). Behaviour that lives in a higher
layer (reading truth, scoring predictions, writing predictions, drawing examples for the site) is named here
as a :class:`Hook`, ``"module:function"``, imported on first call. Adding a task = one ``register_task`` call
below plus its hook functions (see CONTRIBUTING.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from hub.errors import InvalidInput
from hub.metrics import (
    TAUS,
    classification_metrics,
    detection_metrics,
    instance_metrics,
    labelfree_metrics,
    semantic_metrics,
    tracking_metrics,
)


@dataclass(frozen=True)
class Hook:
    """A function of a higher layer, ``"package.module:function"``, imported when first called."""

    target: str

    def resolve(self) -> Callable[..., Any]:
        module, _, name = self.target.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


@dataclass(frozen=True)
class TaskSpec:
    """One task: its names, metric suite, ranking, truth and prediction formats, and hooks.

    - ``name`` / ``key``: the card spelling and the benchmark spelling (see the module docstring).
    - ``suite`` / ``parameters``: the dataset-level metric function and the parameters a result record pins.
    - ``primary`` / ``secondary``: the metric a leaderboard ranks by (higher is better) and those shown beside it
      (where the records carry them: a benchmark's views add some, see :mod:`hub.bench.scoring`).
    - ``conventions``: how a metric is computed where the field has more than one convention (shown with it).
    - ``label`` / ``seg_label``: the label images that hold the truth by default (``None``: not a label image).
    - ``channel_targets``: the truth is a set of image channels (``inputs``/``targets`` of the benchmark).
    - ``sequences``: a sample is a movie; per-sample scores are per sequence.
    - ``model_tasks``: card tasks of the models a benchmark of this task can run (the first is the task itself;
      the others' predictions pass ``adapt`` first, e.g. instance labels binarised for a semantic benchmark).
    - ``hf_task`` / ``hf_pipeline`` / ``bioimageio_tag``: the Hugging Face task type of a model card's results,
      whether it is also the card's pipeline tag (Hugging Face has no tracking pipeline), and the bioimage.io tag.
    - ``card_needs``: (dataset card field, warning) pairs: the validator warns when the field is empty.
    - ``default_family``: the model family a recipe gets when it names none.
    - hooks: ``truth(bench, ds, sid)`` one sample's truth; ``score(bench, ds, ids, folder)`` -> (metrics,
      per-sample scores, bootstrap 95% interval of the primary metric, intervals of a view's metrics:
      :class:`hub.bench.scoring.Scores`); ``write(prediction, sid, folder, rows)``
      one model prediction into a prediction folder (or a row of its table); ``table(model, folder, rows)``
      writes the rows of a table once every sample is predicted; ``draw(model, ds, bench, site, folder)`` the
      site's example panels; ``handoff(bench, ds, sid, folder, tables)`` one training sample's truth as plain
      files for a peer tool (:mod:`hub.peers.handoff`).
    """

    name: str
    key: str
    suite: Callable[..., dict[str, Any]]
    primary: str
    secondary: tuple[str, ...]
    truth: Hook
    score: Hook
    write: Hook
    draw: Hook
    handoff: Hook
    hf_task: str
    bioimageio_tag: str
    default_family: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    label: str | None = None
    seg_label: str | None = None
    channel_targets: bool = False
    sequences: bool = False
    model_tasks: tuple[str, ...] = ()
    adapt: Hook | None = None
    table: Hook | None = None
    card_needs: tuple[tuple[str, str], ...] = ()
    hf_pipeline: bool = True
    conventions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def accepts(self, model_task: str) -> bool:
        """Whether a model of card task ``model_task`` can be scored on a benchmark of this task."""
        return model_task == self.name or model_task in self.model_tasks


_TASKS: dict[str, TaskSpec] = {}
_BY_KEY: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry (its name and key must both be new)."""
    for spelling in (spec.name, spec.key):
        if spelling in _TASKS or spelling in _BY_KEY:
            raise ValueError(f"task {spelling!r} is already registered")
    _TASKS[spec.name] = spec
    _BY_KEY[spec.key] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """The spec of a task, by card name (``instance-segmentation``) or benchmark key (``instance``)."""
    spec = _TASKS.get(name) or _BY_KEY.get(name)
    if spec is None:
        known = ", ".join(s.name if s.key == s.name else f"{s.name} ({s.key})" for s in _TASKS.values())
        raise InvalidInput(f"unknown task {name!r} (known: {known})")
    return spec


def tasks() -> list[TaskSpec]:
    """Every registered task, in registration order."""
    return list(_TASKS.values())


def task_names() -> list[str]:
    """The card names of every task (the values of ``DatasetCard.tasks`` and ``ModelCard.task``)."""
    return list(_TASKS)


def task_keys() -> list[str]:
    """The benchmark keys of every task (the ``TASK`` of a benchmark name ``DATASET/TASK``)."""
    return list(_BY_KEY)


class _Hooks(TypedDict):
    truth: Hook
    score: Hook
    write: Hook
    draw: Hook
    handoff: Hook


def _hooks(key: str, writer: str) -> _Hooks:
    """The standard hook functions of a task: ``truth_KEY``, ``score_KEY``, ``draw_KEY``, ``handoff_KEY`` and the
    named writer."""
    fn = key.replace("-", "")
    return _Hooks(
        truth=Hook(f"hub.bench.truth:truth_{fn}"),
        score=Hook(f"hub.bench.scoring:score_{fn}"),
        write=Hook(f"hub.models.predict:{writer}"),
        draw=Hook(f"hub.site.examples:draw_{fn}"),
        handoff=Hook(f"hub.peers.handoff:handoff_{fn}"),
    )


register_task(
    TaskSpec(
        name="classification",
        key="classification",
        suite=classification_metrics,
        primary="macro_f1",
        secondary=(
            "accuracy",
            "balanced_accuracy",
            "macro_auroc",
            "merged_accuracy",
            "population_accuracy",
            "merged_population_accuracy",
        ),
        conventions=MappingProxyType(
            {
                "merged_accuracy": "accuracy once the benchmark's class groups are merged (e.g. Jurkat's 5 classes)",
                "population_accuracy": "accuracy at the class mix of the population the test cells were drawn from "
                "(each class's recall weighted by its share there), as a paper on the whole population measures it",
                "merged_population_accuracy": "the same, class groups merged",
            }
        ),
        hf_task="image-classification",
        bioimageio_tag="image-classification",
        default_family="classifier",
        table=Hook("hub.models.predict:write_class_table"),
        **_hooks("classification", "write_row"),
    )
)
register_task(
    TaskSpec(
        name="semantic-segmentation",
        key="semantic",
        suite=semantic_metrics,
        primary="dice",
        secondary=("iou",),
        label="instances",
        model_tasks=("instance-segmentation",),
        card_needs=(
            (
                "labels.semantic",
                "labels.semantic missing: the semantic classes of a segmentation task are not declared",
            ),
        ),
        adapt=Hook("hub.bench.scoring:binarise"),
        hf_task="image-segmentation",
        bioimageio_tag="semantic-segmentation",
        default_family="unet",
        **_hooks("semantic", "write_label_image"),
    )
)
register_task(
    TaskSpec(
        name="instance-segmentation",
        key="instance",
        suite=instance_metrics,
        primary="acc@[.5:.95]",
        secondary=("acc@0.5", "f1@0.5", "pq@0.5", "image_acc@0.5", "dsb_score"),
        conventions=MappingProxyType(
            {
                "acc@[.5:.95]": "pooled: matches counted over all test images, then the ratio (StarDist); primary",
                "acc@0.5": "pooled over all test images (StarDist)",
                "image_acc@0.5": "mean over images of each image's accuracy (Cellpose, StarDist by_image)",
                "dsb_score": "mean over images of the accuracy averaged over IoU 0.5-0.95 (Kaggle DSB 2018)",
            }
        ),
        parameters=MappingProxyType({"taus": list(TAUS)}),
        label="instances",
        hf_task="image-segmentation",
        bioimageio_tag="instance-segmentation",
        default_family="deep-watershed",
        **_hooks("instance", "write_label_image"),
    )
)
register_task(
    TaskSpec(
        name="tracking",
        key="tracking",
        suite=tracking_metrics,
        primary="TRA",
        secondary=("DET", "LNK", "SEG", "division_f1@2"),
        parameters=MappingProxyType({"division_tolerances": [0, 2], "interval_blocks": 10}),
        label="tracks",
        seg_label="segmentation",
        sequences=True,
        card_needs=(("acquisition.frame_interval", "acquisition.frame_interval missing for a time-lapse dataset"),),
        hf_task="image-segmentation",
        hf_pipeline=False,
        bioimageio_tag="instance-segmentation",
        default_family="detect-link",
        **_hooks("tracking", "write_ctc_tracks"),
    )
)
register_task(
    TaskSpec(
        name="label-free",
        key="label-free",
        suite=labelfree_metrics,
        primary="pearson_r",
        secondary=("ssim", "psnr", "nrmse", "object_pearson_r"),
        conventions=MappingProxyType(
            {
                "pearson_r": "per image, then the mean over images",
                "object_pearson_r": "across objects (one per image): r of integrated true vs predicted intensity "
                "(Blasi 2016's per-cell DNA content)",
            }
        ),
        channel_targets=True,
        hf_task="image-to-image",
        bioimageio_tag="in-silico-labeling",
        default_family="unet-regression",
        **_hooks("label-free", "write_float_image"),
    )
)
register_task(
    TaskSpec(
        name="object-detection",
        key="detection",
        suite=detection_metrics,
        primary="mAP@[.5:.95]",
        secondary=("mAP@0.5", "mAP@0.75", "AR@100"),
        parameters=MappingProxyType({"iou_thresholds": "0.50:0.05:0.95", "max_detections": 100}),
        card_needs=(
            ("labels.classes", "labels.classes missing: the box classes of a detection task are not declared"),
        ),
        hf_task="object-detection",
        bioimageio_tag="object-detection",
        default_family="faster-rcnn",
        table=Hook("hub.models.predict:write_box_table"),
        **_hooks("detection", "write_row"),
    )
)
