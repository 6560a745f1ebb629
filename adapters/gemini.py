"""Google Gemini API (Generative Language): chat, streamed chat, tools, embeddings, images.

``base_url`` follows the official ``google-genai`` client: the server root
(``GEMINI_BASE_URL``, default ``https://generativelanguage.googleapis.com``);
the adapter adds ``/v1beta/models/{model}:...`` itself. The key comes from
``api_key=``, else ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``, and is sent as
``x-goog-api-key``.

Messages are OpenAI-shaped and translated to Gemini's ``contents``: system
messages (and ``system=``) become ``systemInstruction``; ``assistant`` turns
become role ``model``; consecutive turns of one role are merged; image parts
(``image_url`` with a ``data:`` URL) become ``inlineData``, other URLs
``fileData``; assistant ``tool_calls`` become ``functionCall`` parts and
``tool`` messages ``functionResponse`` parts in a user turn. OpenAI-style
``tools``/``tool_choice`` become ``functionDeclarations``/``toolConfig``.
These rules are :mod:`resilient.adapters.translate`'s, shared with the
registry and the gateway.

A 429's retry hint is read from the ``Retry-After`` header, else from the
``RetryInfo`` detail (``retryDelay``) where Google puts it. An error that
arrives inside a stream (Google writes it as a bare JSON body, without
``data:``) raises the taxonomy's error for its ``code`` with that hint too,
not a cut-stream error that would hide a 400 or a 429's wait.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import InvalidRequestError, ProviderError, RateLimitError, error_for_status

from . import _http, translate
from . import client as _client

__all__ = ["Client", "chat", "stream_chat", "embed", "process_image", "request_body", "sniff_mime_type"]

PROVIDER = "gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
BASE_URL_ENV = ("GEMINI_BASE_URL",)
DEFAULT_MODEL = "gemini-2.0-flash"
DEFAULT_EMBEDDING_MODEL = "text-embedding-004"

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "OTHER": "stop",
}


def chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str = DEFAULT_MODEL,
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
    """One ``generateContent`` call for OpenAI-style ``messages``, as the toolkit's plain dict."""
    body = request_body(messages, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    response = _post(model, "generateContent", body, api_key, base_url, timeout, request_id, session)
    return parse_response(_http.json_of(response, PROVIDER), response)


def stream_chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str = DEFAULT_MODEL,
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
    """Stream ``streamGenerateContent?alt=sse``: text chunks, then a final one with usage and tool calls.

    Gemini has no end-of-stream marker: the last event carries a
    ``finishReason``; a stream that ends without one raises
    :class:`~resilient.errors.ProviderConnectionError`.
    """
    body = request_body(messages, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    response = _post(
        model, "streamGenerateContent", body, api_key, base_url, timeout, request_id, session, stream=True
    )
    yield from _events(response)


def process_image(
    image_bytes: bytes,
    prompt: str,
    *,
    model: str = DEFAULT_MODEL,
    mime_type: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Ask ``prompt`` about an image sent inline (base64 ``inlineData``); same result dict as :func:`chat`.

    ``mime_type`` is guessed from the image's first bytes (PNG, JPEG, GIF,
    WebP) when not given.
    """
    data = base64.b64encode(image_bytes).decode("ascii")
    image = {"inlineData": {"mimeType": mime_type or sniff_mime_type(image_bytes), "data": data}}
    body = request_body([{"role": "user", "content": prompt}], max_tokens, temperature, system, None, None, None, extra)
    body["contents"][0]["parts"].insert(0, image)
    response = _post(model, "generateContent", body, api_key, base_url, timeout, request_id, session)
    return parse_response(_http.json_of(response, PROVIDER), response)


def embed(
    texts: str | Sequence[str],
    *,
    model: str = DEFAULT_EMBEDDING_MODEL,
    api_key: str | None = None,
    base_url: str | None = None,
    dimensions: int | None = None,
    task_type: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Embeddings of ``texts`` (``batchEmbedContents``, one request): ``{"embeddings", "model", "usage"}``.

    Gemini reports no token usage for embeddings; ``usage`` is zeros.
    """
    items = [texts] if isinstance(texts, str) else list(texts)
    name = _model_name(model)
    requests_ = [
        _http.compact(
            model=f"models/{name}", content={"parts": [{"text": t}]}, outputDimensionality=dimensions, taskType=task_type
        )
        for t in items
    ]
    response = _post(name, "batchEmbedContents", {"requests": requests_}, api_key, base_url, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    found = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(found, list) or not all(isinstance(e, dict) and isinstance(e.get("values"), list) for e in found):
        raise _http.malformed(response, PROVIDER, "no embeddings[].values", data)
    return {
        "embeddings": [e["values"] for e in found],
        "model": name,
        "usage": _http.usage(),
        "request_id": _http.provider_request_id(response),
    }


# --------------------------------------------------------------------------- OpenAI → Gemini


def request_body(
    messages: Sequence[dict[str, Any]],
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The ``generateContent`` body for OpenAI-style arguments; ``extra`` is merged in as Gemini fields.

    The translation is :func:`resilient.adapters.translate.openai_request_to_gemini`'s
    (one set of rules for the adapter and the registry): roles ``user``/``model``,
    ``systemInstruction``, tools as ``functionDeclarations`` with their JSON
    Schema in ``parametersJsonSchema``. Tools that are not OpenAI functions are
    taken to be Gemini tools already (``{"googleSearch": {}}``, ...) and sent as
    they are; ``system`` comes before the messages' own system turns.
    """
    functions = [t for t in tools or [] if t.get("type") == "function"]
    native = [t for t in tools or [] if t.get("type") != "function"]
    request = _http.compact(
        messages=list(messages), max_tokens=max_tokens, temperature=temperature, stop=stop,
        tools=functions or None, tool_choice=tool_choice,
    )  # fmt: skip
    body = translate.openai_request_to_gemini(request)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}, *body.get("systemInstruction", {}).get("parts", [])]}
    if native:
        body["tools"] = [*body.get("tools", []), *native]
    extra = dict(extra)
    config = {**body.get("generationConfig", {}), **(extra.pop("generationConfig", None) or {})}
    if config:
        body["generationConfig"] = config
    return {**body, **extra}


def sniff_mime_type(data: bytes) -> str:
    """The image type from its magic bytes; ``image/jpeg`` when unknown (Gemini's most common input)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


# --------------------------------------------------------------------------- transport and parsing


def _model_name(model: str) -> str:
    return model.removeprefix("models/")


def _post(
    model: str,
    method: str,
    body: dict[str, Any],
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
    *,
    stream: bool = False,
) -> requests.Response:
    base = (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    key = _http.credential(api_key, KEY_ENV, PROVIDER)
    try:
        return _http.send(
            "POST",
            f"{base}/{API_VERSION}/models/{_model_name(model)}:{method}",
            provider=PROVIDER,
            json_body=body,
            headers={"x-goog-api-key": key},
            params={"alt": "sse"} if stream else None,
            timeout=timeout,
            session=session,
            stream=stream,
            request_id=request_id,
        )
    except RateLimitError as exc:
        if exc.retry_after is None:
            exc.retry_after = translate.gemini_retry_delay(exc.body)
        raise
    except InvalidRequestError as exc:
        error = translate.gemini_key_rejected(exc)
        if error is exc:
            raise
        raise error from exc


def parse_response(data: Any, response: requests.Response) -> dict[str, Any]:
    """A ``GenerateContentResponse`` as the toolkit's result dict."""
    if not isinstance(data, dict):
        raise _http.malformed(response, PROVIDER, "response is not an object", data)
    candidates = _http.expect(data.get("candidates"), list, response, PROVIDER, "candidates", body=data, absent=[])
    if not candidates:
        blocked = _block_reason(data, response)
        if not blocked:
            raise _http.malformed(response, PROVIDER, "no candidates", data)
        text, calls, finish = "", [], "content_filter"  # type: tuple[str, list[dict[str, Any]], str | None]
    else:
        candidate = candidates[0]
        if not isinstance(candidate, dict):
            raise _http.malformed(response, PROVIDER, "candidate is not an object", data)
        text, calls = _content(candidate, response)
        finish = _finish(candidate.get("finishReason"), calls)
    return _http.result(
        response,
        text=text,
        model=data.get("modelVersion"),
        finish_reason=finish,
        tool_calls=calls,
        usage=_usage(data.get("usageMetadata"), response),
        raw=data,
        request_id=data.get("responseId"),
    )


def _content(candidate: dict[str, Any], response: requests.Response) -> tuple[str, list[dict[str, Any]]]:
    content = _http.expect(candidate.get("content"), dict, response, PROVIDER, "content", body=candidate, absent={})
    parts = _http.expect(content.get("parts"), list, response, PROVIDER, "content.parts", body=candidate, absent=[])
    text = "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )
    calls = [
        {"id": call.get("id") or f"call_{i}", "name": call.get("name"), "arguments": call.get("args") or {}}
        for i, call in enumerate(_function_calls(parts))
    ]
    return text, calls


def _function_calls(parts: list[Any]) -> list[dict[str, Any]]:
    return [p["functionCall"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)]


def _finish(reason: Any, calls: list[dict[str, Any]]) -> str | None:
    if not isinstance(reason, str):
        return None
    if calls and reason == "STOP":
        return "tool_calls"
    return FINISH.get(reason, reason.lower())


def _usage(raw: Any, response: requests.Response) -> dict[str, int]:
    raw = _http.expect(raw, dict, response, PROVIDER, "usageMetadata", absent={})
    inp, candidates, thoughts, total = (
        _http.count(raw.get(name), response, PROVIDER, f"usageMetadata.{name}", body=raw)
        for name in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount")
    )
    return _http.usage(inp, candidates + thoughts, total)


def _block_reason(data: dict[str, Any], response: requests.Response) -> Any:
    feedback = _http.expect(data.get("promptFeedback"), dict, response, PROVIDER, "promptFeedback", body=data, absent={})
    return feedback.get("blockReason")


def _events(response: requests.Response) -> Iterator[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    usage = _usage(None, response)
    for _, data in _http.sse_events(response, PROVIDER):
        chunk = _http.parse_json_text(data, response, PROVIDER)
        if isinstance(chunk, list) and chunk:
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            raise _http.malformed(response, PROVIDER, "stream event is not an object", data)
        if chunk.get("error"):
            raise _stream_error(chunk, response)
        if chunk.get("usageMetadata"):
            usage = _usage(chunk["usageMetadata"], response)
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
            if _block_reason(chunk, response):
                yield _http.final_chunk(response, finish_reason="content_filter", tool_calls=calls, usage=usage)
                return
            raise _http.malformed(response, PROVIDER, "stream event without candidates", chunk)
        text, new_calls = _content(candidates[0], response)
        calls += new_calls
        if text:
            yield {"text": text, "done": False}
        if candidates[0].get("finishReason"):
            finish = _finish(candidates[0]["finishReason"], calls)
            yield _http.final_chunk(response, finish_reason=finish, tool_calls=calls, usage=usage)
            return
    raise _http.stream_cut(response, PROVIDER, "an event with a finishReason")


def _stream_error(chunk: dict[str, Any], response: requests.Response) -> ProviderError:
    """The taxonomy's error for an error inside a stream: its ``code`` (else its ``status`` name's) and ``RetryInfo`` delay."""
    error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or not 400 <= code <= 599:
        code = translate.GEMINI_ERROR_STATUS.get(str(error.get("status")), 500)
    return error_for_status(
        code,
        f"{error.get('status') or 'error'}: {error.get('message')} (mid-stream)",
        provider=PROVIDER,
        request_id=_http.provider_request_id(response),
        retry_after=translate.gemini_retry_delay(chunk),
        body=chunk,
    )


class Client(_client.Client):
    """This provider's functions behind the recommended stack (see :mod:`resilient.adapters.client`)."""

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
