"""The providers the emulator speaks, one module per protocol family.

A :class:`Protocol` knows how its provider names itself, where the API key
travels, whether it demands one and how it refuses a missing or unknown one,
what its error bodies and rate-limit headers look like, whether its 429
carries ``retry-after``, and which routes it serves. The server knows nothing
provider-specific beyond this interface.

Several providers share paths (``GET /v1/models`` is OpenAI's and
Anthropic's, ``/v1/models/{m}`` OpenAI's and Gemini's): a route may carry a
``when`` test on the request's headers, and the registry lists the
protocols that use one before OpenAI, whose dialect is the fallback.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from typing import ClassVar
from urllib.parse import unquote

from resilient.clock import Clock
from ..exchange import BadRequest, JsonReply, Reply, Request

__all__ = [
    "Protocol", "Route", "Quota", "Refusal", "all_routes", "body_model", "path_model", "served_names",
    "ceil_millis", "format_millis", "format_seconds", "utc_timestamp",
]  # fmt: skip

Handler = Callable[[Request], Reply]
#: The model a request names (None: it names none, or not where expected), for the ``models`` check.
ModelOf = Callable[[Request], str | None]


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
class Refusal:
    """A request the provider turns away before looking at it: no key, an unknown key, a path it does not serve.

    ``code`` is the provider's machine-readable name for the refusal where it
    sends one (OpenAI's ``error.code``, Google's ``ErrorInfo`` reason, AWS's
    error type); each protocol's :meth:`Protocol.refuse` puts it there.
    ``{key}`` in the message stands for the key's fingerprint.
    """

    status: int
    message: str
    code: str | None = None

    def for_key(self, key_fingerprint: str, status: int | None = None) -> Refusal:
        """This refusal for one key, at ``status`` when a fault asks for another than the provider's."""
        return replace(self, status=status or self.status, message=self.message.replace("{key}", key_fingerprint))


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    protocol: Protocol
    #: Whether a request on this path is meant for this protocol (by its headers), where another shares the path.
    when: Callable[[Request], bool] | None = None
    #: Where the request names its model, on routes that use one; checked against ``Emulator.models`` when set.
    model: ModelOf | None = None

    def accepts(self, request: Request) -> bool:
        return self.when is None or self.when(request)


class Protocol:
    """Base of every provider: a keyless local server with Bearer auth, no rate-limit nor retry headers.

    Subclasses override what differs.
    """

    name: ClassVar[str]
    #: Header carrying the request id on every answer.
    request_id_header: ClassVar[str] = "x-request-id"
    request_id_prefix: ClassVar[str] = "req_"
    #: Whether a 429 carries ``retry-after``: hosted APIs that send it, not Gemini (the wait is in the body),
    #: nor TGI, Ollama or Bedrock. A client that honours only the header must meet the difference in tests.
    sends_retry_after: ClassVar[bool] = False
    #: Whether the provider sends ``retry-after-ms`` next to ``retry-after``.
    sends_retry_after_ms: ClassVar[bool] = False
    #: The answer to a request without a key; ``None`` for a local server that takes keyless requests.
    missing_key: ClassVar[Refusal | None] = None
    #: The answer to a key the ``bad_key`` fault refuses.
    bad_key: ClassVar[Refusal] = Refusal(401, "Incorrect API key provided: {key}.")
    #: Paths that can only be meant for this provider: an unknown one is answered in its error format.
    path_prefixes: ClassVar[tuple[str, ...]] = ()
    #: The answer to a model this provider does not serve (``{model}`` stands for its name, other fields are
    #: :meth:`model_fields`'): wanted by every protocol with a route that names a model (``Route.model``).
    #: ``None`` for single-model servers, which serve whatever model they were started with.
    model_not_found: ClassVar[Refusal | None] = None

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def api_key(self, request: Request) -> str | None:
        return request.bearer_token()

    def unauthenticated(self, request: Request) -> Refusal | None:
        """The front door's answer to a request without usable credentials, or None to let it in.

        By default that is :attr:`missing_key` when no key came; providers that
        tell kinds of bad credentials apart (Google) override.
        """
        return self.missing_key if self.api_key(request) is None else None

    def owns(self, request: Request) -> bool:
        """Whether a request on a path no route serves was meant for this provider, so gets its 404 body."""
        return request.path.startswith(self.path_prefixes) if self.path_prefixes else False

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        raise NotImplementedError

    def bad_request(self, problem: BadRequest) -> JsonReply:
        """The provider's answer to a request its handler refused; protocols whose bodies name the field override."""
        return self.error(problem.status, problem.message)

    def refuse(self, refusal: Refusal) -> JsonReply:
        """The provider's answer to a refusal; protocols whose provider names it override to put ``refusal.code``."""
        return self.error(refusal.status, refusal.message)

    def serves(self, name: str, models: Collection[str]) -> bool:
        """Whether a request naming model ``name`` is served by an account with ``models``.

        The name as it is, by default; providers that take one model under
        several names (Anthropic's undated alias, Ollama's default tag)
        override, so that every route agrees on what one model is called.
        """
        return name in models

    def unknown_model(self, request: Request, model: str) -> JsonReply:
        """The provider's answer to a request naming a model it does not serve (:attr:`model_not_found`)."""
        refusal = self.model_not_found
        assert refusal is not None, f"{self.name} names models on a route but has no model_not_found"
        message = refusal.message.format(model=model, **self.model_fields(request))
        return self.refuse(replace(refusal, message=message))

    def model_fields(self, request: Request) -> dict[str, str]:
        """What :attr:`model_not_found` says besides the model's name; Google's names the API version and method."""
        return {}

    def unknown_path(self, request: Request) -> JsonReply:
        return self.refuse(Refusal(404, f"Invalid URL ({request.method} {request.path}): not an emulated endpoint."))

    def stamp(self, reply: Reply, request_id: str) -> None:
        """Mark an answer with its request id, where the provider puts it (the header; Anthropic's errors also in the body)."""
        reply.headers.setdefault(self.request_id_header, request_id)

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes | None:
        """An error event sent inside an open stream, or None if the provider has no such thing.

        ``retry_after`` is for providers that put a retry hint inside the error
        itself (the HTTP headers went out with the stream's 200).
        """
        return None

    def rate_limit_headers(self, quota: Quota) -> dict[str, str]:
        return {}

    def retry_headers(self, retry_after: float, send: bool | None = None) -> dict[str, str]:
        """``Retry-After`` (and ``-ms``) headers, if this provider sends them (``send`` overrides)."""
        if not (self.sends_retry_after if send is None else send):
            return {}
        headers = {"retry-after": format_seconds(retry_after)}
        if self.sends_retry_after_ms:
            headers["retry-after-ms"] = str(ceil_millis(retry_after))
        return headers

    def route(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        when: Callable[[Request], bool] | None = None,
        *,
        model: ModelOf | None = None,
    ) -> Route:
        return Route(method, re.compile(pattern + r"\Z"), handler, self, when, model)


def body_model(request: Request) -> str | None:
    """The ``model`` of a JSON body; None when there is none (the handler then refuses the body in its own words)."""
    try:
        value = request.json().get("model")
    except BadRequest:
        return None
    return value if isinstance(value, str) and value else None


def path_model(request: Request) -> str | None:
    """The model named in the path (the route's ``model`` group), URL-decoded (Bedrock's ARNs are sent quoted)."""
    value = request.params.get("model")
    return unquote(value) if value else None


def served_names(request: Request, builtin: Iterable[str]) -> list[str]:
    """The names of the models served: the emulator's ``models`` for this provider by name, else ``builtin``."""
    return list(builtin) if request.models is None else sorted(request.models)


def ceil_millis(seconds: float) -> int:
    """A wait in whole milliseconds, rounded *up*: a client that waits exactly this long is never early.

    Rounding to the nearest would send ``333`` for a third of a second, and a
    client waiting that long would arrive before the bucket refilled (then be
    told to wait ``0``). A positive wait is never sent as ``0``. The product is
    first rounded to a picosecond so that float noise (``0.3 * 1000`` is not
    quite ``300``) does not add a millisecond to a wait that is already whole;
    the rate-limit bucket admits within that noise.
    """
    if not seconds > 0:
        return 0
    return max(1, math.ceil(round(seconds * 1000, 9)))


def format_seconds(seconds: float) -> str:
    """Seconds as a short decimal (``0.2``, ``12``), rounded up to the millisecond (see :func:`ceil_millis`)."""
    return format_millis(ceil_millis(seconds))


def format_millis(millis: int) -> str:
    """Whole milliseconds as seconds in a short decimal: ``200`` is ``0.2``, ``12000`` is ``12``."""
    whole, rest = divmod(millis, 1000)
    return f"{whole}.{rest:03d}".rstrip("0") if rest else str(whole)


def utc_timestamp(epoch: float) -> str:
    """RFC 3339 UTC time (``2023-11-14T22:13:20Z``), as Anthropic's reset headers and Ollama's ``created_at`` use."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def all_routes(protocols: list[Protocol]) -> list[Route]:
    return [route for protocol in protocols for route in protocol.routes()]
