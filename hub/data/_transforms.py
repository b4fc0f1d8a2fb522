"""Normalisation from a card's train statistics, joint random flips/rotations, random intensity changes of
inputs, padding to a patch."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from hub.cards import DatasetCard
from hub.errors import CardError

Normalize = bool | Literal["percentile", "meanstd", "image"] | None
IMAGE_PERCENTILES = (1.0, 99.8)


class Normalizer:
    """Scales each channel with the card's train statistics, to float32.

    ``"percentile"`` (or ``True``) maps p1 -> 0 and p99.8 -> 1 (no clipping); ``"meanstd"`` gives zero mean
    and unit variance; ``"image"`` maps each whole plane's own p1/p99.8 to 0/1 (the caller passes the plane's
    percentiles, see :func:`image_percentiles`); ``False``/``None`` only converts to float32.
    """

    def __init__(self, card: DatasetCard, channels: list[str], mode: Normalize = True):
        self.mode = "percentile" if mode is True else (mode or None)
        self.offset = self.scale = None
        if self.mode in (None, "image"):
            return
        if self.mode not in ("percentile", "meanstd"):
            raise ValueError(f"normalize must be True, False, 'percentile', 'meanstd' or 'image', not {mode!r}")
        stats = {s.channel: s for s in (card.statistics.channels if card.statistics else [])}
        absent = [c for c in channels if c not in stats]
        if absent:
            raise CardError(f"statistics.channels: no train statistics for channel {absent[0]!r} of {card.ref}")
        if self.mode == "percentile":
            lo = [stats[c].p1 for c in channels]
            span = [stats[c].p99_8 - stats[c].p1 for c in channels]
        else:
            lo = [stats[c].mean for c in channels]
            span = [stats[c].std for c in channels]
        self.offset = np.asarray(lo, np.float32)[:, None, None]
        self.scale = (1 / np.maximum(np.asarray(span, np.float32), 1e-6))[:, None, None]

    def __call__(self, image: np.ndarray, percentiles: np.ndarray | None = None) -> np.ndarray:
        """``image`` is channels first (C, Y, X); ``percentiles`` (C, 2) are its whole plane's (``"image"`` mode;
        default: those of ``image`` itself, right when ``image`` is the whole plane)."""
        out = image.astype(np.float32)
        if self.mode == "image":
            if percentiles is None:
                percentiles = image_percentiles(image)
            lo, hi = percentiles[:, :1, None], percentiles[:, 1:, None]
            out -= lo
            out /= np.maximum(hi - lo, 1e-6)
        elif self.mode is not None:
            out -= self.offset  # type: ignore[arg-type]  # set for every mode but None
            out *= self.scale  # type: ignore[arg-type]
        return out


def image_percentiles(
    image: np.ndarray, low: float = IMAGE_PERCENTILES[0], high: float = IMAGE_PERCENTILES[1]
) -> np.ndarray:
    """Per-channel (low, high) percentiles of a channels-first image, float32 (C, 2)."""
    flat = image.reshape(image.shape[0], -1)
    return np.percentile(flat, [low, high], axis=1).T.astype(np.float32)


def random_view(rng: np.random.Generator, square: bool) -> tuple[int, bool]:
    """A random view of the dihedral group: ``k`` quarter turns (0 or 2 unless ``square``), then a flip or not."""
    k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
    return k, bool(rng.integers(2))


def dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """``a`` turned ``k`` quarter turns (``np.rot90`` of the last two axes), then flipped left-right if ``flip``."""
    a = np.rot90(a, k, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if flip else a)


def dihedral_boxes(xyxy: np.ndarray, k: int, flip: bool, shape: tuple[int, int]) -> np.ndarray:
    """Boxes ``[x0, y0, x1, y1]`` of an image of ``shape`` (Y, X) moved as :func:`dihedral` moves its pixels."""
    h, w = shape
    b = np.asarray(xyxy, float).reshape(-1, 4)
    for _ in range(k % 4):  # a quarter turn maps the point (x, y) to (y, w - x); the image becomes w x h
        b = np.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], 1)
        h, w = w, h
    if flip:
        b = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    return b


def random_dihedral(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """The same random flip / 90-degree rotation of the last two axes for every array (8 cases if square)."""
    k, flip = random_view(rng, arrays[0].shape[-1] == arrays[0].shape[-2])
    return [dihedral(a, k, flip) for a in arrays]


_INTENSITY_BOUNDS = {"scale": (0.1, 10.0), "shift": (-1.0, 1.0), "gamma": (0.1, 10.0)}


class Intensity(BaseModel):
    """A random intensity change of a training window's normalised input channels, never of its targets:
    ``x -> scale * sign(x) |x| ** gamma + shift``, with ``gamma``, ``scale`` and ``shift`` drawn uniformly from
    their ``[low, high]`` ranges once per window (the same for every channel). StarDist's augmenter draws scale
    in [0.6, 2] and shift in [-0.2, 0.2]; a gamma below 1 brightens faint objects relative to bright ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: tuple[float, float] = Field((1.0, 1.0), description="[low, high] of the factor, within [0.1, 10]")
    shift: tuple[float, float] = Field((0.0, 0.0), description="[low, high] of the offset, within [-1, 1]")
    gamma: tuple[float, float] = Field((1.0, 1.0), description="[low, high] of the exponent, within [0.1, 10]")

    @field_validator("scale", "shift", "gamma")
    @classmethod
    def _range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        least, most = _INTENSITY_BOUNDS[str(info.field_name)]
        low, high = value
        if not least <= low <= high <= most:  # also refuses NaN and infinities
            raise ValueError(f"[low, high] with {least:g} <= low <= high <= {most:g}, got [{low:g}, {high:g}]")
        return value

    def __call__(self, rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        gamma, scale, shift = (rng.uniform(*r) for r in (self.gamma, self.scale, self.shift))
        out = np.sign(image) * np.abs(image) ** gamma if gamma != 1 else image
        return (out * scale + shift).astype(np.float32, copy=False)

    def describe(self) -> str:
        """The change in words, for a card's ``training.augmentation``."""
        ranges = [(name, getattr(self, name)) for name in ("gamma", "scale", "shift")]
        drawn = [f"{name} in [{lo:g}, {hi:g}]" for name, (lo, hi) in ranges if lo != hi]
        fixed = [f"{name} {lo:g}" for name, (lo, hi) in ranges if lo == hi]
        return "random intensity x -> scale * x ** gamma + shift (" + ", ".join(drawn + fixed) + ")"


def pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last two axes at the bottom/right up to ``size`` (no-op when already that large)."""
    py, px = max(size - a.shape[-2], 0), max(size - a.shape[-1], 0)
    if not (py or px):
        return a
    return np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, py), (0, px)])
