"""Contact sheets of real datasets: every dataset kind renders a non-empty picture with its overlays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("name", ["dsb2018-fluo", "isl-condition-b", "ctc-gowt1"])
def test_preview_renders(built, tmp_path, name, cli):
    out = tmp_path / f"{name}.png"
    r = cli("datasets", "preview", built(name), "--out", out, "--n", "6")
    assert r.returncode == 0, r.stderr
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape[0] >= 192 and pixels.shape[1] >= 192
    assert pixels.std() > 10  # a picture, not a blank canvas
    if name != "isl-condition-b":  # outlines (segmentation) or track tints (movies) are drawn
        yellowish = (pixels[..., 0] > 200) & (pixels[..., 1] > 150) & (pixels[..., 2] < 80)
        coloured = np.abs(pixels[..., 0].astype(int) - pixels[..., 2]) > 40
        assert (yellowish | coloured).sum() > 100
    assert not list(tmp_path.glob(".*partial"))
