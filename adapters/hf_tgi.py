"""Hugging Face Text Generation Inference: ``/generate``, ``/generate_stream`` and the ``/v1`` chat API.

``base_url`` is the server root, as ``huggingface_hub.InferenceClient(model=url)``
takes it (``TGI_BASE_URL``, default ``http://localhost:8080``, TGI's port in
its docs); the adapter adds ``/generate``, ``/generate_stream`` or
``/v1/chat/completions`` itself. A local server needs no token; one given as
``api_key=`` or found in ``HF_API_TOKEN`` / ``HF_TOKEN`` (Inference
Endpoints) is sent as a Bearer token. Chat reuses the OpenAI adapter's wire
format on TGI's Messages API.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import error_for_status

from . import _http
from . import client as _client
from .openai import TGI_ERROR_STATUS, chat_at, chat_body, stream_chat_at

__all__ = ["Client", "generate_text", "stream_generate_text", "chat", "stream_chat"]

PROVIDER = "hf_tgi"
DEFAULT_BASE_URL = "http://localhost:8080"
BASE_URL_ENV = ("TGI_BASE_URL",)
KEY_ENV = ("HF_API_TOKEN", "HF_TOKEN")
KEY_OPTIONAL = True  # a local server usually takes no key: its Client falls back to a keyless pool
MODEL = "tgi"  # TGI serves one model; its Messages API accepts any name

_FINISH = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def generate_text(
    prompt: str,
    *,
    parameters: dict[str, Any] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Complete ``prompt`` (``POST /generate``); ``parameters`` are TGI's (``max_new_tokens``, ``stop``, ...).

    ``details`` is asked for unless ``parameters`` say otherwise, for the
    finish reason and the generated token count. TGI does not report the
    prompt's tokens: ``usage.input_tokens`` is 0.
    """
    response = _post("/generate", prompt, parameters, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if isinstance(data, list) and data:
        data = data[0]  # the compatibility route's shape
    if not isinstance(data, dict) or not isinstance(data.get("generated_text"), str):
        raise _http.malformed(response, PROVIDER, "no generated_text", data)
    details = _http.expect(data.get("details"), dict, response, PROVIDER, "details", body=data, absent={})
    return _http.result(
        response,
        text=data["generated_text"],
        model=None,
        finish_reason=_finish(details),
        tool_calls=[],
        usage=_usage(details, response),
        raw=data,
    )


def stream_generate_text(
    prompt: str,
    *,
    parameters: dict[str, Any] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream ``/generate_stream``: a chunk per token, then the final one (its event carries ``details``).

    A stream that ends before the event with ``generated_text`` raises
    :class:`~resilient.errors.ProviderConnectionError`; an error event raises
    the taxonomy's error for its ``error_type``.
    """
    response = _post("/generate_stream", prompt, parameters, api_key, base_url, timeout, request_id, session, stream=True)
    for _, data in _http.sse_events(response, PROVIDER):
        event = _http.parse_json_text(data, response, PROVIDER)
        if not isinstance(event, dict):
            raise _http.malformed(response, PROVIDER, "stream event is not an object", data)
        if event.get("error"):
            raise error_for_status(
                TGI_ERROR_STATUS.get(str(event.get("error_type")), 500),
                f"{event.get('error_type') or 'error'}: {event['error']} (mid-stream)",
                provider=PROVIDER,
                request_id=_http.provider_request_id(response),
                body=event,
            )
        token = event.get("token")
        if not isinstance(token, dict):
            raise _http.malformed(response, PROVIDER, "stream event without token", event)
        text = _http.expect(token.get("text"), str, response, PROVIDER, "token.text", body=event, absent="")
        if text and not token.get("special"):
            yield {"text": text, "done": False}
        if event.get("generated_text") is not None:
            details = _http.expect(event.get("details"), dict, response, PROVIDER, "details", body=event, absent={})
            usage = _usage(details, response)
            yield _http.final_chunk(response, finish_reason=_finish(details), tool_calls=[], usage=usage)
            return
    raise _http.stream_cut(response, PROVIDER, "the event with generated_text")


def chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str = MODEL,
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
    """One chat completion on TGI's Messages API (``/v1/chat/completions``)."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    return chat_at(_base(base_url) + "/v1", body, _key(api_key), PROVIDER, timeout, request_id, session)


def stream_chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str = MODEL,
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
    """Stream a chat completion on TGI's Messages API."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    yield from stream_chat_at(_base(base_url) + "/v1", body, _key(api_key), PROVIDER, timeout, request_id, session)


def _post(
    path: str,
    prompt: str,
    parameters: dict[str, Any] | None,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
    *,
    stream: bool = False,
) -> requests.Response:
    key = _key(api_key)
    return _http.send(
        "POST",
        _base(base_url) + path,
        provider=PROVIDER,
        json_body={"inputs": prompt, "parameters": {"details": True, **(parameters or {})}},
        headers=_http.bearer(key),
        timeout=timeout,
        session=session,
        stream=stream,
        request_id=request_id,
    )


def _finish(details: dict[str, Any]) -> str | None:
    reason = details.get("finish_reason")
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else None


def _usage(details: dict[str, Any], response: requests.Response) -> dict[str, int]:
    out = _http.count(details.get("generated_tokens"), response, PROVIDER, "details.generated_tokens", body=details)
    return _http.usage(0, out)


def _base(base_url: str | None) -> str:
    return (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


def _key(api_key: str | None) -> str | None:
    return api_key or _http.setting(KEY_ENV)


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for a Text Generation Inference server.

    See :mod:`resilient.adapters.client`; with no key given nor set in ``HF_API_TOKEN`` / ``HF_TOKEN``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
