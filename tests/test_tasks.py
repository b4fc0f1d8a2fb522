"""The task registry: one spec per task, both spellings, hooks that resolve, cards validated against it."""

import pytest
from pydantic import ValidationError

from hub.cards import BenchmarkSpec, ModelCard
from hub.errors import InvalidInput
from hub.tasks import Hook, TaskSpec, get_task, register_task, task_keys, task_names, tasks


def test_both_spellings_name_one_spec():
    assert task_names() == [
        "classification",
        "semantic-segmentation",
        "instance-segmentation",
        "tracking",
        "label-free",
        "object-detection",
    ]
    assert task_keys() == ["classification", "semantic", "instance", "tracking", "label-free", "detection"]
    for spec in tasks():
        assert get_task(spec.name) is spec and get_task(spec.key) is spec


def test_unknown_task_is_one_line_error():
    with pytest.raises(InvalidInput, match=r"unknown task 'instances' \(known: classification, semantic-segmentation"):
        get_task("instances")


def test_every_hook_resolves_to_a_function():
    for spec in tasks():
        for hook in (spec.truth, spec.score, spec.write, spec.draw, spec.adapt, spec.table):
            if hook is not None:
                assert callable(hook.resolve()), (spec.name, hook.target)


def test_primary_metric_is_in_the_suite_output():
    import numpy as np

    from hub.metrics import Detections, DetectionTruth, TrackingPrediction, TrackingTruth
    from hub.ome import Track

    lab = np.zeros((16, 16), np.uint16)
    lab[2:8, 2:8] = 1
    movie = np.stack([lab, lab])
    tracks = [Track(1, 0, 1, 0)]
    samples = {
        "classification": (np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1]),
        "semantic-segmentation": ([(lab > 0).astype(np.uint8)], [(lab > 0).astype(np.uint8)]),
        "instance-segmentation": ([lab], [lab]),
        "tracking": ([TrackingTruth(movie, tracks)], [TrackingPrediction(movie, tracks)]),
        "label-free": ([lab.astype(np.float32) + np.arange(16)], [lab.astype(np.float32) + np.arange(16)]),
        "object-detection": (
            [DetectionTruth(np.array([[2.0, 2, 8, 8]]), np.array([0]), np.array([False]))],
            [Detections(np.array([[2.0, 2, 8, 8]]), np.array([0]), np.array([0.9]))],
            ["nucleus"],
        ),
    }
    for spec in tasks():
        out = spec.suite(*samples[spec.name])
        assert out["metrics"][spec.primary] == pytest.approx(1.0), spec.name
        # added by a benchmark's class_groups, population and per_object
        views = {"merged_accuracy", "population_accuracy", "merged_population_accuracy", "object_pearson_r"}
        assert set(spec.secondary) <= set(out["metrics"]) | {"SEG"} | views, spec.name  # SEG: a sparse truth


def test_a_name_cannot_be_registered_twice():
    spec = get_task("instance")
    with pytest.raises(ValueError, match="already registered"):
        register_task(spec)
    clash = TaskSpec(**{**spec.__dict__, "name": "counting"})  # a new name, an old key
    with pytest.raises(ValueError, match="'instance' is already registered"):
        register_task(clash)
    assert "counting" not in task_names()


def test_cards_take_each_vocabulary_where_its_files_use_it():
    assert BenchmarkSpec(task="instance").task == "instance"
    with pytest.raises(ValidationError, match="unknown benchmark task 'instance-segmentation'"):
        BenchmarkSpec(task="instance-segmentation")
    schema = ModelCard.model_json_schema()["properties"]["task"]
    assert schema["enum"] == task_names()


def test_semantic_benchmark_accepts_instance_models_through_its_adapter():
    semantic = get_task("semantic")
    assert semantic.accepts("semantic-segmentation") and semantic.accepts("instance-segmentation")
    assert not semantic.accepts("tracking") and not get_task("instance").accepts("semantic-segmentation")
    assert isinstance(semantic.adapt, Hook)
