"""Groq: OpenAI-compatible chat and streamed chat, and Groq's model catalogue by category.

``base_url`` includes ``/v1``, as with Groq's and OpenAI's SDKs
(``GROQ_BASE_URL``, default ``https://api.groq.com/openai/v1``); the key
comes from ``api_key=`` or ``GROQ_API_KEY``. The wire format is the OpenAI
adapter's, reused as is.

The catalogue (:data:`MODELS`) is Groq's "Supported Models" page
(https://console.groq.com/docs/models) and its vision page
(https://console.groq.com/docs/vision), as read in 2025: production and
preview models, by what they take in. Groq changes it often; pass
``online=True`` to :func:`list_models` to ask the API (``GET /models``)
instead, each id put in a category by the catalogue or, for ids it does not
know, by name (``whisper``/``tts`` → audio, ``vision``/``llama-4`` → vision).

Two Groq-only signals: status 498 (``capacity_exceeded``, flex processing
out of capacity; Groq says to retry with backoff) is raised as
:class:`~resilient.errors.OverloadedError`, not as an unknown 4xx that is
never retried; and a stream that Groq stops early (a chunk with
``x_groq.error``) raises :class:`~resilient.errors.ServerError` rather than
ending quietly without a finish reason.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import OverloadedError, ProviderError

from . import _http
from . import client as _client
from .openai import chat_at, chat_body, stream_chat_at
from .openai_compatible import model_ids_at

__all__ = ["Client", "chat", "stream_chat", "list_models", "is_compatible_model", "MODELS", "CATEGORIES"]

PROVIDER = "groq"
DEFAULT_BASE_URL = "https://api.groq.com/openai/v1"
KEY_ENV = ("GROQ_API_KEY",)
BASE_URL_ENV = ("GROQ_BASE_URL",)
CATEGORIES = ("chat", "vision", "audio")
#: Groq's "flex tier out of capacity" status (https://console.groq.com/docs/flex-processing).
CAPACITY_EXCEEDED = 498

#: model id → category. Vision models also chat (:func:`is_compatible_model` knows).
MODELS: dict[str, str] = {
    "llama-3.1-8b-instant": "chat",
    "llama-3.3-70b-versatile": "chat",
    "openai/gpt-oss-120b": "chat",
    "openai/gpt-oss-20b": "chat",
    "qwen/qwen3-32b": "chat",
    "moonshotai/kimi-k2-instruct-0905": "chat",
    "groq/compound": "chat",
    "groq/compound-mini": "chat",
    "meta-llama/llama-guard-4-12b": "chat",
    "meta-llama/llama-4-scout-17b-16e-instruct": "vision",
    "meta-llama/llama-4-maverick-17b-128e-instruct": "vision",
    "whisper-large-v3": "audio",
    "whisper-large-v3-turbo": "audio",
    "playai-tts": "audio",
    "playai-tts-arabic": "audio",
}


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
    **extra: Any,
) -> dict[str, Any]:
    """One chat completion, as the toolkit's plain dict."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    key = _http.credential(api_key, KEY_ENV, PROVIDER)
    with _capacity_is_overload():
        return chat_at(_base(base_url), body, key, PROVIDER, timeout, request_id, session)


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
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """Stream a chat completion: ``{"text", "done": False}`` chunks, then the final one."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    key = _http.credential(api_key, KEY_ENV, PROVIDER)
    with _capacity_is_overload():
        yield from stream_chat_at(_base(base_url), body, key, PROVIDER, timeout, request_id, session)


def list_models(
    category: str | None = None,
    *,
    online: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> list[str]:
    """Model ids, all or of one ``category`` (``chat``, ``vision``, ``audio``), sorted.

    From the catalogue, or from the API with ``online=True``. A vision model
    is listed under ``vision`` only, though it also chats.
    """
    _check(category)
    if online:
        key = _http.credential(api_key, KEY_ENV, PROVIDER)
        with _capacity_is_overload():
            ids = model_ids_at(_base(base_url), key, PROVIDER, timeout, request_id, session)
    else:
        ids = list(MODELS)
    return sorted(i for i in ids if category is None or category_of(i) == category)


def is_compatible_model(name: str, category: str) -> bool:
    """Whether ``name`` can serve ``category``: a vision model serves chat too; unknown names go by their name."""
    _check(category)
    own = category_of(name)
    return own == category or (category == "chat" and own == "vision")


def category_of(name: str) -> str:
    """The catalogue's category for ``name``, else a guess from the name."""
    if name in MODELS:
        return MODELS[name]
    lowered = name.lower()
    if "whisper" in lowered or "tts" in lowered:
        return "audio"
    if "vision" in lowered or "llama-4" in lowered:
        return "vision"
    return "chat"


def _check(category: str | None) -> None:
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")


@contextlib.contextmanager
def _capacity_is_overload() -> Iterator[None]:
    """Groq's 498 raised as the overload it is (retried with backoff), the provider's fields kept.

    The generic taxonomy knows no 498 and would make it a never-retried 4xx.
    """
    try:
        yield
    except ProviderError as exc:
        if exc.status != CAPACITY_EXCEEDED:
            raise
        raise OverloadedError(
            exc.message, status=exc.status, provider=exc.provider, request_id=exc.request_id,
            retry_after=exc.retry_after, body=exc.body, should_retry=exc.should_retry,
        ) from exc  # fmt: skip


def _base(base_url: str | None) -> str:
    return (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


class Client(_client.Client):
    """This provider's functions behind the recommended stack (see :mod:`resilient.adapters.client`)."""

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
