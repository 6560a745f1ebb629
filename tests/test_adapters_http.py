"""The adapters' shared plumbing: rate-limit headers, error messages, SSE framing."""

from __future__ import annotations

import io

import pytest
import requests

from resilient import InvalidRequestError, OverloadedError, RateLimitError, backoff, classify
from resilient.clock import FakeClock
from resilient.adapters import _http


def response(status: int = 200, body: bytes = b"", **headers: str) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    r.raw = io.BytesIO(body)
    r.url = "http://127.0.0.1/x"
    return r


@pytest.mark.parametrize(
    ("reset", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("20ms", 0.02), ("1m30s", 90.0)]
)
def test_openai_reset_durations_are_read_as_seconds(reset: str, seconds: float) -> None:
    r = response(**{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset})

    assert _http.rate_limits(r) == {"remaining_requests": 0.0, "reset_requests": seconds}


@pytest.mark.parametrize(
    ("reset", "seconds"),
    [
        ("2023-11-14T22:13:50Z", 31.0),  # cut to the second: whole again by the end of 22:13:50 at the latest
        ("2023-11-14T22:13:50.250Z", 30.25),  # given finer: taken as it is
        ("2023-11-14T22:13:50+00:00", 31.0),
    ],
)
def test_anthropic_reset_timestamps_are_measured_from_now(reset: str, seconds: float) -> None:
    r = response(**{
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    })  # fmt: skip

    assert _http.rate_limits(r, now=1_700_000_000.0) == {
        "limit_requests": 50.0,
        "remaining_requests": 0.0,
        "reset_requests": seconds,
    }


def test_no_rate_limit_headers_give_none() -> None:
    assert _http.rate_limits(response()) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "bad model", "type": "invalid_request_error"}}', "invalid_request_error: bad model"),
        (b'{"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}', "invalid_request_error: no"),
        (b'{"error": {"code": 400, "message": "oops", "status": "INVALID_ARGUMENT"}}', "INVALID_ARGUMENT: oops"),
        (b'{"error": "model not loaded"}', "model not loaded"),
        (b'{"detail": "Input validation error"}', "Input validation error"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    ],
)
def test_error_messages_are_read_from_every_providers_shape(body: bytes, message: str) -> None:
    error = _http.error_from(response(400, body), "p")

    assert isinstance(error, InvalidRequestError)
    assert error.message == message


def test_error_carries_retry_after_and_the_providers_request_id() -> None:
    error = _http.error_from(response(429, b"{}", **{"retry-after": "7", "request-id": "req_9"}), "anthropic")

    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.request_id, error.provider) == (7.0, "req_9", "anthropic")


def test_529_is_overloaded() -> None:
    assert isinstance(_http.error_from(response(529, b"{}"), "anthropic"), OverloadedError)


def test_sse_events_join_multi_line_data_and_skip_comments() -> None:
    stream = b": keep-alive\n\nevent: message\ndata: {\"a\":\ndata: 1}\n\ndata: [DONE]\n\n"

    assert list(_http.sse_events(response(200, stream), "p")) == [("message", '{"a":\n1}'), (None, "[DONE]")]


def test_sse_events_read_a_bare_json_body_between_events_as_data() -> None:
    # Gemini writes an error mid-stream as indented JSON with no "data:" prefix; a brace inside a string must not end it.
    error = '{\n  "error": {\n    "code": 429,\n    "message": "quota } exceeded"\n  }\n}'
    stream = b'data: {"a": 1}\n\n' + error.encode() + b'\ndata: {"b": 2}\n\n'

    assert list(_http.sse_events(response(200, stream), "p")) == [(None, '{"a": 1}'), (None, error), (None, '{"b": 2}')]


def test_sse_events_name_an_error_field_error() -> None:
    # llama.cpp's server sends a stream error as a field of its own: `error: {json}`.
    stream = b'data: {"a": 1}\n\nerror: {"code": 400, "message": "too long"}\n\n'

    assert list(_http.sse_events(response(200, stream), "p")) == [
        (None, '{"a": 1}'),
        ("error", '{"code": 400, "message": "too long"}'),
    ]


@pytest.mark.parametrize(
    ("prefix", "secret"),
    [("sk-ant-api03-", "Zq7XvK2pLm9" + "Rt5Wq8Yx3Nb6Vc1Hg4Jk"), ("api_key=", "A1b2C3d4E5f6" + "G7h8I9j0K1l2")],
)
def test_an_excerpt_masks_a_key_that_the_length_limit_cuts_in_half(prefix: str, secret: str) -> None:
    # The key starts 7 characters before the excerpt's limit: cut first, its head would no longer look like a key.
    filler = "x" * (200 - len(prefix) - 7)
    error = _http.malformed(response(200, (filler + prefix + secret).encode()), "p", "not JSON")

    shown = secret[:-4]  # a masked key may show its last four characters, nothing else
    assert not any(shown[i : i + 4] in str(error) for i in range(len(shown) - 3))


def test_malformed_names_the_status_and_shows_an_excerpt() -> None:
    error = _http.malformed(response(200, b"x" * 1000), "p", "not JSON")

    assert error.status == 200
    assert "not JSON" in str(error) and "xxx" in str(error)
    assert len(str(error)) < 400


@pytest.mark.parametrize(("status", "header", "retried"), [(500, "false", False), (400, "true", True), (503, None, True)])
def test_x_should_retry_on_an_adapters_error_overrules_the_status(status: int, header: str | None, retried: bool) -> None:
    # OpenAI and Anthropic send x-should-retry; their SDKs obey it before the status, and so do we.
    headers = {"x-should-retry": header} if header else {}
    error = _http.error_from(response(status, b'{"error": {"message": "m"}}', **headers), "openai")

    assert classify(error).retryable is retried
    clock, calls = FakeClock(), []

    @backoff(max_retries=2, jitter=None, clock=clock)
    def call() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        call()
    assert len(calls) == (3 if retried else 1)


@pytest.mark.parametrize("request_id", ["a\r\nX-Injected: 1", "", 42])
def test_an_explicit_request_id_that_cannot_be_a_header_is_refused_before_sending(request_id: object) -> None:
    # Port 9 (discard) is never contacted: the id is checked first.
    with pytest.raises(ValueError, match="request_id"):
        _http.send("GET", "http://127.0.0.1:9/x", provider="p", request_id=request_id)  # type: ignore[arg-type]
