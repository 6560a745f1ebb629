"""Claude on Amazon Bedrock: ``InvokeModel`` and ``InvokeModelWithResponseStream`` (extra ``aws``).

The body is the Anthropic Messages body (built by
:func:`resilient.adapters.anthropic.request_body`) with
``anthropic_version: "bedrock-2023-05-31"`` in place of ``model``, which
goes in the URL: ``POST {endpoint}/model/{modelId}/invoke``. The answer is
the Messages API's ``message`` and the stream carries the Messages API's
events, base64 inside AWS event-stream frames; both are read by the
Anthropic adapter's parsers, so the results are identical.

Requests are signed with botocore's SigV4 (service ``bedrock``), credentials
from the usual AWS places (``aws_access_key_id=``/... arguments, the
``AWS_ACCESS_KEY_ID`` variables, profiles, SSO, instance roles), resolved
once per process by botocore. A Bedrock API key (``api_key=`` or
``AWS_BEARER_TOKEN_BEDROCK``) is sent as a Bearer token instead. The region
is ``region=``, else ``AWS_REGION``/``AWS_DEFAULT_REGION``/the profile's,
else ``us-east-1``; ``endpoint_url`` (else ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``)
overrides ``https://bedrock-runtime.{region}.amazonaws.com``.

Errors are placed by Bedrock's own error type (``x-amzn-ErrorType``, or the
``:exception-type`` of a stream frame), which says more than the status:
``ModelNotReadyException`` is a 429 but the model warming up, not a rate
limit, so it is :class:`~resilient.errors.OverloadedError` (a breaker
counts it, a key pool does not cool the key down).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import quote

import requests

from resilient.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
    error_for_status,
)

from . import _http, anthropic
from . import client as _client

try:
    import botocore.session  # type: ignore[import-untyped]
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.credentials import Credentials  # type: ignore[import-untyped]
    from botocore.eventstream import EventStreamBuffer, ParserError  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("resilient.adapters.bedrock needs botocore: pip install 'resilient[aws]'") from exc

__all__ = ["Client", "chat", "stream_chat", "invoke_body", "signed_headers", "error_for_type"]

PROVIDER = "bedrock"
ANTHROPIC_VERSION = "bedrock-2023-05-31"
SERVICE = "bedrock"  # the signing name of bedrock-runtime
DEFAULT_REGION = "us-east-1"
KEY_ENV = ("AWS_BEARER_TOKEN_BEDROCK",)
KEY_OPTIONAL = True  # without a Bedrock API key, requests are signed with AWS credentials
BASE_URL_PARAM = "endpoint_url"  # what a client's base_url / the registry's api_base is called here
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")

ERRORS: dict[str, type[ProviderError]] = {
    "ThrottlingException": RateLimitError,
    "ModelNotReadyException": OverloadedError,
    "ServiceUnavailableException": OverloadedError,
    "ModelTimeoutException": ProviderTimeout,
    "InternalServerException": ServerError,
    "ModelErrorException": ServerError,
    "ModelStreamErrorException": ServerError,
    "ValidationException": InvalidRequestError,
    "ResourceNotFoundException": NotFoundError,
    "AccessDeniedException": AuthenticationError,
    "UnrecognizedClientException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "IncompleteSignatureException": AuthenticationError,
    "MissingAuthenticationTokenException": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
}
# The status each type comes with, for a stream frame (which has none of its own).
_STATUS = {"ThrottlingException": 429, "ModelNotReadyException": 429, "ServiceUnavailableException": 503,
           "ModelTimeoutException": 408, "InternalServerException": 500, "ModelErrorException": 424,
           "ModelStreamErrorException": 424, "ValidationException": 400}  # fmt: skip

_botocore_session: Any = None
_botocore_lock = threading.Lock()


def chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    api_key: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``InvokeModel`` call of a Claude model id (``anthropic.claude-...`` or an inference profile)."""
    body = invoke_body(messages, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    keys = (api_key, aws_access_key_id, aws_secret_access_key, aws_session_token)
    response = _invoke(model, "invoke", body, region, endpoint_url, keys, timeout, request_id, session)
    data = _http.json_of(response, PROVIDER)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise _http.malformed(response, PROVIDER, "no content list", data)
    return anthropic.parse_message(data, response)


def stream_chat(
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    api_key: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    system: str | list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stop: str | list[str] | None = None,
    timeout: float = 60.0,
    request_id: str | None = None,
    session: requests.Session | None = None,
    **extra: Any,
) -> Iterator[dict[str, Any]]:
    """``InvokeModelWithResponseStream``: text chunks, then the final chunk with ``finish_reason``, ``usage``, ``tool_calls``.

    An exception frame raises the taxonomy's error for its type; a stream
    that ends before ``message_stop`` raises :class:`~resilient.errors.ProviderConnectionError`;
    a frame that fails its checksum is a malformed-response :class:`~resilient.errors.ProviderError`.
    """
    body = invoke_body(messages, max_tokens, temperature, system, tools, tool_choice, stop, extra)
    keys = (api_key, aws_access_key_id, aws_secret_access_key, aws_session_token)
    response = _invoke(model, "invoke-with-response-stream", body, region, endpoint_url, keys, timeout, request_id, session)
    yield from anthropic.stream_chunks(_events(response), response, PROVIDER)


def invoke_body(
    messages: Sequence[dict[str, Any]],
    max_tokens: int | None,
    temperature: float | None,
    system: str | list[dict[str, Any]] | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    stop: str | list[str] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The Messages body as Bedrock takes it: ``anthropic_version`` first, no ``model`` (it is in the URL)."""
    body = anthropic.request_body(messages, "", max_tokens, temperature, system, tools, tool_choice, stop, extra)
    del body["model"]
    return {"anthropic_version": ANTHROPIC_VERSION, **body}


def signed_headers(
    method: str, url: str, body: bytes, headers: dict[str, str], region: str, credentials: Any
) -> dict[str, str]:
    """``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``) for this exact request."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def error_for_type(
    kind: str | None, status: int | None, message: str, *, request_id: str | None = None, retry_after: float | None = None
) -> ProviderError:
    """The taxonomy's error for a Bedrock error type (``ThrottlingException``), else for the HTTP status."""
    name = (kind or "").split(":", 1)[0]
    name = name[:1].upper() + name[1:]  # stream frames spell it throttlingException
    status = status or _STATUS.get(name) or 500
    text = f"{name}: {message}" if name else message
    fields: dict[str, Any] = {"provider": PROVIDER, "request_id": request_id, "retry_after": retry_after}
    cls = ERRORS.get(name)
    return cls(text, status=status, **fields) if cls else error_for_status(status, text, **fields)


# --------------------------------------------------------------------------- transport


def _invoke(
    model: str,
    action: str,
    body: dict[str, Any],
    region: str | None,
    endpoint_url: str | None,
    keys: tuple[str | None, ...],
    timeout: float,
    request_id: str | None,
    session: requests.Session | None,
) -> requests.Response:
    api_key, key_id, secret, token = keys
    region = region or _default_region()
    base = (endpoint_url or _http.setting(ENDPOINT_ENV) or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
    url = f"{base}/model/{quote(model, safe='')}/{action}"
    data = json.dumps(body).encode()
    stream = action != "invoke"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/vnd.amazon.eventstream" if stream else "application/json",
    }
    if stream:
        headers["X-Amzn-Bedrock-Accept"] = "application/json"
    bearer = api_key or _http.setting(KEY_ENV)
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    else:
        headers = signed_headers("POST", url, data, headers, region, _credentials(key_id, secret, token))
    return _http.send(
        "POST",
        url,
        provider=PROVIDER,
        data=data,
        headers=headers,
        timeout=timeout,
        session=cast(requests.Session, _TypedErrors(session or _http._session())),  # noqa: SLF001 - the shared per-thread session
        stream=stream,
        request_id=request_id,
    )


class _TypedErrors:
    """A session whose error answers raise Bedrock's own error type instead of one chosen by status alone.

    ``_http.send`` places an error by its HTTP status; Bedrock names the
    error in ``x-amzn-ErrorType``, and two errors of one status can mean
    different things (``ThrottlingException`` and ``ModelNotReadyException``
    are both 429). Transport failures still go through ``_http.send``'s mapping.
    """

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = self._session.request(*args, **kwargs)
        if response.status_code < 400:
            return response
        try:
            generic = _http.error_from(response, PROVIDER)
            raise error_for_type(
                response.headers.get("x-amzn-errortype"),
                response.status_code,
                generic.message,
                request_id=generic.request_id,
                retry_after=generic.retry_after,
            )
        finally:
            response.close()


def _default_region() -> str:
    return _http.setting(("AWS_REGION", "AWS_DEFAULT_REGION")) or _botocore().get_config_variable("region") or DEFAULT_REGION


def _credentials(key_id: str | None, secret: str | None, token: str | None) -> Any:
    if key_id and secret:
        return Credentials(key_id, secret, token)
    found = _botocore().get_credentials()
    if found is None:
        raise AuthenticationError(
            "no AWS credentials: pass aws_access_key_id=/aws_secret_access_key=, set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or use a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)",
            provider=PROVIDER,
        )
    return found.get_frozen_credentials()  # refreshable credentials (SSO, roles) refresh here


def _botocore() -> Any:
    """One botocore session per process: it resolves and caches the credential chain (5 ms a resolution)."""
    global _botocore_session
    with _botocore_lock:
        if _botocore_session is None:
            _botocore_session = botocore.session.Session()
        return _botocore_session


# --------------------------------------------------------------------------- event stream


def _events(response: requests.Response) -> Iterator[tuple[str | None, Any]]:
    """``(None, Anthropic event JSON)`` for each ``chunk`` frame; exception frames raise."""
    buffer = EventStreamBuffer()
    try:
        for data in response.iter_content(chunk_size=None):
            buffer.add_data(data)
            for message in buffer:
                event = _event(message.headers, message.payload, response)
                if event is not None:
                    yield None, event
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
        raise ProviderConnectionError(
            "stream cut off mid-way", provider=PROVIDER, request_id=_http.provider_request_id(response)
        ) from exc
    except requests.Timeout as exc:
        raise ProviderTimeout("stream stalled", provider=PROVIDER, request_id=_http.provider_request_id(response)) from exc
    except ParserError as exc:
        raise _http.malformed(response, PROVIDER, f"event-stream frame is damaged ({type(exc).__name__})", "") from None
    finally:
        response.close()


def _event(headers: dict[str, Any], payload: bytes, response: requests.Response) -> Any:
    kind = headers.get(":message-type")
    if kind == "event":
        if headers.get(":event-type") != "chunk":
            return None  # future event types are skipped, as the SDKs do
        try:
            return json.loads(base64.b64decode(json.loads(payload)["bytes"]))
        except (ValueError, KeyError, TypeError):
            raise _http.malformed(response, PROVIDER, "chunk is not base64 JSON", payload.decode("utf-8", "replace")) from None
    if kind == "exception":
        try:
            message = str(json.loads(payload).get("message", ""))
        except (ValueError, AttributeError):
            message = payload.decode("utf-8", "replace")
        raise error_for_type(
            headers.get(":exception-type"), None, f"{message} (mid-stream)", request_id=_http.provider_request_id(response)
        )
    if kind == "error":
        raise ServerError(
            f"{headers.get(':error-code')}: {headers.get(':error-message')} (mid-stream)",
            provider=PROVIDER,
            request_id=_http.provider_request_id(response),
        )
    return None


class Client(_client.Client):
    """Claude on Bedrock behind the recommended stack (see :mod:`resilient.adapters.client`).

    ``api_key`` is one or more Bedrock API keys (else ``AWS_BEARER_TOKEN_BEDROCK``
    and its numbered variants); with none, the pool is keyless and every call
    is signed with the AWS credential chain. ``region`` and ``endpoint_url``
    apply to every call (Bedrock's counterpart of other clients' ``base_url``).
    """

    def __init__(
        self,
        api_key: str | Sequence[str] | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        **policy: Any,
    ) -> None:
        defaults = _http.compact(region=region)
        super().__init__(sys.modules[__name__], api_key=api_key, base_url=endpoint_url, defaults=defaults, **policy)
