"""Tracking: a deep-watershed detector per frame, then frame-to-frame linking (LAP, gaps, divisions)."""

from __future__ import annotations

import numpy as np

from hub.cards import DatasetCard
from hub.models._family import register_family
from hub.models.families.segmentation import DeepWatershed


@register_family
class DetectLink(DeepWatershed):
    """Detection by :class:`DeepWatershed` trained on the movie's track masks, linking by
    :func:`hub.models.linking.link` (``max_gap``, ``max_distance``, ``divisions`` options)."""

    name = "detect-link"
    task = "tracking"
    label = "tracks"
    sizes = {**DeepWatershed.sizes, "max_distance": (1, None)}

    def outputs(self, card: DatasetCard, channels: list[str]) -> dict:
        return {"meaning": "per-frame track labels (0 background) and a CTC lineage table (res_track.txt)",
                "axes": "tyx"}

    def link(self, masks: np.ndarray):
        from hub.models.linking import link

        opts = {k: self.options[k] for k in ("max_gap", "max_distance", "divisions") if k in self.options}
        return link(masks, **opts)
