"""VectorIndex: the pruned search must give exactly the full scan's answer, before and after its axes are fitted.

The data are anisotropic unit vectors in clusters (like sentence embeddings:
a few directions carry most of the variance, and similar texts sit close
together), so the fitted head really does carry most of each row and the
bound really prunes; queries are near stored rows (hits) and far from all
(misses). Small ``prune_from`` values make the fit happen at test sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from resilient.vector_index import VectorIndex


class Item:
    def __init__(self, name: int) -> None:
        self.name = name
        self.row = -1


def unit_rows(rng: np.random.Generator, n: int, dim: int = 64, clusters: int = 40) -> np.ndarray:
    scale = 1.0 / np.arange(1, dim + 1) ** 0.7  # decaying spectrum
    centres = rng.standard_normal((clusters, dim)) * scale
    rows = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)) * scale
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def brute_force(vectors: dict[int, np.ndarray], query: np.ndarray, floor: float) -> tuple[float, int] | None:
    names = list(vectors)
    scores = np.stack([vectors[k] for k in names]).astype(np.float64) @ query.astype(np.float64)
    best = int(np.argmax(scores))
    return (float(scores[best]), names[best]) if scores[best] >= floor else None


def assert_same(index: VectorIndex[Item], vectors: dict[int, np.ndarray], query: np.ndarray, floor: float) -> bool:
    expected = brute_force(vectors, query, floor)
    found = index.best(query, floor)
    if expected is None:
        assert found is None
        return False
    assert found is not None, f"missed a row at {expected[0]:.4f} >= {floor}"
    similarity, item = found
    assert similarity == pytest.approx(expected[0], abs=1e-5)
    # a tie within rounding may pick either row; otherwise the very same one
    assert item.name == expected[1] or abs(vectors[item.name] @ query - expected[0]) < 1e-5
    return True


def queries(rng: np.random.Generator, rows: np.ndarray, count: int) -> list[np.ndarray]:
    near = rows[rng.integers(0, len(rows), count)] + 0.02 * rng.standard_normal((count, rows.shape[1]))
    far = rng.standard_normal((count, rows.shape[1]))
    both = np.vstack([near, far])
    return list((both / np.linalg.norm(both, axis=1, keepdims=True)).astype(np.float32))


@pytest.mark.parametrize("floor", [0.95, 0.8, 0.5, 0.0, -1.0])
def test_pruned_search_returns_the_full_scans_answer(floor):
    rng = np.random.default_rng(7)
    rows = unit_rows(rng, 3000)
    index: VectorIndex[Item] = VectorIndex(64, prune_from=512)
    vectors = {}
    for i, row in enumerate(rows):
        index.add(Item(i), row)
        vectors[i] = row
    assert index.pruning
    hits = sum(assert_same(index, vectors, q, floor) for q in queries(rng, rows, 100))
    assert hits >= 100  # every near query is a hit at these floors


def test_small_index_scans_everything_and_reports_misses():
    rng = np.random.default_rng(1)
    index: VectorIndex[Item] = VectorIndex(64)
    assert index.best(unit_rows(rng, 1)[0], 0.5) is None  # empty
    rows = unit_rows(rng, 50)
    vectors = {}
    for i, row in enumerate(rows):
        index.add(Item(i), row)
        vectors[i] = row
    assert not index.pruning
    for q in queries(rng, rows, 20):
        for floor in (0.99, 0.8, 0.3):
            assert_same(index, vectors, q, floor)
    assert index.best(rows[3], 1.01) is None  # nothing can reach it


def test_removals_after_the_fit_keep_rows_items_and_answers_consistent():
    rng = np.random.default_rng(3)
    rows = unit_rows(rng, 4000)
    index: VectorIndex[Item] = VectorIndex(64, capacity=4, prune_from=256)
    items: dict[int, Item] = {}
    vectors: dict[int, np.ndarray] = {}
    for i, row in enumerate(rows):  # fits at 256 rows
        items[i] = Item(i)
        vectors[i] = row
        index.add(items[i], row)
        if i % 3 == 2:  # keep removing: the last row moves into the freed one
            gone = int(rng.choice(list(items)))
            index.remove(items[gone])
            assert items[gone].row == -1
            del items[gone], vectors[gone]
    assert index.pruning
    assert index.count == len(items) == len(index.items)
    for name, item in items.items():
        assert index.items[item.row] is item
        np.testing.assert_allclose(index.vector(item.row), vectors[name], atol=1e-5)
        found = index.best(vectors[name], 0.999)  # every row, wherever it was moved, finds itself
        assert found is not None and found[0] == pytest.approx(1.0, abs=1e-5)
    remaining = np.stack(list(vectors.values()))
    for q in queries(rng, remaining, 60):
        assert_same(index, vectors, q, 0.8)


def test_a_row_added_after_the_fit_is_found_even_if_unlike_the_fitted_rows():
    rng = np.random.default_rng(5)
    index: VectorIndex[Item] = VectorIndex(64, prune_from=256)
    for i, row in enumerate(unit_rows(rng, 300)):
        index.add(Item(i), row)
    assert index.pruning
    odd = np.zeros(64, dtype=np.float32)
    odd[-1] = 1.0  # lies entirely in the least varied direction, i.e. in the tail
    index.add(Item(999), odd)
    found = index.best(odd, 0.9)
    assert found is not None and found[1].name == 999
    assert found[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("bad, message", [
    (np.full(64, np.nan), "NaN or infinite"),
    (np.r_[np.inf, np.zeros(63)], "NaN or infinite"),
    (np.zeros(64), "unit length"),
    (np.r_[10.0, np.zeros(63)], "unit length"),
    (np.r_[1.0, np.zeros(31)], "cannot join an index of 64-d"),
])
def test_add_refuses_a_vector_that_is_not_finite_unit_and_of_its_dimension(bad, message):
    """One NaN row would make every search of the index a miss and, at the fit, spread to every row."""
    rng = np.random.default_rng(9)
    rows = unit_rows(rng, 300)
    index: VectorIndex[Item] = VectorIndex(64, prune_from=256)
    for i, row in enumerate(rows[:200]):
        index.add(Item(i), row)
    refused = Item(-1)
    with pytest.raises(ValueError, match=message):
        index.add(refused, bad.astype(np.float32))
    assert refused.row == -1 and index.count == 200 and len(index.items) == 200
    for i, row in enumerate(rows[200:], start=200):  # on through the fit
        index.add(Item(i), row)
    assert index.pruning and np.isfinite(index._matrix[: index.count]).all()
    vectors = dict(enumerate(rows))
    for q in queries(rng, rows, 20):
        assert_same(index, vectors, q, 0.8)
    found = index.best(rows[3], 0.999)
    assert found is not None and found[1].name == 3
