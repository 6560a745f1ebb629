"""OpenVINO Model Server: OpenAI-compatible chat and embeddings under ``/v3``, and KServe v2 ``infer``.

``base_url`` is the server root (``OVMS_BASE_URL``, default
``http://localhost:8000``, OVMS's REST port in its docs); the adapter adds
``/v3`` for the OpenAI-compatible API and ``/v2/models/...`` for KServe.
A local server needs no key; one given as ``api_key=`` or ``OVMS_API_KEY``
(an authenticating proxy in front) is sent as a Bearer token. Chat and
embeddings reuse the OpenAI adapter's wire format.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from resilient.errors import NotFoundError

from . import _http
from . import client as _client
from .openai import chat_at, chat_body, embed_at, stream_chat_at

__all__ = ["Client", "chat", "stream_chat", "embed", "infer", "model_ready"]

PROVIDER = "ovms"
DEFAULT_BASE_URL = "http://localhost:8000"
BASE_URL_ENV = ("OVMS_BASE_URL",)
KEY_ENV = ("OVMS_API_KEY",)
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
    **extra: Any,
) -> dict[str, Any]:
    """One ``/v3/chat/completions`` call, as the toolkit's plain dict."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    return chat_at(_base(base_url) + "/v3", body, _key(api_key), PROVIDER, timeout, request_id, session)


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
    """Stream ``/v3/chat/completions``: ``{"text", "done": False}`` chunks, then the final one."""
    body = chat_body(messages, model, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    yield from stream_chat_at(_base(base_url) + "/v3", body, _key(api_key), PROVIDER, timeout, request_id, session)


def embed(
    texts: str | Sequence[str],
    *,
    model: str,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Embeddings from ``/v3/embeddings``: ``{"embeddings", "model", "usage"}`` in input order."""
    body = {"model": model, "input": [texts] if isinstance(texts, str) else list(texts)}
    return embed_at(_base(base_url) + "/v3", body, _key(api_key), PROVIDER, timeout, request_id, session)


def infer(
    model: str,
    inputs: Sequence[dict[str, Any]],
    *,
    version: str | None = None,
    outputs: Sequence[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    inference_id: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """A KServe v2 inference: ``inputs`` are tensors ``{"name", "shape", "datatype", "data"}``.

    Returns ``{"outputs": {name: tensor}, "model", "model_version", "id", "request_id", "raw"}``.
    """
    body = _http.compact(inputs=list(inputs), outputs=list(outputs) if outputs else None, parameters=parameters, id=inference_id)
    response = _http.send(
        "POST",
        f"{_model_url(base_url, model, version)}/infer",
        provider=PROVIDER,
        json_body=body,
        headers=_http.bearer(_key(api_key)),
        timeout=timeout,
        session=session,
        request_id=request_id,
    )
    data = _http.json_of(response, PROVIDER)
    tensors = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(tensors, list) or not all(isinstance(t, dict) and "name" in t and "data" in t for t in tensors):
        raise _http.malformed(response, PROVIDER, "no outputs[].name/data", data)
    return {
        "outputs": {t["name"]: t for t in tensors},
        "model": data.get("model_name"),
        "model_version": data.get("model_version"),
        "id": data.get("id"),
        "request_id": _http.provider_request_id(response),
        "raw": data,
    }


def model_ready(
    model: str,
    *,
    version: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
    session: requests.Session | None = None,
) -> bool:
    """Whether the model is loaded and ready (KServe ``GET /v2/models/{model}/ready``); an unknown model is not."""
    try:
        _http.send(
            "GET",
            f"{_model_url(base_url, model, version)}/ready",
            provider=PROVIDER,
            headers=_http.bearer(_key(api_key)),
            timeout=timeout,
            session=session,
        ).close()
    except NotFoundError:
        return False
    return True


def _model_url(base_url: str | None, model: str, version: str | None) -> str:
    url = f"{_base(base_url)}/v2/models/{model}"
    return f"{url}/versions/{version}" if version else url


def _base(base_url: str | None) -> str:
    return (base_url or _http.setting(BASE_URL_ENV, DEFAULT_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


def _key(api_key: str | None) -> str | None:
    return api_key or _http.setting(KEY_ENV)


class Client(_client.Client):
    """This adapter's functions behind the recommended stack, for an OpenVINO Model Server.

    See :mod:`resilient.adapters.client`; with no key given nor set in ``OVMS_API_KEY``, the client is keyless.
    """

    def __init__(self, api_key: str | Sequence[str] | None = None, base_url: str | None = None, **policy: Any) -> None:
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=base_url, **policy)
