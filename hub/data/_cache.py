"""A least-recently-used cache of decoded numpy chunks, bounded by bytes (one per worker process)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np


class ChunkCache:
    """Keeps the most recently used arrays while their total ``nbytes`` stays within ``max_bytes``.

    ``max_bytes=0`` disables caching. An array larger than the whole budget is never kept.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> np.ndarray | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._items[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.nbytes
