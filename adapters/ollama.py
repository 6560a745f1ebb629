"""Ollama's native API: chat, generate (plain and streamed), embeddings, installed models.

``base_url`` is the server root, read as the official ``ollama`` client
reads ``OLLAMA_HOST`` (``OLLAMA_HOST`` or ``OLLAMA_API_URL``, default
``http://localhost:11434``): a missing scheme is ``http``, a missing host
``127.0.0.1``, a missing port 11434 (``example.com`` →
``http://example.com:11434``, ``:56789`` → ``http://127.0.0.1:56789``); an
explicit scheme, port or path is kept and a trailing ``/api`` dropped. The
adapter adds ``/api/...`` itself. A local server needs no key; when
``api_key=`` or ``OLLAMA_API_KEY`` is given (a proxy, Ollama's cloud) it is
sent as a Bearer token.

Ollama streams newline-delimited JSON and ends every stream with a line
carrying ``done: true`` and the token counts; a stream that ends without it
raises :class:`~resilient.errors.ProviderConnectionError`.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import error_for_status

from . import _http
from . import client as _client

__all__ = ["Client", "chat", "stream_chat", "generate", "stream_generate", "embed", "list_models"]

PROVIDER = "ollama"
DEFAULT_BASE_URL = "http://localhost:11434"
BASE_URL_ENV = ("OLLAMA_HOST", "OLLAMA_API_URL")
KEY_ENV = ("OLLAMA_API_KEY",)
DEFAULT_PORT = 11434
KEY_OPTIONAL = True  # a local server usually takes no key: its Client falls back to a keyless pool
_FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


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
    """One ``/api/chat`` turn as the toolkit's plain dict.

    ``tool_choice`` is accepted for a common signature but Ollama has no
    such parameter: the model decides whether to call one of ``tools``.
    """
    body = _chat_body(messages, model, max_tokens, temperature, system, tools, stop, extra)
    response = _post("/api/chat", {**body, "stream": False}, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise _http.malformed(response, PROVIDER, "no message", data)
    calls = _tool_calls(data["message"], response, data)
    return _http.result(
        response,
        text=_http.expect(data["message"].get("content"), str, response, PROVIDER, "message.content", body=data, absent=""),
        model=data.get("model"),
        finish_reason="tool_calls" if calls else _finish(data),
        tool_calls=calls,
        usage=_usage(data, response),
        raw=data,
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
    """Stream ``/api/chat``: ``{"text", "done": False}`` chunks, then the final one with usage and tool calls."""
    body = _chat_body(messages, model, max_tokens, temperature, system, tools, stop, extra)
    response = _post("/api/chat", {**body, "stream": True}, api_key, base_url, timeout, request_id, session, stream=True)
    yield from _lines(response, "message")


def generate(
    prompt: str,
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | None = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``/api/generate`` completion of a raw ``prompt``: ``{"text", "model", "finish_reason", "usage", ...}``."""
    body = _generate_body(prompt, model, max_tokens, temperature, system, stop, extra)
    response = _post("/api/generate", {**body, "stream": False}, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if not isinstance(data, dict) or not isinstance(data.get("response"), str):
        raise _http.malformed(response, PROVIDER, "no response text", data)
    return _http.result(
        response,
        text=data["response"],
        model=data.get("model"),
        finish_reason=_finish(data),
        tool_calls=[],
        usage=_usage(data, response),
        raw=data,
    )


def stream_generate(
    prompt: str,
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | None = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """Stream ``/api/generate``: the same chunks as :func:`stream_chat`."""
    body = _generate_body(prompt, model, max_tokens, temperature, system, stop, extra)
    response = _post(
        "/api/generate", {**body, "stream": True}, api_key, base_url, timeout, request_id, session, stream=True
    )
    yield from _lines(response, "response")


def embed(
    texts: str | Sequence[str],
    *,
    model: str = "nomic-embed-text",
    api_key: str | None = None,
    base_url: str | None = None,
    dimensions: int | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Embeddings of ``texts`` from ``/api/embed``: ``{"embeddings", "model", "usage", "request_id"}``."""
    body = _http.compact(model=model, input=[texts] if isinstance(texts, str) else list(texts), dimensions=dimensions)
    response = _post("/api/embed", body, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
        raise _http.malformed(response, PROVIDER, "no embeddings list", data)
    tokens = _http.count(data.get("prompt_eval_count"), response, PROVIDER, "prompt_eval_count", body=data)
    return {
        "embeddings": vectors,
        "model": data.get("model"),
        "usage": _http.usage(tokens),
        "request_id": _http.provider_request_id(response),
    }


def list_models(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> list[dict[str, Any]]:
    """The models installed on the server (``/api/tags``): each ``{"name", "size", "modified_at", "details", ...}``."""
    response = _http.send(
        "GET",
        f"{base(base_url)}/api/tags",
        provider=PROVIDER,
        headers=_auth(api_key),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    data = _http.json_of(response, PROVIDER)
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) and "name" in m for m in models):
        raise _http.malformed(response, PROVIDER, "no models[].name", data)
    return models


# --------------------------------------------------------------------------- helpers


def base(base_url: str | None) -> str:
    """The server root: ``base_url``, else ``OLLAMA_HOST``/``OLLAMA_API_URL``, else the local default.

    Completed as ollama-python's ``_parse_host`` does, because that is how
    users write ``OLLAMA_HOST`` (``0.0.0.0``, ``gpu-box``, ``:8080``): taken as
    they are, ``http://gpu-box`` would go to port 80.
    """
    url = (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).strip()
    scheme, _, rest = url.partition("://")
    if not rest:
        scheme, rest = "http", url
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    host = split.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"  # urlsplit drops an IPv6 address's brackets
    port = split.port if split.port is not None else (None if "://" in url else DEFAULT_PORT)
    path = split.path.strip("/")
    path = "" if path == "api" else path.removesuffix("/api")
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "") + (f"/{path}" if path else "")


def _auth(api_key: str | None) -> dict[str, str]:
    return _http.bearer(api_key or _http.setting(KEY_ENV))


def _options(
    max_tokens: int | None, temperature: float | None, stop: str | list[str] | None, extra: dict[str, Any]
) -> dict[str, Any]:
    """Sampling settings go in Ollama's ``options``; the caller's own ``options`` (in ``extra``) win."""
    stops = [stop] if isinstance(stop, str) else stop
    options = {
        **_http.compact(num_predict=max_tokens, temperature=temperature, stop=stops),
        **(extra.pop("options", None) or {}),
    }
    return {"options": options} if options else {}


def _chat_body(
    messages: Sequence[dict[str, Any]],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    tools: list[dict[str, Any]] | None,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    extra = dict(extra)
    all_messages = ([{"role": "system", "content": system}] if system else []) + list(messages)
    options = _options(max_tokens, temperature, stop, extra)
    return {**_http.compact(model=model, messages=all_messages, tools=tools), **options, **extra}


def _generate_body(
    prompt: str,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    extra = dict(extra)
    options = _options(max_tokens, temperature, stop, extra)
    return {**_http.compact(model=model, prompt=prompt, system=system), **options, **extra}


def _post(
    path: str,
    body: dict[str, Any],
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
    *,
    stream: bool = False,
) -> requests.Response:
    return _http.send(
        "POST",
        base(base_url) + path,
        provider=PROVIDER,
        json_body=body,
        headers=_auth(api_key),
        timeout=timeout,
        session=session,
        stream=stream,
        request_id=request_id,
    )


def _lines(response: requests.Response, field: str) -> Iterator[dict[str, Any]]:
    """The NDJSON lines of a chat (text in ``message.content``) or generate (in ``response``) stream as chunks."""
    calls: list[dict[str, Any]] = []
    for line in _http.ndjson(response, PROVIDER):
        if not isinstance(line, dict):
            raise _http.malformed(response, PROVIDER, "stream line is not an object", line)
        if line.get("error"):
            raise error_for_status(
                500, f"error mid-stream: {line['error']}", provider=PROVIDER,
                request_id=_http.provider_request_id(response), body=line,
            )  # fmt: skip
        if "done" not in line:
            raise _http.malformed(response, PROVIDER, "stream line without done", line)
        message = _http.expect(line.get("message"), dict, response, PROVIDER, "message", body=line, absent={})
        calls += _tool_calls(message, response, line)
        raw = message.get("content") if field == "message" else line.get(field)
        text = _http.expect(raw, str, response, PROVIDER, field, body=line, absent="")
        if text:
            yield {"text": text, "done": False}
        if line["done"]:
            yield _http.final_chunk(
                response,
                finish_reason="tool_calls" if calls else _finish(line),
                tool_calls=calls,
                usage=_usage(line, response),
            )
            return
    raise _http.stream_cut(response, PROVIDER, 'a line with "done": true')


def _tool_calls(message: dict[str, Any], response: requests.Response, body: Any) -> list[dict[str, Any]]:
    """Ollama's tool calls (arguments already an object; no ids) in the toolkit's shape."""
    calls = []
    found = _http.expect(message.get("tool_calls"), list, response, PROVIDER, "message.tool_calls", body=body, absent=[])
    for index, call in enumerate(found):
        call = _http.expect(call, dict, response, PROVIDER, "a tool call", body=body)
        function = _http.expect(call.get("function"), dict, response, PROVIDER, "tool_call.function", body=body, absent={})
        arguments = function.get("arguments")
        calls.append(
            {
                "id": call.get("id") or f"call_{index}",
                "name": function.get("name"),
                "arguments": arguments if isinstance(arguments, dict) else {},
            }
        )
    return calls


def _finish(data: dict[str, Any]) -> str | None:
    reason = data.get("done_reason")
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else ("stop" if data.get("done") else None)


def _usage(data: dict[str, Any], response: requests.Response) -> dict[str, int]:
    inp = _http.count(data.get("prompt_eval_count"), response, PROVIDER, "prompt_eval_count", body=data)
    out = _http.count(data.get("eval_count"), response, PROVIDER, "eval_count", body=data)
    return _http.usage(inp, out)


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for a local Ollama server.

    See :mod:`resilient.adapters.client`; with no key given nor set in ``OLLAMA_API_KEY``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
