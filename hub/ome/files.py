"""Reading source image files (TIFF, PNG) with errors that name the file: the one place CellHub decodes them."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from hub.errors import InvalidInput
from hub.safety import check_pixels

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
_TO_RGB = ("P", "PA", "LA")  # palette indices or grey+alpha: read as the pixel colours


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def _tiff_series(tf):
    if not len(tf.pages) or not tf.series:
        raise ValueError("no image in the file (truncated?)")
    return tf.series[0]


def _pil_shape(im) -> tuple[int, ...]:
    """The shape ``np.asarray`` gives the image as :func:`read_image_file` reads it, from its header."""
    bands = 3 if im.mode in _TO_RGB else len(im.getbands())
    return (im.height, im.width) if bands == 1 else (im.height, im.width, bands)


PIL_FORMATS = ("PNG", "JPEG", "TIFF")  # what Pillow may decode: never by content alone (an EPS would run Ghostscript)


def _open_pil(path: Path):
    from PIL import Image

    with warnings.catch_warnings():  # PIL's own bomb warning: our pixel budget decides (hub.safety.check_pixels)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path, formats=PIL_FORMATS)


def _cannot_decode(err: Exception, path: Path) -> InvalidInput:
    if isinstance(err, InvalidInput):
        return err
    if isinstance(err, FileNotFoundError):
        return InvalidInput("file not found", path)
    return InvalidInput(f"cannot decode image ({err.__class__.__name__}: {' '.join(str(err).split())[:120]})", path)


def image_shape(path: str | Path) -> tuple[int, ...]:
    """The shape :func:`read_image_file` would return, read from the file's header only (nothing is decoded)."""
    path = Path(path)
    try:
        if _is_tiff(path):
            import tifffile

            logging.getLogger("tifffile").setLevel(logging.ERROR)
            with tifffile.TiffFile(path) as tf:
                return tuple(int(n) for n in _tiff_series(tf).shape)
        with _open_pil(path) as im:
            return _pil_shape(im)
    except Exception as err:
        raise _cannot_decode(err, path) from None


def read_image_file(path: str | Path) -> np.ndarray:
    """Decode a TIFF or PNG to its native dtype; truncated or unreadable files raise InvalidInput, and so do
    files whose header declares more pixels than the budget (``CELLHUB_MAX_PIXELS``), before they are decoded."""
    path = Path(path)
    try:
        if _is_tiff(path):
            import tifffile

            logging.getLogger("tifffile").setLevel(logging.ERROR)  # problems become our one-line error
            with tifffile.TiffFile(path) as tf:
                series = _tiff_series(tf)
                check_pixels(series.shape, path, series.dtype)
                arr = tf.asarray()
            if arr.size == 0:
                raise ValueError("no pixel data (truncated?)")
            return arr
        with _open_pil(path) as im:
            check_pixels(_pil_shape(im), path, f"(mode {im.mode})")
            im.load()  # decodes fully: raises on truncated data
            if im.mode in _TO_RGB:
                im = im.convert("RGB")
            return np.asarray(im)
    except Exception as err:
        raise _cannot_decode(err, path) from None


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


def channel_names(image: np.ndarray, axes: str) -> list[str]:
    """The channel names of a decoded source image: ``grey``; ``red``, ``green``, ``blue``; or ``c0``, ``c1``..."""
    if axes == "yx":
        return ["grey"]
    n = image.shape[axes.index("c")]
    return ["red", "green", "blue"] if n == 3 else [f"c{i}" for i in range(n)]


def read_picture(path: str | Path) -> tuple[np.ndarray, str, list[str]]:
    """An image file as grey or colour (:func:`grey_or_colour`) with its axes and channel names; a file that is
    neither is a one-line :class:`InvalidInput` naming it."""
    try:
        image, axes = grey_or_colour(read_image_file(path))
    except ValueError as err:
        raise InvalidInput(str(err), path) from None
    return image, axes, channel_names(image, axes)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
