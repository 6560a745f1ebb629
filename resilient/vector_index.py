"""The semantic cache's search: which stored vector is most similar to a query, if any reaches a floor.

Rows and queries are L2-normalised, so cosine similarity is a dot product and
one matrix-vector product scores a whole partition. That product is
memory-bound: at 100k rows of 384 float32 it streams 154 MB per lookup, about
6 ms on these machines whatever the kernel. A cache only needs the best row
*at or above its threshold*, and that admits an exact search that reads a
fraction of the bytes (a quarter, on MiniLM embeddings):

* Once a partition holds :data:`PRUNE_FROM` rows, its vectors are rotated to
  their own principal axes (an orthonormal rotation, so every dot product is
  unchanged) and split into a **head**, the fewest leading axes that hold
  :data:`HEAD_ENERGY` of the rows' energy, and a **tail**. Sentence
  embeddings are far from isotropic: on MiniLM embeddings of Quora questions
  the head is about a quarter of the 384 coordinates. (On isotropic data it
  is two thirds, and the scan still reads only that.)
* For any row, ``q . x = q_head . x_head + q_tail . x_tail``, and by
  Cauchy-Schwarz the tail term is at most ``|q_tail| |x_tail|``. The search
  scans the head only, adds that bound (the row's tail norm is kept), and
  re-scores exactly the few rows whose bound reaches the floor (0.03% of the
  rows at a floor of 0.8 on Quora questions). No row at or above the floor can
  be missed, so the answer is the full scan's, up to float32 rounding.
* When too many rows pass the bound (a low floor, or rows unlike those the
  axes were fitted on), it scores the tail of every row instead: the full
  scan's cost, never more.

The axes are fitted once, on a sample of the partition's rows, when it first
reaches :data:`PRUNE_FROM` rows; the ``add`` that triggers the fit pays for
it (about 0.1 s: most of it rotating the rows). They are not refitted: a fit
at 100k rows would hold the cache's lock for half a second, and the
anisotropy it captures is mostly the embedding model's, not the content's
(axes fitted on half of the Quora questions leave the same tail on the other
half). Rows unlike the fitted ones cost speed, never answers. Below
:data:`PRUNE_FROM` rows the full scan is already fast.

Layout: one column-major matrix (each coordinate's values for all rows are
contiguous), so the head is its first columns, read as one sequential block,
and the product streams memory fastest in numpy's and torch's kernels alike
(torch at 100k x 288: 4.5 ms column-major, 11 ms row-major). Gathering the
few re-scored rows across columns costs tens of microseconds. The matrix
grows by doubling; a removed row is replaced by the last, so live rows stay
contiguous.
"""

from __future__ import annotations

import sys
from typing import Generic, Protocol, TypeVar

import numpy as np

__all__ = ["FIT_SAMPLE", "HEAD_ENERGY", "PRUNE_FROM", "UNIT_TOLERANCE", "Placed", "VectorIndex"]

PRUNE_FROM = 16_384
"""Rows at which a partition fits its axes and starts scanning only the head."""

FIT_SAMPLE = 4_096
"""At most this many rows (evenly spaced) estimate the principal axes."""

UNIT_TOLERANCE = 1e-3
"""How far from 1 a vector's length may be. ``add`` refuses others (and any NaN or infinity): one such
row would win or lose every comparison, and at the fit NaN would spread to every row."""

HEAD_ENERGY = 2 / 3
"""Share of the rows' energy (sum of squared coordinates) the head's axes hold."""

_ROUNDING = 1e-4
"""Added to the bound so float32 rounding (about 1e-6 for 384 terms) never prunes a row that qualifies."""

_RESCORE_SHARE = 50
"""Re-score by gathering rows while at most 1/50 of them pass the bound; above that, score every tail.

Gathering a row reads across all its columns: at 100k rows gathering 1,000
rows took 1.9 ms and 3,000 rows 5.7 ms, as long as scoring every tail."""



class Placed(Protocol):
    """What the index stores: anything that can remember its row (-1 once removed)."""

    row: int


T = TypeVar("T", bound=Placed)


class VectorIndex(Generic[T]):
    """Unit vectors of one dimension, each attached to an item; exact best-match search above a floor.

    ``add`` and ``remove`` keep the item's ``row`` attribute pointing at its
    row. Not thread-safe: the cache calls it under its own lock.
    """

    __slots__ = ("dim", "items", "count", "_split", "_matrix", "_tail_norms", "_axes", "_prune_from", "_fitted")

    def __init__(self, dim: int, capacity: int = 16, prune_from: int = PRUNE_FROM) -> None:
        self.dim = dim
        self.items: list[T] = []
        self.count = 0
        self._split = dim  # no tail until the axes are fitted
        self._matrix = np.zeros((capacity, dim), dtype=np.float32, order="F")
        self._tail_norms = np.zeros(capacity, dtype=np.float32)
        self._axes: np.ndarray | None = None  # (dim, dim); a row is stored as ``vector @ axes``
        self._prune_from = prune_from

    @property
    def pruning(self) -> bool:
        """Whether searches scan the head only (the axes have been fitted)."""
        return self._axes is not None

    def add(self, item: T, vector: np.ndarray) -> None:
        """Add ``item`` with ``vector``: finite, of this index's dimension and unit length (``ValueError`` otherwise)."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise ValueError(f"a vector of shape {vector.shape} cannot join an index of {self.dim}-d vectors")
        if not np.isfinite(vector).all():
            raise ValueError("a vector with NaN or infinite coordinates cannot be indexed")
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > UNIT_TOLERANCE:
            raise ValueError(f"indexed vectors must have unit length (within {UNIT_TOLERANCE}); this one has {norm:.6g}")
        if self.count == len(self._matrix):
            self._grow()
        row = self.count
        rotated = vector if self._axes is None else _matvec(self._axes.T, vector)
        self._store_row(row, rotated)
        item.row = row
        self.items.append(item)
        self.count += 1
        if self.count >= self._prune_from and self._axes is None:
            self._fit()

    def remove(self, item: T) -> None:
        """Move the last row into the freed one, so live rows stay contiguous."""
        row, last = item.row, self.count - 1
        if row < 0:
            return
        if row != last:
            moved = self.items[last]
            self._matrix[row] = self._matrix[last]
            self._tail_norms[row] = self._tail_norms[last]
            self.items[row] = moved
            moved.row = row
        self.items.pop()
        self.count = last
        item.row = -1

    def vector(self, row: int) -> np.ndarray:
        """The vector stored at ``row``, as it was added (up to float32 rounding once rotated)."""
        stored = self._matrix[row]
        return stored.copy() if self._axes is None else stored @ self._axes.T

    def best(self, query: np.ndarray, floor: float) -> tuple[float, T] | None:
        """The most similar row's similarity and item, if that similarity reaches ``floor``; else None."""
        n = self.count
        if n == 0:
            return None
        query = np.asarray(query, dtype=np.float32)
        if self._axes is not None:
            query = _matvec(self._axes.T, query)
        split = self._split
        if self._axes is None:
            return self._pick(_matvec(self._matrix[:n], query), floor)
        head_scores = _matvec(self._matrix[:n, :split], query[:split])
        tail_query = query[split:]
        bound = head_scores + float(np.linalg.norm(tail_query)) * self._tail_norms[:n]
        rows = np.flatnonzero(bound >= floor - _ROUNDING)
        if rows.size == 0:
            return None
        if rows.size > n // _RESCORE_SHARE:
            return self._pick(head_scores + _matvec(self._matrix[:n, split:], tail_query), floor)
        scores = head_scores[rows] + _matvec(self._matrix[rows, split:], tail_query)
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        return (similarity, self.items[int(rows[best])]) if similarity >= floor else None

    def _pick(self, scores: np.ndarray, floor: float) -> tuple[float, T] | None:
        row = int(np.argmax(scores))
        similarity = float(scores[row])
        return (similarity, self.items[row]) if similarity >= floor else None

    def _store_row(self, row: int, rotated: np.ndarray) -> None:
        self._matrix[row] = rotated
        self._tail_norms[row] = np.linalg.norm(rotated[self._split:])

    def _grow(self) -> None:
        n, capacity = self.count, 2 * len(self._matrix)
        matrix = np.zeros((capacity, self.dim), dtype=np.float32, order="F")
        norms = np.zeros(capacity, dtype=np.float32)
        matrix[:n], norms[:n] = self._matrix[:n], self._tail_norms[:n]
        self._matrix, self._tail_norms = matrix, norms

    def _fit(self) -> None:
        """Rotate every row to the principal axes of (a sample of) the rows, and choose the head."""
        n = self.count
        rows = self._matrix[:n]
        sample = rows[:: max(1, n // FIT_SAMPLE)]
        energy, vectors = np.linalg.eigh(sample.T @ sample)
        energy, axes = energy[::-1], np.ascontiguousarray(vectors[:, ::-1], dtype=np.float32)  # largest first
        held = np.cumsum(energy) / energy.sum()
        self._split = max(1, min(self.dim - 1, int(np.searchsorted(held, HEAD_ENERGY)) + 1))
        self._matrix[:n] = rows @ axes
        self._tail_norms[:n] = np.linalg.norm(self._matrix[:n, self._split:], axis=1)
        self._axes = axes


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector``; on torch's thread pool when torch is loaded.

    The default embedder runs on torch. A numpy product in between wakes
    OpenBLAS's own threads, and on a small machine the two pools spin against
    each other (measured on 2 cores at 10k entries: lookup median 20 ms with
    numpy, under 10 ms this way). Without torch, numpy does it. The arrays are
    shared, not copied.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.from_numpy(matrix).mv(torch.from_numpy(vector)).numpy()  # type: ignore[no-any-return]
    return matrix @ vector
