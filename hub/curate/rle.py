"""COCO run-length encoding (RLE) of binary masks, written here so that pycocotools is not needed at run time.

A COCO RLE is ``{"size": [height, width], "counts": ...}``: the lengths of alternating runs of 0s and 1s (starting
with 0s, so the first count may be 0) over the mask's pixels in column-major (Fortran) order. ``counts`` is the
list of run lengths ("uncompressed") or a string ("compressed", pycocotools' ``rleToString``): each count from
the fourth on is replaced by its difference to the count two before it, and every number is written in 5-bit
groups, least significant first, one character ``chr(48 + group)`` each, with bit 0x20 set on all but a number's
last group and bit 0x10 of the last group the sign (a LEB128-like scheme on 6 bits per character).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hub.errors import InvalidInput

_MAX_GROUPS = 7  # 35 bits: enough for any difference of two 32-bit counts; more is a corrupt string


def encode(mask: np.ndarray) -> dict:
    """The compressed COCO RLE of a 2-D mask (non-zero pixels are 1)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D, got shape {mask.shape}")
    return {"size": [int(n) for n in mask.shape], "counts": counts_to_string(mask_counts(mask))}


def mask_counts(mask: np.ndarray) -> list[int]:
    """The run lengths of a 2-D mask in column-major order, starting with a run of 0s (possibly empty)."""
    flat = np.asarray(mask).ravel(order="F") != 0
    if flat.size == 0:
        return []
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def counts_to_string(counts: list[int]) -> str:
    """pycocotools' compressed form of a list of run lengths (see the module docstring)."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(48 + (c | 0x20 if more else c)))
    return "".join(out)


def string_to_counts(s: str, where: str | Path | None = None, what: str = "RLE") -> list[int]:
    """The run lengths of a compressed ``counts`` string; characters outside '0'..'o', a number cut off at the end,
    a number longer than 32 bits or a negative run length are a one-line :class:`InvalidInput`."""
    counts: list[int] = []
    x = k = 0
    for ch in s:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise InvalidInput(f"{what}: counts has the character {ch!r}, outside '0'..'o'", where)
        x |= (c & 0x1F) << (5 * k)
        k += 1
        if c & 0x20:
            if k >= _MAX_GROUPS:
                raise InvalidInput(f"{what}: counts has a number longer than {_MAX_GROUPS} characters", where)
            continue
        if c & 0x10:
            x -= 1 << (5 * k)  # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        if not 0 <= x < 2**32:
            raise InvalidInput(f"{what}: counts decodes to the run length {x} (run {len(counts) + 1})", where)
        counts.append(x)
        x = k = 0
    if k:
        raise InvalidInput(f"{what}: counts ends in the middle of a number (truncated?)", where)
    return counts


def decode(rle: dict, where: str | Path | None = None, what: str = "RLE") -> np.ndarray:
    """The boolean (height, width) mask of a COCO RLE (compressed or not), checked: ``size`` two non-negative
    integers, run lengths that are non-negative integers covering the mask exactly."""
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_count(n) for n in size)):
        raise InvalidInput(f"{what}: size is not [height, width]", where)
    h, w = size
    if isinstance(counts, str):
        runs = string_to_counts(counts, where, what)
    elif isinstance(counts, list) and all(_count(n) for n in counts):
        runs = counts
    else:
        raise InvalidInput(f"{what}: counts is neither a string nor a list of run lengths", where)
    if sum(runs) != h * w:
        raise InvalidInput(f"{what}: the run lengths add up to {sum(runs)} pixels, the mask has {h}x{w}", where)
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape((h, w), order="F")


def area(rle: dict) -> int:
    """The number of 1s of a checked RLE (the sum of its odd runs)."""
    counts = rle["counts"]
    runs = string_to_counts(counts) if isinstance(counts, str) else counts
    return int(sum(runs[1::2]))


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
