"""Reading source image files, with errors that name the file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hub.errors import InvalidInput

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def read_image_file(path: str | Path) -> np.ndarray:
    """Decode a TIFF or PNG to its native dtype; truncated or unreadable files raise InvalidInput."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            logging.getLogger("tifffile").setLevel(logging.ERROR)  # problems become our one-line error
            with tifffile.TiffFile(path) as tf:
                if not len(tf.pages):
                    raise ValueError("no image in the file (truncated?)")
                arr = tf.asarray()
            if arr.size == 0:
                raise ValueError("no pixel data (truncated?)")
            return arr
        from PIL import Image

        with Image.open(path) as im:
            im.load()  # decodes fully: raises on truncated data
            if im.mode in ("P", "PA", "LA"):  # palette indices or grey+alpha: take the pixel colours
                im = im.convert("RGB")
            return np.asarray(im)
    except FileNotFoundError:
        raise InvalidInput("file not found", path) from None
    except Exception as err:
        raise InvalidInput(f"cannot decode image ({err.__class__.__name__}: {str(err)[:120]})", path) from None


def grey_or_colour(img: np.ndarray) -> tuple[np.ndarray, str]:
    """RGB(A) pixels with R == G == B become one grey channel ('yx'); true colour stays 3 channels ('cyx')."""
    if img.ndim == 2:
        return img, "yx"
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0]), "yx"
        return np.ascontiguousarray(np.moveaxis(rgb, -1, 0)), "cyx"
    if img.ndim == 3 and img.shape[0] <= 8:
        return img, "cyx"
    raise ValueError(f"cannot tell the axes of an image of shape {img.shape}")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
