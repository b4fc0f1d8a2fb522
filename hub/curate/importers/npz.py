"""Arrays of crops with class labels in one ``.npz``: images (N, C, Y, X), labels (N,), class and channel names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hub.curate._importer import Importer, register_importer
from hub.curate._sample import SampleData
from hub.errors import InvalidInput


@lru_cache(maxsize=2)
def _arrays(path: Path, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return z[images_key], z[labels_key]


@register_importer("npz")
@dataclass
class Npz(Importer):
    images_key: str = "images"
    labels_key: str = "labels"
    class_names_key: str = "class_names"
    channel_names_key: str = "channel_names"

    def _header(self) -> dict:
        if getattr(self, "_cached_header", None) is None:
            self._cached_header = self._read_header()
        return self._cached_header

    def _read_header(self) -> dict:
        try:
            with np.load(self.source, allow_pickle=False) as z:
                keys = set(z.files)
                missing = {self.images_key, self.labels_key} - keys
                if missing:
                    raise InvalidInput(f"missing arrays {sorted(missing)}; has {sorted(keys)}", self.source)
                images, labels = z[self.images_key], z[self.labels_key]
                classes = [str(c) for c in z[self.class_names_key]] if self.class_names_key in keys else None
                channels = [str(c) for c in z[self.channel_names_key]] if self.channel_names_key in keys else None
        except (OSError, ValueError) as err:
            raise InvalidInput(f"cannot read npz ({err})", self.source) from None
        if images.ndim != 4 or labels.shape != (images.shape[0],):
            raise InvalidInput(
                f"expected images (N, C, Y, X) and labels (N,), got {images.shape} and {labels.shape}", self.source
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise InvalidInput(f"labels are {labels.dtype}; class labels must be integers", self.source)
        n_classes = len(classes) if classes else int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= n_classes:
            raise InvalidInput(f"labels must lie in 0..{n_classes - 1}", self.source)
        return {
            "n": images.shape[0],
            "classes": classes or [str(i) for i in range(n_classes)],
            "channels": channels or [f"c{i}" for i in range(images.shape[1])],
        }

    def scan(self) -> list[int]:
        return list(range(self._header()["n"]))

    def describe(self, i: int) -> str:
        return f"{self.source}[{i}]"

    def load(self, i: int) -> SampleData:
        images, labels = _arrays(self.source, self.images_key, self.labels_key)
        return SampleData(
            id=str(i), image=np.ascontiguousarray(images[i]), axes="cyx", targets={"class": int(labels[i])}
        )

    def card_defaults(self) -> dict:
        h = self._header()
        return {
            "tasks": ["classification"],
            "channels": [{"name": c, "modality": "other"} for c in h["channels"]],
            "labels": {"classes": h["classes"]},
        }
