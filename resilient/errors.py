"""One error taxonomy that every layer understands.

Provider adapters raise :class:`ProviderError` subclasses; users' own calls
raise whatever their HTTP client or SDK raises. :func:`classify` turns either
into a :class:`Classification` (kind, retryable, retry_after, status), which is
all that ``@backoff``, ``@circuit`` and the other decorators look at. That is
what lets the decorators wrap a user's ``requests``/``httpx``/``openai``/
``anthropic``/``botocore`` call as well as our own adapters, without
importing any of those packages.

Retry hints (:func:`parse_retry_after`): ``retry-after-ms`` first, then
``retry-after`` in seconds or as an HTTP date; ``x-should-retry`` overrides
the status-based decision, as the official OpenAI and Anthropic SDKs do.
"""

from __future__ import annotations

import copy
import datetime
import email.utils
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from . import clock as _clock
from .secrets import redact

__all__ = [
    "ResilientError",
    "ProviderError",
    "AuthenticationError",
    "InvalidRequestError",
    "NotFoundError",
    "RateLimitError",
    "OverloadedError",
    "ServerError",
    "ProviderTimeout",
    "ProviderConnectionError",
    "QueueFullError",
    "QueueTimeoutError",
    "CircuitOpenError",
    "NoKeyAvailableError",
    "Kind",
    "Classification",
    "classify",
    "error_for_status",
    "parse_retry_after",
]

Kind = Literal["auth", "invalid", "not_found", "rate_limit", "overloaded", "server", "timeout", "connection", "other"]

#: A retry hint longer than this is not a hint but a misconfigured or hostile
#: server; it is ignored rather than obeyed.
MAX_RETRY_AFTER: Final = 86_400.0

_MESSAGE_LIMIT: Final = 300


class ResilientError(Exception):
    """Base of every error this toolkit raises.

    All share one constructor so that a layer can re-create or enrich any of
    them; ``str()`` is one short line that never contains an API key.
    """

    default_kind: Kind = "other"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        provider: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        should_retry: bool | None = None,
    ) -> None:
        self.message = redact(str(message))
        self.status = status
        self.provider = provider
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        # The provider's own verdict (``x-should-retry``), which overrides the status.
        self.should_retry = should_retry
        super().__init__(self.message)

    def __str__(self) -> str:
        head = " ".join(str(part) for part in (self.provider, self.status) if part is not None)
        # One line: a 502 from a proxy often carries a whole HTML page.
        text = redact(" ".join(str(self.message).split()))  # before cutting: no half key survives
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 1] + "…"
        details = []
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        if self.retry_after is not None:
            details.append(f"retry after {self.retry_after:g}s")
        out = " ".join(part for part in (f"[{head}]" if head else "", text) if part)
        if details:
            out = f"{out} ({', '.join(details)})" if out else f"({', '.join(details)})"
        # Redact again: fields may have been set after construction, and the
        # provider or request id is free text from elsewhere too.
        return redact(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: pickle (multiprocessing, caches) needs help.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[ResilientError], message: str, state: dict[str, Any]) -> ResilientError:
    err = cls(message)
    err.__dict__.update(state)
    return err


class ProviderError(ResilientError):
    """A provider answered with an error, or did not answer usably."""


class AuthenticationError(ProviderError):
    """401/403: the key is missing, wrong, revoked or not allowed. Never retried."""

    default_kind = "auth"


class InvalidRequestError(ProviderError):
    """400/413/422: the request itself is wrong. Retrying sends the same mistake."""

    default_kind = "invalid"


class NotFoundError(ProviderError):
    """404: unknown model or path."""

    default_kind = "not_found"


class RateLimitError(ProviderError):
    """429: too many requests or tokens; ``retry_after`` says how long to wait when known."""

    default_kind = "rate_limit"


class OverloadedError(ProviderError):
    """503/529: the provider is up but shedding load."""

    default_kind = "overloaded"


class ServerError(ProviderError):
    """Any other 5xx."""

    default_kind = "server"


class ProviderTimeout(ProviderError):
    """No (complete) answer in time."""

    default_kind = "timeout"


class ProviderConnectionError(ProviderError):
    """The connection failed or dropped (a stream cut off mid-way included)."""

    default_kind = "connection"


class QueueFullError(ResilientError):
    """``@queued``: every slot busy and the wait queue full; raised at once."""

    default_kind = "overloaded"


class QueueTimeoutError(ResilientError):
    """``@queued``: no slot freed within the wait timeout."""

    default_kind = "timeout"


class CircuitOpenError(ResilientError):
    """``@circuit``: the breaker is open; ``retry_after`` is the time until a probe is allowed."""

    default_kind = "overloaded"


class NoKeyAvailableError(ResilientError):
    """``@multiplex``: every API key is disabled (401/403) or removed."""

    default_kind = "auth"


_STATUS_CLASSES: Final[dict[int, type[ProviderError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: ProviderTimeout,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: OverloadedError,
    529: OverloadedError,
}


def error_for_status(status: int, message: str = "", **fields: Any) -> ProviderError:
    """The :class:`ProviderError` subclass for an HTTP ``status``, constructed."""
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if 500 <= status <= 599 else ProviderError
    return cls(message or f"HTTP {status}", status=status, **fields)


# --------------------------------------------------------------------------- classify


@dataclass(frozen=True, slots=True)
class Classification:
    """What a layer needs to know about a failure."""

    kind: Kind
    retryable: bool
    retry_after: float | None = None
    status: int | None = None


_RETRYABLE_KINDS: Final = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection"})

_STATUS_KINDS: Final[dict[int, Kind]] = {
    400: "invalid",
    401: "auth",
    403: "auth",
    404: "not_found",
    408: "timeout",
    413: "invalid",
    422: "invalid",
    429: "rate_limit",
    503: "overloaded",
    529: "overloaded",
}

# botocore error codes (ClientError.response["Error"]["Code"]). An error inside an
# event stream (botocore's EventStreamError) names its member with a lower-case
# first letter ("throttlingException"); codes are compared with it raised.
_BOTO_THROTTLING: Final = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    }
)  # fmt: skip
_BOTO_KINDS: Final[dict[str, Kind]] = {
    "ServiceUnavailable": "overloaded",
    "ServiceUnavailableException": "overloaded",
    "ModelNotReadyException": "overloaded",
    "InternalError": "server",
    "InternalServerError": "server",
    "InternalServerException": "server",
    "InternalFailure": "server",
    "RequestTimeout": "timeout",
    "RequestTimeoutException": "timeout",
    "ModelTimeoutException": "timeout",
    "ModelStreamErrorException": "server",  # the model failed mid-stream; Bedrock says to retry
    "ModelErrorException": "server",
    "ValidationException": "invalid",
    "AccessDeniedException": "auth",
    "UnrecognizedClientException": "auth",
    "ExpiredTokenException": "auth",
    "ResourceNotFoundException": "not_found",
    "NoSuchKey": "not_found",
    "NoSuchBucket": "not_found",
}

# Exception class names (anywhere in the MRO) of transport failures in
# requests, httpx, urllib3, aiohttp, botocore and the openai/anthropic SDKs.
_TIMEOUT_NAMES: Final = frozenset(
    {"Timeout", "TimeoutException", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "WriteTimeout",
     "PoolTimeout", "ReadTimeoutError", "ConnectTimeoutError", "ServerTimeoutError", "TimeoutError"}
)  # fmt: skip
_CONNECTION_NAMES: Final = frozenset(
    {"ConnectionError", "APIConnectionError", "ConnectError", "NetworkError", "RemoteProtocolError",
     "ChunkedEncodingError", "ProtocolError", "EndpointConnectionError", "ConnectionClosedError",
     "ClientConnectionError", "ServerDisconnectedError", "IncompleteRead",
     "IncompleteReadError", "ResponseStreamingError"}  # botocore: a body cut off mid-way (s3transfer retries both)
)  # fmt: skip


def classify(exc: BaseException, *, now: float | None = None) -> Classification:
    """Describe any exception in the toolkit's terms.

    Understands, in this order: the toolkit's own errors; anything carrying an
    HTTP status (``status_code`` as on the openai/anthropic SDK errors, a
    ``response`` with ``status_code`` as on ``requests.HTTPError`` and
    ``httpx.HTTPStatusError``, botocore's ``ClientError.response``);
    transport failures by class name (timeouts, connection errors) so that
    none of those packages needs importing; the builtins. ``x-should-retry``
    in the response headers overrides the status-based decision.

    ``now`` (epoch seconds; default: the current toolkit clock's wall time)
    is what a ``Retry-After`` given as an HTTP date is measured against. A
    layer with its own ``clock=`` passes ``now=clock.time()``, so the hint
    follows that clock rather than whichever one is installed globally. The
    toolkit's own errors carry ``retry_after`` already in seconds and ignore it.
    """
    if isinstance(exc, ResilientError):
        return _classify_own(exc)

    status, headers, boto_code = _status_and_headers(exc)
    retry_after = parse_retry_after(headers, now=now) if headers is not None else None

    if boto_code is not None:
        kind = "rate_limit" if boto_code in _BOTO_THROTTLING else _BOTO_KINDS.get(boto_code)
        if kind is None:
            kind = _kind_for_status(status) if status else "other"
        return _decide(kind, status, retry_after, headers)
    if status is not None:
        return _decide(_kind_for_status(status), status, retry_after, headers)

    kind = _transport_kind(exc)
    return Classification(kind, _retryable(kind, None), None, None)


def _classify_own(exc: ResilientError) -> Classification:
    if exc.status is not None and type(exc) in (ProviderError, ResilientError):
        kind = _kind_for_status(exc.status)
    else:
        kind = exc.default_kind
    retryable = _retryable(kind, exc.status)
    if exc.should_retry is not None:
        retryable = exc.should_retry
    if isinstance(exc, NoKeyAvailableError):
        retryable = False
    return Classification(kind, retryable, exc.retry_after, exc.status)


def _retryable(kind: Kind, status: int | None) -> bool:
    """Transient kinds, plus 408 and 409 (request timeout, lock conflict) which the SDKs retry too."""
    return kind in _RETRYABLE_KINDS or status in (408, 409)


def _kind_for_status(status: int) -> Kind:
    kind = _STATUS_KINDS.get(status)
    if kind is not None:
        return kind
    return "server" if 500 <= status <= 599 else "other"


def _decide(kind: Kind, status: int | None, retry_after: float | None, headers: Any) -> Classification:
    should = should_retry(headers)
    retryable = _retryable(kind, status) if should is None else should
    return Classification(kind, retryable, retry_after, status)


def should_retry(headers: Any) -> bool | None:
    """The server's ``x-should-retry`` verdict: ``True``/``False``, or ``None`` when it gives none.

    OpenAI and Anthropic send it to overrule the status (a 500 that must not
    be repeated, a 409 that may); their SDKs obey it before anything else, so
    the toolkit does too.
    """
    value = _header(headers, "x-should-retry") if headers is not None else None
    if isinstance(value, str):
        verdict = value.strip().lower()
        if verdict in ("true", "false"):
            return verdict == "true"
    return None


def _status_and_headers(exc: BaseException) -> tuple[int | None, Any, str | None]:
    """(HTTP status, headers, botocore error code) found on ``exc``, each possibly None."""
    response = getattr(exc, "response", None)

    # botocore ClientError: response is a dict.
    if isinstance(response, Mapping) and "Error" in response:
        meta = response.get("ResponseMetadata") or {}
        code = str((response.get("Error") or {}).get("Code") or "")
        status = _as_status(meta.get("HTTPStatusCode"))
        return status, meta.get("HTTPHeaders"), (code[:1].upper() + code[1:]) or None

    status = _as_status(getattr(exc, "status_code", None))
    if status is None and response is not None:
        status = _as_status(getattr(response, "status_code", None))
        if status is None:
            status = _as_status(getattr(response, "status", None))  # aiohttp, urllib3
    if status is None:
        status = _as_status(getattr(exc, "status", None))  # aiohttp ClientResponseError
    if status is None and (not isinstance(exc, OSError) or hasattr(exc, "headers")):
        # google-genai's APIError and urllib's HTTPError carry the status as .code;
        # other OSErrors use .code for something else, if at all.
        status = _as_status(getattr(exc, "code", None))
    headers = getattr(response, "headers", None) if response is not None else None
    if headers is None:
        headers = getattr(exc, "headers", None)
    return status, headers, None


def _as_status(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 100 <= value <= 599 else None


def _transport_kind(exc: BaseException) -> Kind:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TIMEOUT_NAMES or isinstance(exc, TimeoutError):
        return "timeout"
    if names & _CONNECTION_NAMES or isinstance(exc, ConnectionError):
        return "connection"
    return "other"


# --------------------------------------------------------------------------- retry hints


def parse_retry_after(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or ``None`` when it gives no usable hint.

    ``retry-after-ms`` (milliseconds, float) wins over ``retry-after``, which
    may be seconds (float) or an HTTP date, measured against ``now`` (epoch
    seconds; default: the toolkit clock's wall time). Header names are
    case-insensitive. Negative values, dates that are not in the future,
    NaN, infinity, values above a day, and garbage all give ``None``.
    """
    if not headers:
        return None
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms is not None:
        value = _as_seconds(raw_ms, scale=1000)
        if value is not None:
            return value
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    value = _as_seconds(raw)
    if value is not None:
        return value
    return _http_date_delay(raw, now)


def _header(headers: Any, name: str) -> Any:
    """Case-insensitive header lookup on requests/httpx headers, dicts or lists of pairs.

    Values come back as ``str`` (bytes are decoded as latin-1, as HTTP allows);
    anything that is not a header collection gives ``None``, never an exception,
    because a malformed error object must not turn into a crash of the retry layer.
    """
    getter = getattr(headers, "get", None)
    if getter is not None:
        try:
            value = getter(name)
        except Exception:
            value = None
        if value is not None or not isinstance(headers, dict):
            # requests' CaseInsensitiveDict, httpx.Headers and email.Message are
            # already case-insensitive; only a plain dict needs the scan below.
            return _text(value)
        items: Any = headers.items()
    elif isinstance(headers, (str, bytes, bytearray)):
        return None
    else:
        items = headers
    try:
        for pair in items:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                continue
            key, value = pair
            if isinstance(key, (bytes, bytearray)):
                key = key.decode("latin-1")
            if isinstance(key, str) and key.lower() == name:
                return _text(value)
    except TypeError:
        return None
    return None


def _text(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


# HTTP's delay-seconds, widened to decimals (retry-after-ms carries fractions).
# Stricter than float(): "1_0", "1e3", "nan", "inf" and "+3" are garbage, not delays.
_DECIMAL: Final = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def _as_seconds(raw: Any, scale: int = 1) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        match = _DECIMAL.fullmatch(str(raw).strip())
        if match is None:
            return None
        value = float(match.group(0))
    # Divide rather than multiply by 0.001: "700" ms must be exactly 0.7 s.
    value = value / scale
    if math.isnan(value) or math.isinf(value) or value < 0 or value > MAX_RETRY_AFTER:
        return None
    return value


def _http_date_delay(raw: Any, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(str(raw).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; a naive one means GMT too
        when = when.replace(tzinfo=datetime.timezone.utc)
    reference = _clock.current().time() if now is None else now
    delay = when.timestamp() - reference
    if delay <= 0 or delay > MAX_RETRY_AFTER or math.isnan(delay):
        return None
    return delay


# --------------------------------------------------------------------------- one failure, several callers


def copy_for_caller(exc: BaseException) -> BaseException:
    """``exc`` again, as its own object, for one of several callers that share one failure (a batch).

    Raised in several threads or tasks, one exception object collects every
    raise's frames in its ``__traceback__`` and every layer's note (``@backoff``'s
    "gave up after ...") in its ``__notes__``, so each caller would read the
    others' history as its own. The copy keeps the type, arguments,
    attributes, notes so far, cause, context and traceback so far. An
    exception that cannot be rebuilt (a constructor wanting more than its
    ``args``) is shared as it is, as ``concurrent.futures`` does.
    """
    try:
        twin = copy.copy(exc)
    except Exception:
        return exc
    if type(twin) is not type(exc):
        return exc
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        twin.__notes__ = list(notes)  # copy.copy shares the list: one caller's note would reach all
    twin.__cause__, twin.__context__ = exc.__cause__, exc.__context__
    twin.__suppress_context__ = exc.__suppress_context__
    return twin.with_traceback(exc.__traceback__)
