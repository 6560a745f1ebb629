"""Any OpenAI-compatible server: vLLM, llama.cpp's ``llama-server``, LM Studio, LocalAI, TGI/TEI's ``/v1``.

This is also the backend the seeds call "LLVM optimized local inference":
there is no public LLVM inference API (LLVM is a compiler toolkit; local
inference engines built on it, such as llama.cpp, expose the OpenAI
dialect), so such a server is reached through this module.

``base_url`` includes ``/v1``, as with the official SDK
(``OPENAI_COMPATIBLE_BASE_URL``, default ``http://localhost:8000/v1``, vLLM's
port; llama.cpp uses 8080 and LM Studio 1234). A local server needs no key;
one given as ``api_key=`` or ``OPENAI_COMPATIBLE_API_KEY`` is sent as a
Bearer token. The wire format is the OpenAI adapter's, reused as is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from . import _http
from . import client as _client
from .openai import chat_at, chat_body, embed_at, stream_chat_at

__all__ = ["Client", "chat", "stream_chat", "embed", "list_models", "model_ids_at"]

PROVIDER = "openai_compatible"
DEFAULT_BASE_URL = "http://localhost:8000/v1"
BASE_URL_ENV = ("OPENAI_COMPATIBLE_BASE_URL",)
KEY_ENV = ("OPENAI_COMPATIBLE_API_KEY",)
KEY_OPTIONAL = True  # a local server usually takes no key: its Client falls back to a keyless pool


def chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    provider: str = PROVIDER,
    **extra: Any,
) -> dict[str, Any]:
    """One chat completion; ``provider`` names the server in errors (``"vllm"``, ``"llama.cpp"``, ...)."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    return chat_at(_base(base_url), body, _key(api_key), provider, timeout, request_id, session)


def stream_chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    provider: str = PROVIDER,
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """Stream a chat completion: ``{"text", "done": False}`` chunks, then the final one."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    yield from stream_chat_at(_base(base_url), body, _key(api_key), provider, timeout, request_id, session)


def embed(
    texts: str | Sequence[str],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    dimensions: int | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    provider: str = PROVIDER,
) -> dict[str, Any]:
    """Embeddings from ``/embeddings`` (servers started with an embedding model)."""
    body = _http.compact(model=model, input=[texts] if isinstance(texts, str) else list(texts), dimensions=dimensions)
    return embed_at(_base(base_url), body, _key(api_key), provider, timeout, request_id, session)


def list_models(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    provider: str = PROVIDER,
) -> list[str]:
    """The ids the server serves (``GET /models``)."""
    return model_ids_at(_base(base_url), _key(api_key), provider, timeout, request_id, session)


def model_ids_at(
    base: str,
    key: str | None,
    provider: str,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> list[str]:
    """``GET {base}/models`` → the model ids; for every OpenAI-compatible server."""
    response = _http.send(
        "GET",
        f"{base}/models",
        provider=provider,
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    data = _http.json_of(response, provider)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise _http.malformed(response, provider, "no data[].id", data)
    return [item["id"] for item in items]


def _base(base_url: str | None) -> str:
    return (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


def _key(api_key: str | None) -> str | None:
    return api_key or _http.setting(KEY_ENV)


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for any OpenAI-compatible server (vLLM, llama.cpp, LM Studio).

    See :mod:`resilient.adapters.client`; with no key given nor set in ``OPENAI_COMPATIBLE_API_KEY``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
