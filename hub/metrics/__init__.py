"""Metrics layer: pure numpy/scipy metric suites, one per task (conventions in each function's docstring).

Every dataset-level function takes the truths and the predictions of a split (sequences of per-sample inputs,
paired by position) and returns ``{"metrics": {name: float}, "per_sample": [{name: float}, ...]}`` (tracking:
one entry per sequence). No torch here: scores must not depend on the model stack.
"""

from hub.metrics._overlap import Overlap, overlap_table
from hub.metrics.classification import (
    class_shares,
    classification_metrics,
    macro_f1_score,
    merged_classes,
    merged_metrics,
    population_accuracy,
)
from hub.metrics.detection import (
    Detections,
    DetectionTruth,
    ImageMatches,
    accumulate,
    detection_matches,
    detection_metrics,
    matched_metrics,
)
from hub.metrics.instance import (
    TAUS,
    InstanceCounts,
    instance_counts,
    instance_metrics,
    instance_metrics_from_counts,
    pooled_stats,
)
from hub.metrics.labelfree import integrated, labelfree_metrics, labelfree_metrics_from_scores, pair_scores, pearson
from hub.metrics.semantic import class_counts, semantic_metrics, semantic_metrics_from_counts
from hub.metrics.tracking import (
    COUNTS,
    TrackingPrediction,
    TrackingTruth,
    aogm_measures,
    sequence_metrics,
    tracking_metrics,
)

#: Version of the metric conventions; a result record pins it.
SUITE_VERSION = "1.0"

__all__ = [
    "COUNTS",
    "aogm_measures",
    "class_counts",
    "integrated",
    "macro_f1_score",
    "merged_classes",
    "merged_metrics",
    "population_accuracy",
    "pair_scores",
    "pearson",
    "SUITE_VERSION",
    "TAUS",
    "DetectionTruth",
    "Detections",
    "ImageMatches",
    "InstanceCounts",
    "Overlap",
    "TrackingPrediction",
    "TrackingTruth",
    "accumulate",
    "class_shares",
    "classification_metrics",
    "detection_matches",
    "detection_metrics",
    "instance_counts",
    "instance_metrics",
    "instance_metrics_from_counts",
    "labelfree_metrics",
    "labelfree_metrics_from_scores",
    "matched_metrics",
    "overlap_table",
    "pooled_stats",
    "semantic_metrics",
    "semantic_metrics_from_counts",
    "sequence_metrics",
    "tracking_metrics",
]
