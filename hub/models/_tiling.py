"""Tiled inference with a halo: any image size, bounded memory, no seams."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _pad(x: np.ndarray, before: tuple[int, int], after: tuple[int, int]) -> np.ndarray:
    widths = [(0, 0), (before[0], after[0]), (before[1], after[1])]
    reflect = all(b < s and a < s for (b, a), s in zip(widths[1:], x.shape[1:]))
    return np.pad(x, widths, mode="reflect" if reflect else "constant")


def predict_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    tile: int = 256,
    halo: int = 32,
    multiple: int = 32,
    device: torch.device | str = "cpu",
    batch: int = 4,
) -> np.ndarray:
    """Apply ``fn`` (N, C, t, t) -> (N, K, t, t) to a (C, Y, X) float32 image -> (K, Y, X) float32.

    The image is cut into cores of ``tile - 2 * halo`` pixels; each core is predicted from a ``tile`` window
    that includes ``halo`` pixels of context on every side (mirrored at the image border) and only the core
    is kept. An image no larger than one tile runs whole (padded up to a multiple of ``multiple``).
    """
    c, h, w = image.shape
    if h <= tile and w <= tile:
        ph, pw = -h % multiple, -w % multiple
        x = torch.from_numpy(np.ascontiguousarray(_pad(image, (0, 0), (ph, pw))))[None].to(device)
        return fn(x)[0, :, :h, :w].float().cpu().numpy()
    if tile % multiple or tile <= 2 * halo:
        raise ValueError(f"tile {tile} must be a multiple of {multiple} and larger than twice the halo {halo}")
    core = tile - 2 * halo
    ny, nx = -(-h // core), -(-w // core)
    padded = _pad(image, (halo, halo), (ny * core - h + halo, nx * core - w + halo))
    out: np.ndarray | None = None
    origins = [(i * core, j * core) for i in range(ny) for j in range(nx)]
    for k in range(0, len(origins), batch):
        group = origins[k : k + batch]
        x = torch.from_numpy(np.stack([padded[:, y : y + tile, x0 : x0 + tile] for y, x0 in group])).to(device)
        y_hat = fn(x)[:, :, halo : halo + core, halo : halo + core].float().cpu().numpy()
        if out is None:
            out = np.empty((y_hat.shape[1], ny * core, nx * core), np.float32)
        for (y, x0), piece in zip(group, y_hat):
            out[:, y : y + core, x0 : x0 + core] = piece
    return out[:, :h, :w]  # type: ignore[index]  # at least one batch
