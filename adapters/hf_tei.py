"""Hugging Face Text Embeddings Inference: embeddings, batched embeddings, reranking, cosine similarity.

``base_url`` is the server root (``TEI_BASE_URL``, default
``http://localhost:8080``, TEI's port in its docs); the adapter adds
``/embed`` and ``/rerank``. A local server needs no token; one given as
``api_key=`` or found in ``HF_API_TOKEN`` / ``HF_TOKEN`` (Inference
Endpoints) is sent as a Bearer token. TEI reports no token usage on these
routes: ``usage`` is zeros.
"""

from __future__ import annotations

import sys
import math
from collections.abc import Callable, Sequence
from typing import Any

import requests

from . import _http
from . import client as _client

__all__ = ["Client", "embed", "batch_embed", "rerank", "similarity", "cosine"]

PROVIDER = "hf_tei"
DEFAULT_BASE_URL = "http://localhost:8080"
BASE_URL_ENV = ("TEI_BASE_URL",)
KEY_ENV = ("HF_API_TOKEN", "HF_TOKEN")
KEY_OPTIONAL = True  # a local server usually takes no key: its Client falls back to a keyless pool
DEFAULT_BATCH_SIZE = 32  # TEI's default --max-client-batch-size


def embed(
    texts: str | Sequence[str],
    *,
    normalize: bool | None = None,
    truncate: bool | None = None,
    dimensions: int | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Embeddings of ``texts`` in one ``POST /embed``: ``{"embeddings", "model", "usage", "request_id"}``."""
    body = _http.compact(
        inputs=[texts] if isinstance(texts, str) else list(texts), normalize=normalize, truncate=truncate, dimensions=dimensions
    )
    response = _post("/embed", body, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if not isinstance(data, list) or not all(isinstance(v, list) for v in data) or len(data) != len(body["inputs"]):
        raise _http.malformed(response, PROVIDER, "not one vector per input", data)
    return {
        "embeddings": data,
        "model": None,
        "usage": _http.usage(),
        "request_id": _http.provider_request_id(response),
    }


def batch_embed(
    texts: Sequence[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    embed_with: Callable[..., dict[str, Any]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Embeddings of any number of ``texts``, in requests of at most ``batch_size`` (TEI refuses larger ones).

    ``options`` are :func:`embed`'s. ``embed_with`` embeds one batch (default
    :func:`embed`): pass a decorated ``embed`` (``backoff(hf_tei.embed)``) so
    that a retry repeats the batch that failed, not every batch. The result
    is :func:`embed`'s, with the vectors in input order and the
    ``request_ids`` of every request made.
    """
    embed_batch = embed_with or embed
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    texts = list(texts)
    vectors: list[list[float]] = []
    ids: list[str | None] = []
    for start in range(0, len(texts), batch_size):
        result = embed_batch(texts[start : start + batch_size], **options)
        vectors += result["embeddings"]
        ids.append(result["request_id"])
    return {
        "embeddings": vectors,
        "model": None,
        "usage": _http.usage(),
        "request_ids": ids,
    }


def rerank(
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None = None,
    return_text: bool = False,
    truncate: bool | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> list[dict[str, Any]]:
    """``texts`` ranked by relevance to ``query`` (``POST /rerank``): ``[{"index", "score", "text"?}]``, best first."""
    body = _http.compact(query=query, texts=list(texts), return_text=return_text or None, truncate=truncate)
    response = _post("/rerank", body, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if not isinstance(data, list) or not all(isinstance(r, dict) and "index" in r and "score" in r for r in data):
        raise _http.malformed(response, PROVIDER, "no [].index/score", data)
    ranked = sorted(data, key=lambda r: -r["score"])
    return ranked[:top_n] if top_n is not None else ranked


def similarity(
    a: str | Sequence[float],
    b: str | Sequence[float],
    *,
    embed_with: Callable[..., dict[str, Any]] | None = None,
    **options: Any,
) -> float:
    """Cosine similarity of two texts (embedded together in one request) or two vectors (no request).

    ``options`` are :func:`embed`'s; ``embed_with`` makes the request instead
    of :func:`embed` (a decorated one, as for :func:`batch_embed`).
    """
    if isinstance(a, str) or isinstance(b, str):
        texts = [x for x in (a, b) if isinstance(x, str)]
        vectors = iter((embed_with or embed)(texts, **options)["embeddings"])
        a = next(vectors) if isinstance(a, str) else a
        b = next(vectors) if isinstance(b, str) else b
    return cosine(a, b)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors of one length; 0.0 when either is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"vectors differ in length: {len(a)} and {len(b)}")
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0


def _post(
    path: str,
    body: dict[str, Any],
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> requests.Response:
    key = api_key or _http.setting(KEY_ENV)
    base = (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    return _http.send(
        "POST",
        base + path,
        provider=PROVIDER,
        json_body=body,
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for a Text Embeddings Inference server.

    See :mod:`resilient.adapters.client`; with no key given nor set in ``HF_API_TOKEN`` / ``HF_TOKEN``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
