"""OPEA ChatQnA megaservice (``/v1/chatqna``): the answer, and its stream.

``base_url`` is the gateway's root (``OPEA_BASE_URL``, default
``http://localhost:8888``, ChatQnA's port in OPEA's examples); the adapter
adds ``/v1/chatqna``. No key unless the gateway sits behind an
authenticating proxy: one given as ``api_key=`` or ``OPEA_API_KEY`` is sent
as a Bearer token.

Without streaming the gateway answers an OpenAI chat completion. Its stream
carries each token as the Python ``repr`` of its bytes (``data: b'...'``),
as OPEA's LLM microservice writes it, or, in newer versions, OpenAI chunk
objects; both are read, and the stream must end with ``data: [DONE]``.
ChatQnA reports no token usage in its stream: the final chunk's ``usage``
is zeros.
"""

from __future__ import annotations

import sys
import ast
import json
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from . import _http
from . import client as _client
from .openai import parse_chat

__all__ = ["Client", "chatqna", "stream_chatqna"]

PROVIDER = "opea"
DEFAULT_BASE_URL = "http://localhost:8888"
BASE_URL_ENV = ("OPEA_BASE_URL",)
KEY_ENV = ("OPEA_API_KEY",)
KEY_OPTIONAL = True  # a local server usually takes no key: its Client falls back to a keyless pool


def chatqna(
    messages: str | Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float = 120.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Ask ChatQnA (a question string or OpenAI-style messages); the toolkit's result dict."""
    body = _body(messages, model, max_tokens, temperature, extra, stream=False)
    response = _post(body, api_key, base_url, timeout, request_id, session, stream=False)
    return parse_chat(_http.json_of(response, PROVIDER), response, PROVIDER)


def stream_chatqna(
    messages: str | Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float = 120.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """Stream ChatQnA's answer: ``{"text", "done": False}`` chunks, then the final chunk at ``[DONE]``."""
    body = _body(messages, model, max_tokens, temperature, extra, stream=True)
    response = _post(body, api_key, base_url, timeout, request_id, session, stream=True)
    finish_reason = "stop"
    for _, data in _http.sse_events(response, PROVIDER):
        data = data.strip()
        if data == "[DONE]":
            yield _http.final_chunk(response, finish_reason=finish_reason, tool_calls=[], usage=_http.usage())
            return
        text, reason = _token(data, response)
        finish_reason = reason or finish_reason
        if text:
            yield {"text": text, "done": False}
    raise _http.stream_cut(response, PROVIDER, "data: [DONE]")


def _token(data: str, response: requests.Response) -> tuple[str, str | None]:
    """The text of one stream event: a bytes literal (``b'...'``) or an OpenAI chunk."""
    if data[:2] in ("b'", 'b"'):
        try:
            raw = ast.literal_eval(data)
        except (ValueError, SyntaxError):
            raise _http.malformed(response, PROVIDER, "stream token is not a bytes literal", data) from None
        return raw.decode("utf-8", errors="replace"), None
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _http.malformed(response, PROVIDER, "stream event is neither bytes nor JSON", data) from None
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list):
        raise _http.malformed(response, PROVIDER, "stream event without choices", data)
    text, reason = "", None
    for choice in choices:
        choice = _http.expect(choice, dict, response, PROVIDER, "a choice", body=data)
        delta = _http.expect(choice.get("delta"), dict, response, PROVIDER, "delta", body=data, absent={})
        piece = delta.get("content") or choice.get("text")
        text += _http.expect(piece, str, response, PROVIDER, "delta.content", body=data, absent="")
        reason = choice.get("finish_reason") or reason
    return text, {"length": "length"}.get(str(reason or ""), "stop" if reason else None)


def _body(
    messages: str | Sequence[dict[str, Any]],
    model: str | None,
    max_tokens: int | None,
    temperature: float | None,
    extra: dict[str, Any],
    *,
    stream: bool,
) -> dict[str, Any]:
    return {
        **_http.compact(
            messages=messages if isinstance(messages, str) else list(messages),
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
        ),
        "stream": stream,
        **extra,
    }


def _post(
    body: dict[str, Any],
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
    *,
    stream: bool,
) -> requests.Response:
    key = api_key or _http.setting(KEY_ENV)
    base = (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    return _http.send(
        "POST",
        f"{base}/v1/chatqna",
        provider=PROVIDER,
        json_body=body,
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        stream=stream,
        request_id=request_id,
    )


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for an OPEA ChatQnA gateway.

    See :mod:`resilient.adapters.client`; with no key given nor set in ``OPEA_API_KEY``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
