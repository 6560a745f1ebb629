"""Anthropic Messages API: chat, streamed chat (every event type), tools.

``base_url`` follows the official SDK: the server root, without ``/v1``
(``ANTHROPIC_BASE_URL``, default ``https://api.anthropic.com``). The key
comes from ``api_key=`` or ``ANTHROPIC_API_KEY`` and is sent as
``x-api-key`` with ``anthropic-version: 2023-06-01``.

Messages are Anthropic-shaped (``{"role": "user"|"assistant", "content":
str | blocks}``); system messages found in the list are pulled into the
``system`` parameter, as the API requires. ``max_tokens`` is required by the
API; it defaults to 4096 here.

Usage counts every input token the request was billed for: Anthropic's
``input_tokens`` leaves out the prompt-cache reads and writes, so they are
added in (as OpenAI's ``prompt_tokens`` includes cached tokens), and a
request that touched the cache also reports ``cache_read_input_tokens`` and
``cache_creation_input_tokens`` on their own, because they are priced
differently. A stream's ``message_delta`` usage is cumulative: the largest
value seen of each count is kept.

An error inside a stream has no HTTP status of its own: its type gives one
(:data:`resilient.adapters.translate.ANTHROPIC_ERROR_STATUS`), so that
``billing_error`` is a 402 that is not retried, ``timeout_error`` a 504 that is.
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
_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


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
    texts = [b.get("text") for b in data["content"] if isinstance(b, dict) and b.get("type") == "text"]
    text = "".join(_http.expect(t, str, response, PROVIDER, "a text block's text", body=data, absent="") for t in texts)
    stop_reason = _http.expect(data.get("stop_reason"), str, response, PROVIDER, "stop_reason", body=data, absent="")
    tool_calls = [
        {"id": b.get("id"), "name": b.get("name"), "arguments": b.get("input") or {}}
        for b in data["content"]
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]
    return _http.result(
        response,
        text=text,
        model=data.get("model"),
        finish_reason=FINISH.get(stop_reason, stop_reason) or None,
        tool_calls=tool_calls,
        usage=usage(data.get("usage"), response),
        raw=data,
        request_id=data.get("id"),
    )


def usage(raw: Any, response: requests.Response, provider: str = PROVIDER) -> dict[str, int]:
    """The toolkit's usage for Anthropic's: cache reads and writes counted as input, and also shown on their own."""
    counts = _counts(raw, response, provider)
    cache_write, cache_read = counts["cache_creation_input_tokens"], counts["cache_read_input_tokens"]
    result = _http.usage(counts["input_tokens"] + cache_write + cache_read, counts["output_tokens"])
    if cache_write or cache_read:
        result.update(cache_creation_input_tokens=cache_write, cache_read_input_tokens=cache_read)
    return result


def _counts(raw: Any, response: requests.Response, provider: str) -> dict[str, int]:
    raw = _http.expect(raw, dict, response, provider, "usage", absent={})
    return {name: _http.count(raw.get(name), response, provider, f"usage.{name}", body=raw) for name in _USAGE_FIELDS}


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
    counts = dict.fromkeys(_USAGE_FIELDS, 0)
    finish_reason: str | None = None
    tools: dict[int, dict[str, Any]] = {}
    for event, payload in events:
        payload = _http.expect(payload, dict, response, provider, "stream event")
        kind = payload.get("type", event)
        if kind == "message_start":
            message = _http.expect(payload.get("message"), dict, response, provider, "message", body=payload, absent={})
            _keep_largest(counts, message.get("usage"), response, provider)
        elif kind == "content_block_start":
            block = _http.expect(payload.get("content_block"), dict, response, provider, "content_block", body=payload, absent={})
            if block.get("type") == "tool_use":
                tools[_index(payload, response, provider)] = {"id": block.get("id"), "name": block.get("name"), "json": ""}
        elif kind == "content_block_delta":
            delta = _http.expect(payload.get("delta"), dict, response, provider, "delta", body=payload, absent={})
            if delta.get("type") == "text_delta":
                text = _http.expect(delta.get("text"), str, response, provider, "delta.text", body=payload, absent="")
                if text:
                    yield {"text": text, "done": False}
            elif delta.get("type") == "input_json_delta":
                piece = _http.expect(delta.get("partial_json"), str, response, provider, "partial_json", body=payload, absent="")
                tools.setdefault(_index(payload, response, provider), {"id": None, "name": None, "json": ""})["json"] += piece
        elif kind == "message_delta":
            delta = _http.expect(payload.get("delta"), dict, response, provider, "delta", body=payload, absent={})
            stop_reason = _http.expect(delta.get("stop_reason"), str, response, provider, "stop_reason", body=payload, absent="")
            finish_reason = FINISH.get(stop_reason, stop_reason) or None
            # Cumulative counts: the latest is the largest, and a count it leaves out keeps its value.
            _keep_largest(counts, payload.get("usage"), response, provider)
        elif kind == "message_stop":
            yield _http.final_chunk(
                response,
                finish_reason=finish_reason,
                tool_calls=[_tool_call(t, response, provider) for _, t in sorted(tools.items())],
                usage=usage(counts, response, provider),
            )
            return
        elif kind == "error":
            error = _http.expect(payload.get("error"), dict, response, provider, "error", body=payload, absent={})
            status = translate.ANTHROPIC_ERROR_STATUS.get(str(error.get("type")), 500)
            raise error_for_status(
                status,
                f"{error.get('type')}: {error.get('message')} (mid-stream)",
                provider=provider,
                request_id=_http.provider_request_id(response),
                body=payload,
            )
        # ping and unknown future event types are ignored, as the API asks.
    raise _http.stream_cut(response, provider, "message_stop")


def _keep_largest(counts: dict[str, int], raw: Any, response: requests.Response, provider: str) -> None:
    for name, value in _counts(raw, response, provider).items():
        counts[name] = max(counts[name], value)


def _index(payload: dict[str, Any], response: requests.Response, provider: str) -> int:
    return _http.count(payload.get("index"), response, provider, "index", body=payload)


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
