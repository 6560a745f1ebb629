"""The providers the emulator speaks, one module per protocol family.

A :class:`Protocol` knows how its provider names itself, where the API key
travels, what its error bodies and rate-limit headers look like, and which
routes it serves. The server knows nothing provider-specific beyond this
interface.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from resilient.clock import Clock
from ..exchange import JsonReply, Reply, Request

__all__ = ["Protocol", "Route", "Quota", "all_routes", "format_seconds", "utc_timestamp"]

Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Quota:
    """The truth about a rate-limit bucket at the moment of a request, for the provider's headers."""

    requests_limit: int
    requests_remaining: int
    requests_reset: float  # seconds until the request bucket is full again
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    retry_after: float | None = None  # set on a 429: seconds until the next request would pass


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    protocol: Protocol


class Protocol:
    """Base of every provider: Bearer auth, no rate-limit headers; subclasses override what differs."""

    name: ClassVar[str]
    #: Header carrying the request id on every answer.
    request_id_header: ClassVar[str] = "x-request-id"
    request_id_prefix: ClassVar[str] = "req_"
    #: Whether the provider sends ``retry-after-ms`` next to ``retry-after``.
    sends_retry_after_ms: ClassVar[bool] = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def api_key(self, request: Request) -> str | None:
        return request.bearer_token()

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        raise NotImplementedError

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes | None:
        """An error event sent inside an open stream, or None if the provider has no such thing.

        ``retry_after`` is for providers that put a retry hint inside the error
        itself (the HTTP headers went out with the stream's 200).
        """
        return None

    def rate_limit_headers(self, quota: Quota) -> dict[str, str]:
        return {}

    def retry_headers(self, retry_after: float) -> dict[str, str]:
        headers = {"retry-after": format_seconds(retry_after)}
        if self.sends_retry_after_ms:
            headers["retry-after-ms"] = str(round(retry_after * 1000))
        return headers

    def route(self, method: str, pattern: str, handler: Handler) -> Route:
        return Route(method, re.compile(pattern + r"\Z"), handler, self)


def format_seconds(seconds: float) -> str:
    """Seconds as a short decimal (``0.2``, ``12``): precise to the millisecond, as tests need."""
    return f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".") or "0"


def utc_timestamp(epoch: float) -> str:
    """RFC 3339 UTC time (``2023-11-14T22:13:20Z``), as Anthropic's reset headers and Ollama's ``created_at`` use."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def all_routes(protocols: list[Protocol]) -> list[Route]:
    return [route for protocol in protocols for route in protocol.routes()]
