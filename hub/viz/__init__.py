"""Pictures of datasets: contact sheets of samples with label outlines, examples per class, input/target pairs."""

from hub.viz.preview import preview_dataset

__all__ = ["preview_dataset"]
