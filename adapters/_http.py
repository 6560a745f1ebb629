"""Shared plumbing of every adapter: session, credentials, errors, stream framing, the result dicts.

Adapters stay thin because everything that is the same for all providers is
here, once: sending a request and turning every failure into the
:mod:`resilient.errors` taxonomy (HTTP status, transport error, malformed
body, stream cut off before its final event), finding credentials in
arguments, the environment or a ``.env`` file, reading SSE and NDJSON
streams, and the one shape of a result and of a stream's final chunk. No
retry or queue logic: that is what the decorators are for.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import requests

from resilient import clock as _clock
from resilient.errors import (
    AuthenticationError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    error_for_status,
    parse_retry_after,
    should_retry,
)
from resilient.keys import read_dotenv
from resilient.request_ids import check_request_id, current_request_id
from resilient.secrets import redact

__all__ = [
    "credential",
    "setting",
    "send",
    "json_of",
    "malformed",
    "expect",
    "count",
    "sse_events",
    "ndjson",
    "provider_request_id",
    "compact",
    "bearer",
    "usage",
    "rate_limits",
    "result",
    "final_chunk",
]

_EXCERPT = 200
_local = threading.local()
_T = TypeVar("_T")


def _session() -> requests.Session:
    """One keep-alive session per thread (``requests.Session`` is not thread-safe to share)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def setting(names: Iterable[str], default: str | None = None) -> str | None:
    """The first of ``names`` set in the environment, else in ``./.env``, else ``default``."""
    names = tuple(names)
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    dotenv = read_dotenv()
    for name in names:
        if dotenv.get(name):
            return dotenv[name]
    return default


def credential(api_key: str | None, env: Iterable[str], provider: str) -> str:
    """``api_key`` if given, else the provider's usual variable; a clear error naming it if none."""
    if api_key:
        return api_key
    env = tuple(env)
    found = setting(env)
    if found:
        return found
    raise AuthenticationError(
        f"no API key: pass api_key= or set {' or '.join(env)} (environment or .env)", provider=provider
    )


def compact(**fields: Any) -> dict[str, Any]:
    """``fields`` without the ones left at ``None`` (optional request parameters)."""
    return {k: v for k, v in fields.items() if v is not None}


def bearer(key: str | None) -> dict[str, str]:
    """The ``Authorization`` header for ``key``, or none when there is no key (local servers)."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def usage(input_tokens: int = 0, output_tokens: int = 0, total_tokens: int | None = None) -> dict[str, int]:
    """The toolkit's usage dict; ``total_tokens`` defaults to the sum when the provider gives none."""
    total = total_tokens if total_tokens else input_tokens + output_tokens
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": total}


def result(
    response: requests.Response,
    *,
    text: str,
    model: Any,
    finish_reason: str | None,
    tool_calls: list[dict[str, Any]],
    usage: dict[str, int],
    raw: Any,
    request_id: Any = None,
) -> dict[str, Any]:
    """The toolkit's result dict for one answer; ``request_id`` is the body's id, for when no header carries one."""
    return {
        "text": text,
        "model": model,
        "finish_reason": finish_reason,
        "tool_calls": tool_calls,
        "usage": usage,
        "request_id": provider_request_id(response) or request_id,
        "rate_limit": rate_limits(response),
        "raw": raw,
    }


def final_chunk(
    response: requests.Response, *, finish_reason: str | None, tool_calls: list[dict[str, Any]], usage: dict[str, int]
) -> dict[str, Any]:
    """The last chunk of every stream: no text, what the answer came to, and the keys of :func:`result` but ``raw``."""
    return {
        "text": "",
        "done": True,
        "finish_reason": finish_reason,
        "tool_calls": tool_calls,
        "usage": usage,
        "request_id": provider_request_id(response),
        "rate_limit": rate_limits(response),
    }


def send(
    method: str,
    url: str,
    *,
    provider: str,
    json_body: Any = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    session: requests.Session | None = None,
    stream: bool = False,
    request_id: str | None = None,
) -> requests.Response:
    """Send one request; return the response if it is a success, raise the taxonomy otherwise."""
    all_headers = dict(headers or {})
    rid = check_request_id(request_id) if request_id is not None else current_request_id()
    if rid:
        all_headers.setdefault("X-Request-ID", rid)
    try:
        response = (session or _session()).request(
            method, url, json=json_body, data=data, headers=all_headers, params=params, timeout=timeout, stream=stream
        )
    except requests.Timeout as exc:
        raise ProviderTimeout(f"no answer within {timeout:g}s", provider=provider) from exc
    except requests.ConnectionError as exc:
        raise ProviderConnectionError(f"cannot reach {_host(url)}: {type(exc).__name__}", provider=provider) from exc
    if response.status_code >= 400:
        try:
            raise error_from(response, provider)
        finally:
            response.close()
    return response


def error_from(response: requests.Response, provider: str) -> ProviderError:
    """The taxonomy's error for an HTTP error response, with the provider's own message."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    message = _error_message(body) or _excerpt(response.text) or response.reason or ""
    return error_for_status(
        response.status_code,
        message,
        provider=provider,
        request_id=provider_request_id(response),
        retry_after=parse_retry_after(response.headers),
        body=body,
        should_retry=should_retry(response.headers),
    )


def _error_message(body: Any) -> str | None:
    """The message in any of the providers' error shapes.

    OpenAI/Groq ``{"error": {"message"}}``, Anthropic ``{"type": "error", "error": {"type", "message"}}``,
    Gemini ``{"error": {"code", "message", "status"}}``, Ollama/TGI ``{"error": "..."}``,
    FastAPI-style ``{"detail": ...}``, or a bare ``{"message"}``.
    """
    if isinstance(body, list) and body:
        body = body[0]  # Gemini streams errors as a one-element array
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type") or error.get("status")
        if message:
            return f"{kind}: {message}" if isinstance(kind, str) and kind else str(message)
    for key in ("message", "detail"):
        if body.get(key):
            return str(body[key])
    return None


def provider_request_id(response: requests.Response) -> str | None:
    """The provider's id for this request, from the headers providers use."""
    for name in ("request-id", "x-request-id", "x-amzn-requestid", "x-goog-request-id", "cf-ray"):
        value = response.headers.get(name)
        if value:
            return value
    return None


# (result field, header names) for the rate-limit state providers report on every answer:
# OpenAI/Groq ``x-ratelimit-*`` (reset as a duration, "6m0s"), Anthropic
# ``anthropic-ratelimit-*`` (reset as an RFC 3339 time).
_RATE_HEADERS = {
    "limit_requests": ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"),
    "remaining_requests": ("x-ratelimit-remaining-requests", "anthropic-ratelimit-requests-remaining"),
    "reset_requests": ("x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset"),
    "limit_tokens": ("x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
    "remaining_tokens": ("x-ratelimit-remaining-tokens", "anthropic-ratelimit-tokens-remaining"),
    "reset_tokens": ("x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset"),
}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")


def rate_limits(response: requests.Response, now: float | None = None) -> dict[str, float] | None:
    """The provider's rate-limit state from the answer's headers, or ``None`` if it sends none.

    Counts as numbers; resets as seconds from now until the limit is whole
    again. ``now`` (epoch seconds, default the toolkit clock's wall time)
    measures Anthropic's reset timestamps. This is what lets a key pool
    pace itself before the provider answers 429.
    """
    found: dict[str, float] = {}
    for field, names in _RATE_HEADERS.items():
        raw = next((response.headers[n] for n in names if n in response.headers), None)
        if raw is None:
            continue
        value = _reset_seconds(raw, now) if field.startswith("reset") else _number(raw)
        if value is not None:
            found[field] = value
    return found or None


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _reset_seconds(raw: str, now: float | None) -> float | None:
    raw = raw.strip()
    match = _DURATION.fullmatch(raw)
    if match and any(match.groups()):
        hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds + millis / 1000
    try:
        when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    reference = _clock.current().time() if now is None else now
    # Anthropic gives the reset to the whole second, cut off: the limit is whole
    # again somewhere within that second. Reading it as the second's end errs by
    # a wait of under a second; reading it as the start paces a key too briefly
    # and collects the 429 that pacing is meant to avoid.
    granularity = 0.0 if "." in raw else 1.0
    return max(0.0, when.timestamp() + granularity - reference)


def json_of(response: requests.Response, provider: str) -> Any:
    """The JSON body of a success response, or a :class:`ProviderError` with the status and an excerpt."""
    try:
        return response.json()
    except ValueError:
        raise malformed(response, provider, "response is not JSON") from None


def malformed(response: requests.Response, provider: str, what: str, body: Any = None) -> ProviderError:
    """A :class:`ProviderError` for a body that is not what the protocol promises."""
    if body is None:
        try:
            text = response.text
        except Exception:  # noqa: BLE001 - the body itself may be unreadable; the status still matters
            text = ""
    else:
        text = body if isinstance(body, str) else json.dumps(body)
    return ProviderError(
        f"malformed response: {what}: {_excerpt(text)!r}",
        status=response.status_code,
        provider=provider,
        request_id=provider_request_id(response),
        body=text if body is None or isinstance(body, str) else text[: _EXCERPT * 2],
    )


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number"}


def expect(
    value: Any, kind: type[_T], response: requests.Response, provider: str, what: str, *,
    body: Any = None, absent: _T | None = None,
) -> _T:  # fmt: skip
    """``value`` if it is a ``kind`` (``dict``, ``list``, ``str``), else a malformed-response error.

    The one accessor for the shape of a provider's JSON: a body can be valid
    JSON and still hold a string where an object belongs, and reading it
    blindly raises ``AttributeError``/``TypeError`` that no retry policy or
    caller can classify. ``absent`` is what an optional field left out or
    ``null`` means (``{}``, ``[]``, ``""``); without it ``null`` is malformed
    too. ``body`` (default ``value``) is what the error's excerpt shows.
    """
    if value is None and absent is not None:
        return absent
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise malformed(response, provider, f"{what} is not {_KIND_NAMES.get(kind, kind.__name__)}", value if body is None else body)


def count(value: Any, response: requests.Response, provider: str, what: str, *, body: Any = None) -> int:
    """A token count: a whole number, ``0`` when absent; anything else is a malformed response, not a ``ValueError``."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return expect(value, int, response, provider, what, body=body)


def _excerpt(text: str) -> str:
    """One line of at most ``_EXCERPT`` characters, keys masked.

    Redacted before it is cut, as :class:`~resilient.errors.ResilientError`
    does: a key cut in half no longer matches the credential patterns, and its
    first characters would survive into the message.
    """
    text = redact(" ".join(str(text).split()))
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


# --------------------------------------------------------------------------- streams


def _lines(response: requests.Response, provider: str) -> Iterator[str]:
    """Decoded lines of a streamed body; a connection dropped mid-way becomes a ProviderConnectionError."""
    try:
        for raw in response.iter_lines(decode_unicode=False):
            yield raw.decode("utf-8", errors="replace")
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
        raise ProviderConnectionError(
            "stream cut off mid-way", provider=provider, request_id=provider_request_id(response)
        ) from exc
    except requests.Timeout as exc:
        raise ProviderTimeout("stream stalled", provider=provider, request_id=provider_request_id(response)) from exc
    finally:
        response.close()


def sse_events(response: requests.Response, provider: str) -> Iterator[tuple[str | None, str]]:
    """``(event name, data)`` for each Server-Sent Event; comments and ``id:``/``retry:`` fields are skipped.

    Two departures from the SSE format are read too, because that is where
    servers put their errors mid-stream. Gemini writes an error as a bare
    (pretty-printed) JSON body with no ``data:`` prefix: lines from one that
    starts with ``{`` or ``[`` are collected until the brackets balance and
    yielded as data with no event name, as google-genai's reader does.
    llama.cpp's server writes ``error: {json}``, a field of its own: it comes
    out as an event named ``error``.
    """
    event: str | None = None
    data: list[str] = []
    raw = _RawJson()
    for line in _lines(response, provider):
        bare_json = not raw.lines and line.lstrip().startswith(("{", "["))
        if bare_json and data:  # no blank line before it: the event before it is complete all the same
            yield event, "\n".join(data)
            event, data = None, []
        if raw.lines or bare_json:
            if raw.add(line):
                yield None, raw.flush()
        elif not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "error":
                event = "error"
                data.append(value)
    if raw.lines:
        yield None, raw.flush()  # never balanced: the caller's JSON parsing says it is malformed
    if data:
        yield event, "\n".join(data)


class _RawJson:
    """Lines of a JSON body sent outside any SSE field, until its brackets balance (ignoring those in strings)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._depth = 0
        self._in_string = self._escaped = False

    def add(self, line: str) -> bool:
        """Take one more line; whether the body is now complete."""
        self.lines.append(line)
        for char in line:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
        return self._depth <= 0

    def flush(self) -> str:
        text = "\n".join(self.lines)
        self.lines, self._depth, self._in_string, self._escaped = [], 0, False, False
        return text


def ndjson(response: requests.Response, provider: str) -> Iterator[Any]:
    """Each JSON value of a newline-delimited JSON stream."""
    for line in _lines(response, provider):
        if line.strip():
            yield parse_json_text(line, response, provider)


def parse_json_text(text: str, response: requests.Response, provider: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise malformed(response, provider, "stream event is not JSON", text) from None


def stream_cut(response: requests.Response, provider: str, expected: str) -> ProviderConnectionError:
    """The error for a stream that ended without its final event (never a quiet, partial success)."""
    return ProviderConnectionError(
        f"stream ended before {expected}", provider=provider, request_id=provider_request_id(response)
    )
