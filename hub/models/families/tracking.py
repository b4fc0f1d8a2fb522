"""Tracking: a deep-watershed detector per frame, then frame-to-frame linking (LAP, gaps, divisions)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from hub.cards import DatasetCard
from hub.models._family import register_family
from hub.models.families.segmentation import DeepWatershed, WatershedOptions


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
    label = "tracks"
    sizes = {**DeepWatershed.sizes, "max_distance": 1}

    def outputs(self, card: DatasetCard, channels: list[str]) -> dict:
        return {
            "meaning": "per-frame track labels (0 background) and a CTC lineage table (res_track.txt)",
            "axes": "tyx",
        }

    def link(self, masks: np.ndarray):
        from hub.models.linking import link

        return link(
            masks, max_gap=self.opts.max_gap, max_distance=self.opts.max_distance, divisions=self.opts.divisions
        )
