"""Anthropic Messages API: chat, streamed chat (every event type), tools.

``base_url`` follows the official SDK: the server root, without ``/v1``
(``ANTHROPIC_BASE_URL``, default ``https://api.anthropic.com``). The key
comes from ``api_key=`` or ``ANTHROPIC_API_KEY`` and is sent as
``x-api-key`` with ``anthropic-version: 2023-06-01``.

Messages are Anthropic-shaped (``{"role": "user"|"assistant", "content":
str | blocks}``); system messages found in the list are pulled into the
``system`` parameter, as the API requires. ``max_tokens`` is required by the
API; it defaults to 4096 here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import requests

from resilient.errors import InvalidRequestError, error_for_status

from . import _http, translate
from . import client as _client

__all__ = ["Client", "chat", "stream_chat", "chat_openai", "stream_chat_openai", "parse_message", "stream_chunks", "DEFAULT_MAX_TOKENS"]

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
KEY_ENV = ("ANTHROPIC_API_KEY",)
BASE_URL_ENV = ("ANTHROPIC_BASE_URL",)
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic's error types, for errors that arrive inside a stream (no HTTP status of their own).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One Messages API call, as the toolkit's plain dict."""
    body = request_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    response = _send(body, api_key, base_url, timeout, request_id, session, stream=False)
    return parse_message(_http.json_of(response, PROVIDER), response)


def stream_chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """Stream a message: text chunks, then a final chunk with ``finish_reason``, ``usage`` and ``tool_calls``.

    Tool inputs are assembled from ``input_json_delta`` events. An ``error``
    event raises the taxonomy's error for its type (``overloaded_error`` →
    :class:`~resilient.errors.OverloadedError`); a stream that ends before
    ``message_stop`` raises :class:`~resilient.errors.ProviderConnectionError`.
    """
    body = request_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    response = _send({**body, "stream": True}, api_key, base_url, timeout, request_id, session, stream=True)
    yield from _events(response)


def chat_openai(
    request: Mapping[str, Any],
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    default_max_tokens: int | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Claude behind the OpenAI chat format: an OpenAI request in, an OpenAI ``chat.completion`` out.

    The request is translated by :func:`resilient.adapters.translate.openai_request_to_anthropic`
    (``model`` overrides the request's, ``default_max_tokens`` is the model
    config's limit, used when the request gives none) and the answer by
    :func:`~resilient.adapters.translate.anthropic_response_to_openai`.
    Errors are the taxonomy's, as for :func:`chat`. Streaming requests
    (``"stream": true``) are refused: use :func:`stream_chat_openai`.
    """
    body = _openai_body(request, model, default_max_tokens)
    if body.pop("stream", False):
        raise InvalidRequestError("stream: chat_openai returns one completion; use stream_chat_openai for a stream")
    response = _send(body, api_key, base_url, timeout, request_id, session, stream=False)
    data = _http.json_of(response, PROVIDER)
    try:
        return translate.anthropic_response_to_openai(data)
    except ValueError as exc:
        raise _http.malformed(response, PROVIDER, str(exc), data) from None


def stream_chat_openai(
    request: Mapping[str, Any],
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    default_max_tokens: int | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`chat_openai` streamed: OpenAI ``chat.completion.chunk`` objects, as an OpenAI stream sends them.

    ``stream_options.include_usage`` adds the final usage chunk, as on OpenAI.
    Errors, mid-stream ones and cut streams included, raise as in :func:`stream_chat`.
    """
    body = {**_openai_body(request, model, default_max_tokens), "stream": True}
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    response = _send(body, api_key, base_url, timeout, request_id, session, stream=True)
    yield from translate.chunks_to_openai(_events(response), model=body["model"], include_usage=include_usage)


def _openai_body(request: Mapping[str, Any], model: str | None, default_max_tokens: int | None) -> dict[str, Any]:
    body = translate.openai_request_to_anthropic(request, default_max_tokens=default_max_tokens)
    if model:
        body["model"] = model
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequestError("model: required (in the request or as model=)")
    return body


def request_body(
    messages: Sequence[dict[str, Any]],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    system: str | list[dict[str, Any]] | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The ``/v1/messages`` body; system messages in ``messages`` join ``system``."""
    systems = [m["content"] for m in messages if m.get("role") == "system" and isinstance(m.get("content"), str)]
    if system and isinstance(system, str):
        systems.insert(0, system)
    rest = [m for m in messages if m.get("role") != "system"]
    return {
        **_http.compact(
            model=model,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            messages=rest,
            system=system if isinstance(system, list) else ("\n\n".join(systems) or None),
            temperature=temperature,
            tools=tools,
            tool_choice=tool_choice,
            stop_sequences=[stop] if isinstance(stop, str) else stop,
        ),
        **extra,
    }


def _send(
    body: dict[str, Any],
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
    *,
    stream: bool,
) -> requests.Response:
    base = (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    headers = {
        "x-api-key": _http.credential(api_key, KEY_ENV, PROVIDER),
        "anthropic-version": API_VERSION,
    }
    return _http.send(
        "POST",
        f"{base}/v1/messages",
        provider=PROVIDER,
        json_body=body,
        headers=headers,
        timeout=timeout,
        session=session,
        stream=stream,
        request_id=request_id,
    )


def parse_message(data: Any, response: requests.Response) -> dict[str, Any]:
    """A Messages API ``message`` object as the toolkit's result dict."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise _http.malformed(response, PROVIDER, "no content list", data)
    text = "".join(b.get("text", "") for b in data["content"] if isinstance(b, dict) and b.get("type") == "text")
    tool_calls = [
        {"id": b.get("id"), "name": b.get("name"), "arguments": b.get("input") or {}}
        for b in data["content"]
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]
    return {
        "text": text,
        "model": data.get("model"),
        "finish_reason": FINISH.get(data.get("stop_reason") or "", data.get("stop_reason")),
        "tool_calls": tool_calls,
        "usage": usage(data.get("usage")),
        "request_id": _http.provider_request_id(response) or data.get("id"),
        "rate_limit": _http.rate_limits(response),
        "raw": data,
    }


def usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    inp, out = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return _http.usage(inp, out)


def _events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Turn the SSE event sequence into the toolkit's chunks."""
    events = (
        (event, _http.parse_json_text(data, response, PROVIDER)) for event, data in _http.sse_events(response, PROVIDER)
    )
    yield from stream_chunks(events, response)


def stream_chunks(
    events: Iterable[tuple[str | None, Any]], response: requests.Response, provider: str = PROVIDER
) -> Iterator[dict[str, Any]]:
    """The toolkit's chunks for a sequence of ``(event name, parsed event JSON)``.

    Shared by every transport of the Messages stream: SSE here, AWS
    event-stream frames on Bedrock. ``provider`` names the errors raised.
    """
    input_tokens = output_tokens = 0
    finish_reason: str | None = None
    tools: dict[int, dict[str, Any]] = {}
    for event, payload in events:
        kind = payload.get("type", event) if isinstance(payload, dict) else event
        if kind == "message_start":
            input_tokens = int(((payload.get("message") or {}).get("usage") or {}).get("input_tokens") or 0)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                tools[payload.get("index", 0)] = {"id": block.get("id"), "name": block.get("name"), "json": ""}
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield {"text": delta["text"], "done": False}
            elif delta.get("type") == "input_json_delta":
                tools.setdefault(payload.get("index", 0), {"id": None, "name": None, "json": ""})
                tools[payload.get("index", 0)]["json"] += delta.get("partial_json") or ""
        elif kind == "message_delta":
            stop_reason = (payload.get("delta") or {}).get("stop_reason")
            finish_reason = FINISH.get(stop_reason or "", stop_reason)
            output_tokens = int((payload.get("usage") or {}).get("output_tokens") or output_tokens)
        elif kind == "message_stop":
            yield {
                "text": "",
                "done": True,
                "finish_reason": finish_reason,
                "tool_calls": [_tool_call(t, response, provider) for _, t in sorted(tools.items())],
                "usage": usage({"input_tokens": input_tokens, "output_tokens": output_tokens}),
                "request_id": _http.provider_request_id(response),
                "rate_limit": _http.rate_limits(response),
            }
            return
        elif kind == "error":
            error = payload.get("error") or {}
            status = _ERROR_STATUS.get(str(error.get("type")), 500)
            raise error_for_status(
                status,
                f"{error.get('type')}: {error.get('message')} (mid-stream)",
                provider=provider,
                request_id=_http.provider_request_id(response),
                body=payload,
            )
        # ping and unknown future event types are ignored, as the API asks.
    raise _http.stream_cut(response, provider, "message_stop")


def _tool_call(tool: dict[str, Any], response: requests.Response, provider: str) -> dict[str, Any]:
    try:
        arguments = json.loads(tool["json"]) if tool["json"] else {}
    except ValueError:
        raise _http.malformed(response, provider, "tool input JSON is incomplete", tool["json"]) from None
    return {"id": tool["id"], "name": tool["name"], "arguments": arguments}


class Client(_client.Client):
    """This provider's functions behind the recommended stack (see :mod:`resilient.adapters.client`)."""

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
