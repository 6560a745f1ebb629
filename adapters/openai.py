"""OpenAI: Chat Completions (plain and streamed), Embeddings, Images.

Also the dialect of Groq, vLLM, llama.cpp's server, LM Studio and OpenVINO
Model Server; those adapters reuse :func:`chat_at`, :func:`stream_chat_at`
and :func:`embed_at` with their own base URL and credentials.

``base_url`` follows the official SDK: it includes ``/v1``
(``OPENAI_BASE_URL`` in the environment, default ``https://api.openai.com/v1``).

The stream reader knows how each of these servers reports an error after
the 200 went out, so that the error keeps its real status: a chunk whose
``error`` is set (``"error": null`` is a healthy chunk, as in the official
SDK), with the status in ``error.code`` (vLLM, llama.cpp) or
``error.http_status_code`` (TGI's Messages API) or TGI's ``error_type``;
llama.cpp's non-standard ``error:`` SSE field; Groq's ``x_groq.error``
(generation stopped early). Groq's ``x_groq.usage`` stands in for a missing
``usage``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import ProviderError, ServerError, error_for_status

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
#: Text Generation Inference's ``error_type``, for the stream errors that carry no status of their own.
TGI_ERROR_STATUS = {"validation": 422, "overloaded": 429, "generation": 500, "incomplete_generation": 500}


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
    choice = _http.expect(choice, dict, response, provider, "choices[0]", body=data)
    message = _http.expect(message, dict, response, provider, "choices[0].message", body=data)
    calls = _http.expect(message.get("tool_calls"), list, response, provider, "message.tool_calls", body=data, absent=[])
    return _http.result(
        response,
        text=_http.expect(message.get("content"), str, response, provider, "message.content", body=data, absent=""),
        model=data.get("model"),
        finish_reason=_finish(choice.get("finish_reason"), response, provider, data),
        tool_calls=[_tool_call(call, response, provider, data) for call in calls],
        usage=_usage(data.get("usage"), response, provider),
        raw=data,
        request_id=data.get("id"),
    )


def _tool_call(call: Any, response: requests.Response, provider: str, data: Any) -> dict[str, Any]:
    call = _http.expect(call, dict, response, provider, "a tool call", body=data)
    function = _http.expect(call.get("function"), dict, response, provider, "tool_call.function", body=data, absent={})
    return {"id": call.get("id"), "name": function.get("name"), "arguments": _arguments(function.get("arguments"), response, provider)}


def _finish(reason: Any, response: requests.Response, provider: str, data: Any) -> str | None:
    reason = _http.expect(reason, str, response, provider, "finish_reason", body=data, absent="")
    return _FINISH.get(reason, reason) or None


def _arguments(raw: Any, response: requests.Response, provider: str) -> Any:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return json.loads(_http.expect(raw, str, response, provider, "tool call arguments"))
    except ValueError:
        raise _http.malformed(response, provider, "tool call arguments are not JSON", raw) from None


def _usage(usage: Any, response: requests.Response, provider: str) -> dict[str, int]:
    usage = _http.expect(usage, dict, response, provider, "usage", absent={})
    inp, out, total = (
        _http.count(usage.get(name), response, provider, f"usage.{name}", body=usage)
        for name in ("prompt_tokens", "completion_tokens", "total_tokens")
    )
    return _http.usage(inp, out, total)


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
    for event, data in _http.sse_events(response, provider):
        if data.strip() == "[DONE]":
            tool_calls = [
                {"id": c["id"], "name": c["name"], "arguments": _arguments(c["arguments"], response, provider)}
                for _, c in sorted(calls.items())
            ]
            yield _http.final_chunk(
                response,
                finish_reason=finish_reason,
                tool_calls=tool_calls,
                usage=usage or _usage(None, response, provider),
            )
            return
        chunk = _http.expect(_http.parse_json_text(data, response, provider), dict, response, provider, "stream event")
        if event == "error" and "error" not in chunk:
            chunk = {"error": chunk}  # llama.cpp's `error:` field holds the error object itself
        # The official SDK's test: a healthy chunk may carry "error": null.
        if event == "error" or chunk.get("error"):
            raise _stream_error(chunk, response, provider)
        groq = _http.expect(chunk.get("x_groq"), dict, response, provider, "x_groq", body=chunk, absent={})
        if groq.get("error"):
            # Groq stopped generating mid-way (x_groq.error is its reason): a server fault, worth a retry.
            raise ServerError(
                f"error mid-stream: {groq['error']}", status=500, provider=provider,
                request_id=_http.provider_request_id(response), body=chunk,
            )  # fmt: skip
        # Groq reports the usage in x_groq when the top-level field is absent.
        if chunk.get("usage") or groq.get("usage"):
            usage = _usage(chunk.get("usage") or groq.get("usage"), response, provider)
        for choice in _http.expect(chunk.get("choices"), list, response, provider, "choices", body=chunk, absent=[]):
            choice = _http.expect(choice, dict, response, provider, "a choice", body=chunk)
            delta = _http.expect(choice.get("delta"), dict, response, provider, "delta", body=chunk, absent={})
            deltas = _http.expect(delta.get("tool_calls"), list, response, provider, "delta.tool_calls", body=chunk, absent=[])
            for call in deltas:
                _add_tool_call_delta(calls, call, response, provider, chunk)
            if choice.get("finish_reason"):
                finish_reason = _finish(choice["finish_reason"], response, provider, chunk)
            text = _http.expect(delta.get("content"), str, response, provider, "delta.content", body=chunk, absent="")
            if text:
                yield {"text": text, "done": False}
    raise _http.stream_cut(response, provider, "data: [DONE]")


def _add_tool_call_delta(
    calls: dict[int, dict[str, Any]], call: Any, response: requests.Response, provider: str, chunk: Any
) -> None:
    """Fold one streamed tool-call fragment into ``calls``: the id and name come once, the arguments in pieces."""
    call = _http.expect(call, dict, response, provider, "a tool call delta", body=chunk)
    index = _http.count(call.get("index"), response, provider, "tool_call.index", body=chunk)
    function = _http.expect(call.get("function"), dict, response, provider, "tool_call.function", body=chunk, absent={})
    slot = calls.setdefault(index, {"id": None, "name": None, "arguments": ""})
    slot["id"] = call.get("id") or slot["id"]
    slot["name"] = function.get("name") or slot["name"]
    slot["arguments"] += _http.expect(
        function.get("arguments"), str, response, provider, "tool_call.function.arguments", body=chunk, absent=""
    )


def _stream_error(chunk: dict[str, Any], response: requests.Response, provider: str) -> ProviderError:
    """The taxonomy's error for an error sent inside a stream (the HTTP status was a 200 long before).

    The status is the error's ``code`` where it is a number (llama.cpp, vLLM),
    else its ``http_status_code`` (TGI's Messages API), else TGI's top-level
    ``error_type`` (``validation`` is a 422, not a server fault to retry),
    else 500.
    """
    error = chunk.get("error")
    if not isinstance(error, dict):
        error = {"message": str(error)}
    numbers = (error.get("code"), error.get("http_status_code"))
    status = next((n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and 400 <= n <= 599), None)
    if status is None:
        status = TGI_ERROR_STATUS.get(str(chunk.get("error_type")), 500)
    return error_for_status(
        status, f"error mid-stream: {error.get('message')}", provider=provider,
        request_id=_http.provider_request_id(response), body=chunk,
    )  # fmt: skip


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
        "usage": _usage(data.get("usage"), response, provider),
        "request_id": _http.provider_request_id(response),
        "rate_limit": _http.rate_limits(response),
    }


class Client(_client.Client):
    """This provider's functions behind the recommended stack (see :mod:`resilient.adapters.client`)."""

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
