"""OpenAI: Chat Completions (plain and streamed), Embeddings, Images.

Also the dialect of Groq, vLLM, llama.cpp's server, LM Studio and OpenVINO
Model Server; those adapters reuse :func:`chat_at`, :func:`stream_chat_at`
and :func:`embed_at` with their own base URL and credentials.

``base_url`` follows the official SDK: it includes ``/v1``
(``OPENAI_BASE_URL`` in the environment, default ``https://api.openai.com/v1``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import error_for_status

from . import _http
from . import client as _client

__all__ = ["Client", "chat", "stream_chat", "embed", "text_to_image", "chat_at", "stream_chat_at", "embed_at", "parse_chat"]

PROVIDER = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_ENV = ("OPENAI_API_KEY",)
BASE_URL_ENV = ("OPENAI_BASE_URL",)

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _base(base_url: str | None) -> str:
    return (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


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
    """One chat completion, as the toolkit's plain dict (see the adapters' README)."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    return chat_at(
        _base(base_url), body, _http.credential(api_key, KEY_ENV, PROVIDER), PROVIDER, timeout, request_id, session
    )


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
    """Stream a chat completion: ``{"text", "done": False}`` chunks, then one with ``done``, ``finish_reason``, ``usage``."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    key = _http.credential(api_key, KEY_ENV, PROVIDER)
    yield from stream_chat_at(_base(base_url), body, key, PROVIDER, timeout, request_id, session)


def embed(
    texts: str | Sequence[str],
    *,
    model: str = "text-embedding-3-small",
    api_key: str | None = None,
    base_url: str | None = None,
    dimensions: int | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Embeddings of ``texts``: ``{"embeddings": [[...], ...], "model", "usage"}`` in input order."""
    body = _http.compact(model=model, input=[texts] if isinstance(texts, str) else list(texts), dimensions=dimensions)
    key = _http.credential(api_key, KEY_ENV, PROVIDER)
    return embed_at(_base(base_url), body, key, PROVIDER, timeout, request_id, session)


def text_to_image(
    prompt: str,
    *,
    model: str = "dall-e-3",
    size: str | None = None,
    n: int | None = None,
    response_format: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 120.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Generate images: ``{"images": [{"url"} or {"b64_json"}], "model", "request_id", "raw"}``."""
    body = _http.compact(model=model, prompt=prompt, size=size, n=n, response_format=response_format)
    response = _http.send(
        "POST",
        f"{_base(base_url)}/images/generations",
        provider=PROVIDER,
        json_body=body,
        headers=_http.bearer(_http.credential(api_key, KEY_ENV, PROVIDER)),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    data = _http.json_of(response, PROVIDER)
    images = data.get("data") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise _http.malformed(response, PROVIDER, "no data list", data)
    return {
        "images": [_http.compact(url=i.get("url"), b64_json=i.get("b64_json")) for i in images if isinstance(i, dict)],
        "model": model,
        "request_id": _http.provider_request_id(response),
        "raw": data,
    }


# --------------------------------------------------------------------------- shared with compatible servers


def chat_body(
    messages: Sequence[dict[str, Any]],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The request body of ``/chat/completions``; ``system`` becomes a leading system message."""
    all_messages = ([{"role": "system", "content": system}] if system else []) + list(messages)
    return {
        **_http.compact(
            model=model,
            messages=all_messages,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=tools,
            tool_choice=tool_choice,
            stop=stop,
        ),
        **extra,
    }


def chat_at(
    base: str,
    body: dict[str, Any],
    key: str | None,
    provider: str,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> dict[str, Any]:
    """POST ``{base}/chat/completions`` and parse it; for every OpenAI-compatible server."""
    response = _http.send(
        "POST",
        f"{base}/chat/completions",
        provider=provider,
        json_body={**body, "stream": False},
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    return parse_chat(_http.json_of(response, provider), response, provider)


def parse_chat(data: Any, response: requests.Response, provider: str = PROVIDER) -> dict[str, Any]:
    """A ``chat.completion`` object as the toolkit's result dict."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise _http.malformed(response, provider, "no choices[0].message", data) from None
    tool_calls = [_tool_call(call, response, provider) for call in message.get("tool_calls") or []]
    return {
        "text": message.get("content") or "",
        "model": data.get("model"),
        "finish_reason": _FINISH.get(choice.get("finish_reason") or "", choice.get("finish_reason")),
        "tool_calls": tool_calls,
        "usage": _usage(data.get("usage")),
        "request_id": _http.provider_request_id(response) or data.get("id"),
        "rate_limit": _http.rate_limits(response),
        "raw": data,
    }


def _tool_call(call: dict[str, Any], response: requests.Response, provider: str) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"id": call.get("id"), "name": function.get("name"), "arguments": _arguments(function.get("arguments"), response, provider)}


def _arguments(raw: Any, response: requests.Response, provider: str) -> Any:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise _http.malformed(response, provider, "tool call arguments are not JSON", raw) from None


def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    inp, out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return _http.usage(inp, out, int(usage.get("total_tokens") or 0))


def stream_chat_at(
    base: str,
    body: dict[str, Any],
    key: str | None,
    provider: str,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> Iterator[dict[str, Any]]:
    """Stream ``{base}/chat/completions``; the request is sent on the first ``next()``."""
    response = _http.send(
        "POST",
        f"{base}/chat/completions",
        provider=provider,
        json_body={**body, "stream": True, "stream_options": {"include_usage": True}},
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        stream=True,
        request_id=request_id,
    )
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    calls: dict[int, dict[str, Any]] = {}
    for _, data in _http.sse_events(response, provider):
        if data.strip() == "[DONE]":
            tool_calls = [
                {"id": c["id"], "name": c["name"], "arguments": _arguments(c["arguments"], response, provider)}
                for _, c in sorted(calls.items())
            ]
            yield {
                "text": "",
                "done": True,
                "finish_reason": finish_reason,
                "tool_calls": tool_calls,
                "usage": usage or _usage(None),
                "request_id": _http.provider_request_id(response),
                "rate_limit": _http.rate_limits(response),
            }
            return
        chunk = _http.parse_json_text(data, response, provider)
        if isinstance(chunk, dict) and "error" in chunk:
            raise _stream_error(chunk, response, provider)
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), {"id": None, "name": None, "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = function.get("name") or slot["name"]
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                finish_reason = _FINISH.get(choice["finish_reason"], choice["finish_reason"])
            if delta.get("content"):
                yield {"text": delta["content"], "done": False}
    raise _http.stream_cut(response, provider, "data: [DONE]")


def _stream_error(chunk: dict[str, Any], response: requests.Response, provider: str) -> Exception:
    error = chunk.get("error") or {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    status = error["code"] if isinstance(error.get("code"), int) else 500
    message = error.get("message") if isinstance(error, dict) else str(error)
    return error_for_status(status, f"error mid-stream: {message}", provider=provider, body=chunk)


def embed_at(
    base: str,
    body: dict[str, Any],
    key: str | None,
    provider: str,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> dict[str, Any]:
    """POST ``{base}/embeddings``; embeddings are returned in input order."""
    response = _http.send(
        "POST",
        f"{base}/embeddings",
        provider=provider,
        json_body=body,
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    data = _http.json_of(response, provider)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
        raise _http.malformed(response, provider, "no data[].embedding", data)
    items = sorted(items, key=lambda item: item.get("index", 0))
    return {
        "embeddings": [item["embedding"] for item in items],
        "model": data.get("model"),
        "usage": _usage(data.get("usage")),
        "request_id": _http.provider_request_id(response),
        "rate_limit": _http.rate_limits(response),
    }


class Client(_client.Client):
    """This provider's functions behind the recommended stack (see :mod:`resilient.adapters.client`)."""

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
