"""Tracking: a deep-watershed detector per frame, then frame-to-frame linking (LAP, gaps, divisions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from hub.cards import DatasetCard
from hub.errors import InvalidInput
from hub.models._family import register_family
from hub.models.families.segmentation import DeepWatershed, WatershedOptions

if TYPE_CHECKING:
    from hub.models.model import Model
    from hub.ome import Track


class TrackerOptions(WatershedOptions):
    max_gap: int = Field(2, ge=0, le=100, description="Longest gap (frames) a track may bridge")
    max_distance: float | None = Field(
        None, gt=0, description="Largest motion per frame in pixels (a length); default: the objects' median diameter"
    )
    divisions: bool = Field(True, description="Detect cell divisions")


@register_family
class DetectLink(DeepWatershed):
    """Detection by :class:`DeepWatershed` trained on the movie's track masks, linking by
    :func:`hub.models.linking.link` (``max_gap``, ``max_distance``, ``divisions`` options)."""

    name = "detect-link"
    task = "tracking"
    Options = TrackerOptions
    opts: TrackerOptions
    label = "tracks"
    sizes = {**DeepWatershed.sizes, "max_distance": 1}
    tuning_metric = "DET"
    # low foreground thresholds grow each detection into its whole nucleus (SEG; tuned with segmentation truth)
    tuning_grid = {**DeepWatershed.tuning_grid, "threshold": [0.02, 0.05, 0.1, 0.2, 0.4, 0.5]}
    usage = "masks, tracks = model.predict(movie)  # raw (T, Y, X) or (T, C, Y, X), any frame size"
    bioimageio_note = " (bioimage.io package of the per-frame detector; linking is not part of it)"

    def outputs(self, card: DatasetCard, targets: list[str]) -> dict:
        return {
            "meaning": "per-frame track labels (0 background) and a CTC lineage table (res_track.txt)",
            "axes": "tyx",
        }

    def predict(self, model: Model, movie: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, list[Track]]:
        """A movie (T, Y, X) / (T, C, Y, X) -> ``(masks, tracks)``: each frame detected, then linked."""
        n = len(model.card.inputs.channels)
        if movie.ndim == 3 and n == 1:
            movie = movie[:, None]
        if movie.ndim != 4:
            raise InvalidInput(
                f"tracking model {model.card.ref} expects a movie (T, Y, X) or (T, C, Y, X), got shape {movie.shape}"
            )
        family = self.at_scale(scale)
        masks = np.stack([family.postprocess(model.maps(frame, scale)) for frame in movie])
        return family.link(masks)

    def link(self, masks: np.ndarray):
        from hub.models.linking import link

        return link(
            masks, max_gap=self.opts.max_gap, max_distance=self.opts.max_distance, divisions=self.opts.divisions
        )

    def tuning_score(self, truth: list[np.ndarray], predictions: list[np.ndarray]) -> float:
        """The CTC DET measure of the per-frame detections (:func:`hub.models.tuning.det_score`)."""
        from hub.models.tuning import det_score

        return det_score(truth, predictions)
