"""Input checks shared by the suites: integer label images, truths and predictions paired one to one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import Any

import numpy as np

from hub.errors import InvalidInput


def check_labels(x: Any, name: str) -> np.ndarray:
    """``x`` as a non-negative integer array (a clear error otherwise)."""
    x = np.asarray(x)
    if x.dtype == bool:
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.integer):
        raise InvalidInput(f"{name} must be an integer label image, got dtype {x.dtype}")
    if x.size and np.issubdtype(x.dtype, np.signedinteger) and x.min() < 0:
        raise InvalidInput(f"{name} has negative labels")
    return x


def paired(truths: Iterable, predictions: Iterable, what: str = "samples") -> Iterator[tuple[Any, Any]]:
    """(truth, prediction) pairs; unequal counts or none at all are an error."""
    if isinstance(truths, Sized) and isinstance(predictions, Sized) and len(truths) != len(predictions):
        raise InvalidInput(f"{len(truths)} truths but {len(predictions)} predictions")
    empty = True
    try:
        for pair in zip(truths, predictions, strict=True):
            empty = False
            yield pair
    except ValueError as err:
        if "zip()" not in str(err):
            raise
        raise InvalidInput(f"truths and predictions differ in number of {what}") from None
    if empty:
        raise InvalidInput(f"no {what} to score")
