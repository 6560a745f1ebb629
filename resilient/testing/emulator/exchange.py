"""What a protocol handler sees and returns: a parsed request, a reply.

Handlers are plain functions from :class:`Request` to a reply object; they
never touch the socket. That keeps every protocol module free of HTTP
plumbing and lets the server apply faults (delays, truncation, malformed
bodies) to any reply in one place.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Request", "JsonReply", "StreamReply", "Reply", "BadRequest"]


class BadRequest(Exception):
    """The client sent something the provider would reject; answered with the provider's own 400 body.

    ``param`` and ``code`` are the offending field and the machine-readable
    reason, for providers whose error bodies name them (OpenAI's); the
    others ignore them.
    """

    def __init__(self, message: str, status: int = 400, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code


@dataclass
class Request:
    """One HTTP request, already read off the wire."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    id: str = ""  # the emulator's request id, also the base of ids in the reply body
    params: Mapping[str, str] = field(default_factory=dict)  # named groups of the route pattern
    #: The models the request's provider serves (its part of ``Emulator.models`` when the request arrived);
    #: None: any name.
    models: frozenset[str] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or :class:`BadRequest` as the provider would answer."""
        try:
            value = json.loads(self.body or b"null")
        except ValueError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise BadRequest("The request body must be a JSON object.")
        return value

    def with_json(self, body: Any) -> Request:
        """The same request carrying another JSON body: lets one protocol answer through another's handler."""
        return dataclasses.replace(self, body=json.dumps(body).encode())

    def bearer_token(self) -> str | None:
        auth = self.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class JsonReply:
    """A complete JSON answer."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """A streamed answer: already-framed pieces (SSE events or NDJSON lines), sent one chunk each."""

    events: Iterable[bytes]
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


Reply = JsonReply | StreamReply
