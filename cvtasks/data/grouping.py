"""Items joined into groups by what they share: a split by group keeps every shared image or
text on one side of it. Union-find written by hand: a dozen lines, where scipy's connected
components would need the links built as a sparse matrix first."""
from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np


class UnionFind:
    """Union-find over the indices 0..n-1, with path halving."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def labels(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))])


def groups_by_shared_keys(keys_per_item: Iterable[Iterable[Hashable]], n: int) -> np.ndarray:
    """A group label per item (``n`` of them): items that share any key are one group."""
    groups = UnionFind(n)
    first: dict[Hashable, int] = {}
    for i, keys in enumerate(keys_per_item):
        for key in keys:
            if key in first:
                groups.join(i, first[key])
            first.setdefault(key, i)
    return groups.labels()
