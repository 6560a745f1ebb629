"""The error taxonomy, ``classify`` and Retry-After parsing.

Every foreign exception here is the real class from its package, built the way
that package builds it (a ``requests.Response`` with status and headers, an
``httpx.Response`` for the SDK errors, a botocore error response dict), so the
duck typing in ``classify`` is tested against what users' code really raises.
Fake keys are built by concatenation so this file holds nothing key-shaped.
"""

from __future__ import annotations

import email.utils
import pickle

import httpx
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from resilient import clock
from resilient.clock import FakeClock
from resilient.errors import (
    AuthenticationError,
    CircuitOpenError,
    Classification,
    InvalidRequestError,
    NoKeyAvailableError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QueueFullError,
    QueueTimeoutError,
    RateLimitError,
    ResilientError,
    ServerError,
    classify,
    error_for_status,
    parse_retry_after,
)

FAKE_KEY = "sk-" + "Q" * 26 + "a1b2"
FAKE_ANTHROPIC_KEY = "sk-" + "ant-" + "api03-" + "S" * 30 + "e5f6"
NOW = 1_700_000_000.0


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


# --------------------------------------------------------------------------- parse_retry_after: values


def test_retry_after_seconds():
    assert parse_retry_after({"retry-after": "3"}) == 3.0


def test_retry_after_fractional_seconds():
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5


def test_retry_after_with_surrounding_spaces():
    assert parse_retry_after({"retry-after": " 7 "}) == 7.0


def test_retry_after_zero_seconds_means_retry_now():
    assert parse_retry_after({"retry-after": "0"}) == 0.0


def test_retry_after_as_a_number_value():
    assert parse_retry_after({"retry-after": 4}) == 4.0


def test_retry_after_ms_is_milliseconds():
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5


def test_retry_after_ms_fractions_are_exact():
    assert parse_retry_after({"retry-after-ms": "700"}) == 0.7
    assert parse_retry_after({"retry-after-ms": "250.5"}) == 0.2505


def test_retry_after_ms_wins_over_retry_after():
    assert parse_retry_after({"retry-after": "9", "retry-after-ms": "1500"}) == 1.5


def test_unusable_retry_after_ms_falls_back_to_retry_after():
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert parse_retry_after({"retry-after-ms": "-100", "retry-after": "9"}) == 9.0


def test_retry_after_http_date_is_measured_against_now():
    assert parse_retry_after({"retry-after": http_date(NOW + 30)}, now=NOW) == 30.0


def test_retry_after_http_date_in_the_classic_example_format():
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert parse_retry_after(headers, now=1445412480.0 - 120) == 120.0


def test_retry_after_http_date_defaults_to_the_current_clocks_wall_time():
    headers = {"retry-after": http_date(NOW + 45)}
    with clock.use(FakeClock(wall=NOW)):
        assert parse_retry_after(headers) == 45.0


def test_retry_after_http_date_follows_the_fake_clock_as_it_moves():
    fake = FakeClock(wall=NOW)
    headers = {"retry-after": http_date(NOW + 45)}
    with clock.use(fake):
        fake.sleep(15)
        assert parse_retry_after(headers) == 30.0


def test_retry_after_http_date_equal_to_now_is_no_hint():
    assert parse_retry_after({"retry-after": http_date(NOW)}, now=NOW) is None


def test_retry_after_http_date_in_the_past_is_no_hint():
    assert parse_retry_after({"retry-after": http_date(NOW - 60)}, now=NOW) is None


def test_retry_after_http_date_more_than_a_day_ahead_is_no_hint():
    assert parse_retry_after({"retry-after": http_date(NOW + 86_401)}, now=NOW) is None


@pytest.mark.parametrize(
    "value",
    ["-1", "-0.5", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "86401", "999999999", "soon", "", "  ",
     "1_0", "3 seconds", "0x10", "Wed, 99 Foo 2015 07:28:00 GMT"],
)  # fmt: skip
def test_retry_after_that_is_negative_non_finite_absurd_or_garbage_is_no_hint(value):
    assert parse_retry_after({"retry-after": value}, now=NOW) is None


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "86400001", "fast"])
def test_retry_after_ms_that_is_negative_non_finite_absurd_or_garbage_is_no_hint(value):
    assert parse_retry_after({"retry-after-ms": value}) is None


def test_retry_after_of_exactly_one_day_is_still_a_hint():
    assert parse_retry_after({"retry-after": "86400"}) == 86400.0


def test_no_retry_after_header_is_no_hint():
    assert parse_retry_after({"content-type": "application/json"}) is None


@pytest.mark.parametrize("headers", [None, {}, [], "retry-after: 3", b"garbage", 42, [("only-one",)], [1, 2]])
def test_headers_that_are_missing_or_not_headers_give_no_hint(headers):
    assert parse_retry_after(headers) is None


# --------------------------------------------------------------------------- parse_retry_after: header containers


def test_header_names_are_case_insensitive_on_a_plain_dict():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"RETRY-AFTER-MS": "500"}) == 0.5


def test_header_names_are_case_insensitive_on_requests_headers():
    assert parse_retry_after(CaseInsensitiveDict({"Retry-After": "3"})) == 3.0
    assert parse_retry_after(CaseInsensitiveDict({"Retry-After-Ms": "250"})) == 0.25


def test_header_names_are_case_insensitive_on_httpx_headers():
    assert parse_retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"retry-after-MS": "250"})) == 0.25


def test_headers_as_a_list_of_byte_pairs():
    assert parse_retry_after([(b"content-type", b"text/plain"), (b"Retry-After", b"2.5")]) == 2.5


def test_headers_as_a_list_of_str_pairs():
    assert parse_retry_after([("Retry-After-Ms", "100")]) == 0.1


def test_header_values_as_bytes_on_a_plain_dict():
    assert parse_retry_after({"retry-after": b"3"}) == 3.0
    assert parse_retry_after({"Retry-After": b"4"}) == 4.0


def test_http_date_in_a_list_of_byte_pairs():
    headers = [(b"retry-after", http_date(NOW + 10).encode())]
    assert parse_retry_after(headers, now=NOW) == 10.0


# --------------------------------------------------------------------------- our own errors


def test_every_error_shares_one_constructor_and_keeps_its_fields():
    err = RateLimitError("slow down", status=429, provider="openai", request_id="req_1", retry_after=3.0, body={"a": 1})
    assert (err.message, err.status, err.provider, err.request_id, err.retry_after, err.body) == (
        "slow down", 429, "openai", "req_1", 3.0, {"a": 1},
    )  # fmt: skip


def test_provider_errors_and_toolkit_errors_share_one_base():
    assert issubclass(RateLimitError, ProviderError)
    assert issubclass(ProviderError, ResilientError)
    assert issubclass(CircuitOpenError, ResilientError)
    assert not issubclass(CircuitOpenError, ProviderError)


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (AuthenticationError("no", status=401), Classification("auth", False, None, 401)),
        (AuthenticationError("no", status=403), Classification("auth", False, None, 403)),
        (InvalidRequestError("bad", status=400), Classification("invalid", False, None, 400)),
        (InvalidRequestError("bad", status=422), Classification("invalid", False, None, 422)),
        (NotFoundError("gone", status=404), Classification("not_found", False, None, 404)),
        (RateLimitError("slow", status=429, retry_after=2.5), Classification("rate_limit", True, 2.5, 429)),
        (OverloadedError("busy", status=529), Classification("overloaded", True, None, 529)),
        (OverloadedError("busy", status=503, retry_after=10), Classification("overloaded", True, 10, 503)),
        (ServerError("oops", status=500), Classification("server", True, None, 500)),
        (ProviderTimeout("slow"), Classification("timeout", True, None, None)),
        (ProviderConnectionError("cut"), Classification("connection", True, None, None)),
        (QueueFullError("full"), Classification("overloaded", True, None, None)),
        (QueueTimeoutError("waited"), Classification("timeout", True, None, None)),
        (CircuitOpenError("open", retry_after=7.5), Classification("overloaded", True, 7.5, None)),
        (NoKeyAvailableError("none left"), Classification("auth", False, None, None)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_classify_our_errors(err, expected):
    assert classify(err) == expected


def test_classify_a_plain_provider_error_by_its_status():
    assert classify(ProviderError("x", status=503)) == Classification("overloaded", True, None, 503)
    assert classify(ProviderError("x", status=502)) == Classification("server", True, None, 502)
    assert classify(ProviderError("x", status=409)) == Classification("other", True, None, 409)
    assert classify(ProviderError("x", status=418)) == Classification("other", False, None, 418)


def test_classify_a_plain_provider_error_without_status_is_other_and_final():
    assert classify(ProviderError("x")) == Classification("other", False, None, None)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidRequestError), (401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError),
     (408, ProviderTimeout), (413, InvalidRequestError), (422, InvalidRequestError), (429, RateLimitError),
     (500, ServerError), (502, ServerError), (503, OverloadedError), (504, ServerError), (529, OverloadedError),
     (418, ProviderError)],
)  # fmt: skip
def test_error_for_status_picks_the_class(status, cls):
    err = error_for_status(status, provider="anthropic")
    assert type(err) is cls
    assert err.status == status
    assert err.provider == "anthropic"
    assert err.message == f"HTTP {status}"


def test_error_for_status_passes_message_and_fields_through():
    err = error_for_status(429, "slow down", request_id="req_9", retry_after=4.0)
    assert (err.message, err.request_id, err.retry_after) == ("slow down", "req_9", 4.0)
    assert classify(err) == Classification("rate_limit", True, 4.0, 429)


# --------------------------------------------------------------------------- str() and pickling


def test_str_is_one_short_line_with_provider_status_request_id_and_retry_after():
    err = RateLimitError("Rate limit reached", status=429, provider="openai", request_id="req_abc", retry_after=3)
    assert str(err) == "[openai 429] Rate limit reached (request_id=req_abc, retry after 3s)"


def test_str_of_a_bare_error_is_its_message():
    assert str(ProviderTimeout("no answer in 30s")) == "no answer in 30s"


def test_str_of_a_circuit_open_error_says_when_to_retry():
    assert str(CircuitOpenError("circuit 'openai' is open", retry_after=12.5)) == (
        "circuit 'openai' is open (retry after 12.5s)"
    )


def test_str_truncates_a_long_message():
    err = ServerError("x" * 5000, status=500, provider="openai")
    text = str(err)
    assert text == "[openai 500] " + "x" * 299 + "…"
    assert err.message == "x" * 5000


def test_str_puts_a_multi_line_body_on_one_line():
    html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n</body>\n</html>\n"
    assert str(ServerError(html, status=502)) == "[502] <html> <head><title>502 Bad Gateway</title></head> <body> </body> </html>"


def test_str_of_an_empty_message_has_no_dangling_space():
    assert str(ServerError("", status=500, provider="openai")) == "[openai 500]"
    assert str(CircuitOpenError(retry_after=2)) == "(retry after 2s)"


def test_str_never_contains_an_api_key_from_the_message():
    err = AuthenticationError(f"Incorrect API key provided: {FAKE_KEY}", status=401, provider="openai")
    assert FAKE_KEY not in str(err)
    assert str(err) == "[openai 401] Incorrect API key provided: sk-…a1b2"


def test_repr_and_args_never_contain_an_api_key():
    err = AuthenticationError(f"bad key {FAKE_KEY}", status=401)
    assert FAKE_KEY not in repr(err)
    assert FAKE_KEY not in str(err.args)
    assert repr(err) == "AuthenticationError('[401] bad key sk-…a1b2')"


def test_str_never_contains_an_api_key_from_the_body():
    body = {"error": {"message": f"invalid x-api-key {FAKE_ANTHROPIC_KEY}"}, "headers": {"x-api-key": FAKE_ANTHROPIC_KEY}}
    err = AuthenticationError("invalid x-api-key", status=401, provider="anthropic", body=body)
    assert FAKE_ANTHROPIC_KEY not in str(err)
    assert FAKE_ANTHROPIC_KEY not in repr(err)


def test_str_never_contains_an_api_key_cut_by_truncation():
    err = ServerError("x" * 280 + FAKE_KEY + " trailing", status=500)
    assert "QQQQ" not in str(err)


def test_str_never_contains_an_api_key_assigned_after_construction():
    err = ProviderError("fine", provider="openai")
    err.message = f"Bearer {FAKE_KEY}"
    err.request_id = FAKE_KEY
    assert FAKE_KEY not in str(err)


def test_str_never_contains_a_key_given_as_api_key_assignment():
    err = InvalidRequestError("request had api_key=" + "k" * 30 + "wxyz", status=400)
    assert str(err) == "[400] request had api_key=…wxyz"


def test_pickle_round_trip_keeps_type_and_fields():
    err = RateLimitError("slow", status=429, provider="openai", request_id="req_1", retry_after=2.5, body={"b": [1]})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert (back.message, back.status, back.provider, back.request_id, back.retry_after, back.body) == (
        "slow", 429, "openai", "req_1", 2.5, {"b": [1]},
    )  # fmt: skip
    assert str(back) == str(err)


def test_pickle_round_trip_of_a_toolkit_error_keeps_retry_after():
    back = pickle.loads(pickle.dumps(CircuitOpenError("open", retry_after=4.0)))
    assert type(back) is CircuitOpenError
    assert back.retry_after == 4.0
    assert classify(back) == Classification("overloaded", True, 4.0, None)


def test_pickle_round_trip_keeps_notes():
    err = ServerError("boom", status=500)
    err.add_note("gave up after 5 attempts")
    back = pickle.loads(pickle.dumps(err))
    assert back.__notes__ == ["gave up after 5 attempts"]


# --------------------------------------------------------------------------- classify: requests


def requests_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response.url = "https://api.example.test/v1/chat"
    return requests.HTTPError(f"{status} Error", response=response)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(400, "invalid", False), (401, "auth", False), (403, "auth", False), (404, "not_found", False),
     (408, "timeout", True), (409, "other", True), (422, "invalid", False), (500, "server", True),
     (502, "server", True), (503, "overloaded", True), (529, "overloaded", True)],
)  # fmt: skip
def test_classify_requests_http_error_by_status(status, kind, retryable):
    assert classify(requests_error(status)) == Classification(kind, retryable, None, status)


def test_classify_requests_429_with_retry_after():
    assert classify(requests_error(429, {"Retry-After": "3"})) == Classification("rate_limit", True, 3.0, 429)


def test_classify_requests_503_with_retry_after_date():
    headers = {"Retry-After": http_date(NOW + 20)}
    with clock.use(FakeClock(wall=NOW)):
        assert classify(requests_error(503, headers)) == Classification("overloaded", True, 20.0, 503)


def test_classify_measures_an_http_date_retry_after_against_the_given_now():
    headers = {"Retry-After": http_date(NOW + 20)}
    # The installed clock is a minute behind: a layer with its own clock passes its time as now=.
    with clock.use(FakeClock(wall=NOW - 60)):
        assert classify(requests_error(429, headers), now=NOW) == Classification("rate_limit", True, 20.0, 429)
        assert classify(requests_error(503, headers), now=NOW + 20) == Classification("overloaded", True, None, 503)
        assert classify(requests_error(503, headers)).retry_after == 80.0  # no now=: the installed clock


def test_classify_now_does_not_touch_hints_in_seconds_or_the_toolkits_own_errors():
    assert classify(requests_error(429, {"Retry-After": "3"}), now=0.0).retry_after == 3.0
    assert classify(RateLimitError("slow", status=429, retry_after=4.5), now=0.0).retry_after == 4.5
    assert classify(requests.Timeout("read timed out"), now=NOW) == Classification("timeout", True, None, None)


def test_classify_requests_timeout():
    assert classify(requests.Timeout("read timed out")) == Classification("timeout", True, None, None)
    assert classify(requests.exceptions.ReadTimeout()) == Classification("timeout", True, None, None)


def test_classify_requests_connect_timeout_as_timeout():
    # ConnectTimeout is both a ConnectionError and a Timeout; timing out is the more precise fact.
    assert classify(requests.exceptions.ConnectTimeout()).kind == "timeout"


def test_classify_requests_connection_error():
    assert classify(requests.ConnectionError("refused")) == Classification("connection", True, None, None)


def test_classify_requests_chunked_encoding_error_as_connection():
    err = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    assert classify(err) == Classification("connection", True, None, None)


def test_classify_requests_http_error_without_response_is_other():
    assert classify(requests.HTTPError("no response")) == Classification("other", False, None, None)


# --------------------------------------------------------------------------- classify: x-should-retry


def test_x_should_retry_true_makes_a_400_retryable():
    err = requests_error(400, {"x-should-retry": "true"})
    assert classify(err) == Classification("invalid", True, None, 400)


def test_x_should_retry_false_makes_a_503_final():
    err = requests_error(503, {"X-Should-Retry": "false", "Retry-After": "5"})
    assert classify(err) == Classification("overloaded", False, 5.0, 503)


def test_x_should_retry_with_another_value_leaves_the_status_decision():
    assert classify(requests_error(503, {"x-should-retry": "maybe"})).retryable is True
    assert classify(requests_error(400, {"x-should-retry": "1"})).retryable is False


# --------------------------------------------------------------------------- classify: httpx


def httpx_status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://api.example.test/v1/chat")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"{status}", request=request, response=response)


def test_classify_httpx_status_error_429_with_retry_after_ms():
    err = httpx_status_error(429, {"retry-after-ms": "1200", "retry-after": "2"})
    assert classify(err) == Classification("rate_limit", True, 1.2, 429)


def test_classify_httpx_status_error_401():
    assert classify(httpx_status_error(401)) == Classification("auth", False, None, 401)


def test_classify_httpx_status_error_500():
    assert classify(httpx_status_error(500)) == Classification("server", True, None, 500)


def test_classify_httpx_read_timeout():
    assert classify(httpx.ReadTimeout("timed out")) == Classification("timeout", True, None, None)


def test_classify_httpx_connect_error():
    assert classify(httpx.ConnectError("refused")) == Classification("connection", True, None, None)


def test_classify_httpx_remote_protocol_error_as_connection():
    assert classify(httpx.RemoteProtocolError("peer closed")) == Classification("connection", True, None, None)


# --------------------------------------------------------------------------- classify: openai / anthropic SDKs


def sdk_response(httpx_module, status: int, headers: dict[str, str] | None = None, url: str = ""):
    request = httpx_module.Request("POST", url or "https://api.example.test/v1/messages")
    return httpx_module.Response(status, headers=headers, request=request)


def sdk_httpx(sdk):
    """The httpx-compatible module the SDK is built on (httpx, or its successor httpx2)."""
    module = getattr(sdk._exceptions, "httpx2", None) or getattr(sdk._exceptions, "httpx", None)
    assert module is not None
    return module


def test_classify_openai_rate_limit_error_with_retry_after_ms():
    openai = pytest.importorskip("openai")
    hx = sdk_httpx(openai)
    response = sdk_response(hx, 429, {"retry-after-ms": "1500", "retry-after": "2", "x-request-id": "req_1"})
    err = openai.RateLimitError("Rate limit reached", response=response, body=None)
    assert classify(err) == Classification("rate_limit", True, 1.5, 429)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(400, "invalid", False), (401, "auth", False), (404, "not_found", False), (409, "other", True),
     (422, "invalid", False), (500, "server", True), (503, "overloaded", True)],
)  # fmt: skip
def test_classify_openai_api_status_error(status, kind, retryable):
    openai = pytest.importorskip("openai")
    err = openai.APIStatusError("error", response=sdk_response(sdk_httpx(openai), status), body=None)
    assert classify(err) == Classification(kind, retryable, None, status)


def test_classify_openai_x_should_retry_false_on_a_500():
    openai = pytest.importorskip("openai")
    response = sdk_response(sdk_httpx(openai), 500, {"x-should-retry": "false"})
    err = openai.InternalServerError("error", response=response, body=None)
    assert classify(err) == Classification("server", False, None, 500)


def test_classify_openai_timeout():
    openai = pytest.importorskip("openai")
    err = openai.APITimeoutError(request=sdk_httpx(openai).Request("POST", "https://api.example.test"))
    assert classify(err) == Classification("timeout", True, None, None)


def test_classify_openai_connection_error():
    openai = pytest.importorskip("openai")
    err = openai.APIConnectionError(request=sdk_httpx(openai).Request("POST", "https://api.example.test"))
    assert classify(err) == Classification("connection", True, None, None)


def test_classify_anthropic_overloaded_529():
    anthropic = pytest.importorskip("anthropic")
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    response = sdk_response(sdk_httpx(anthropic), 529, {"request-id": "req_011"})
    overloaded = getattr(anthropic, "OverloadedError", anthropic.InternalServerError)  # named class in newer SDKs
    err = overloaded("Overloaded", response=response, body=body)
    assert classify(err) == Classification("overloaded", True, None, 529)


def test_classify_anthropic_rate_limit_error_with_retry_after():
    anthropic = pytest.importorskip("anthropic")
    response = sdk_response(sdk_httpx(anthropic), 429, {"retry-after": "10"})
    err = anthropic.RateLimitError("rate_limit_error", response=response, body=None)
    assert classify(err) == Classification("rate_limit", True, 10.0, 429)


def test_classify_anthropic_authentication_error():
    anthropic = pytest.importorskip("anthropic")
    err = anthropic.AuthenticationError("invalid x-api-key", response=sdk_response(sdk_httpx(anthropic), 401), body=None)
    assert classify(err) == Classification("auth", False, None, 401)


def test_classify_anthropic_bad_request_error_with_x_should_retry_true():
    anthropic = pytest.importorskip("anthropic")
    response = sdk_response(sdk_httpx(anthropic), 400, {"x-should-retry": "true"})
    err = anthropic.BadRequestError("bad", response=response, body=None)
    assert classify(err) == Classification("invalid", True, None, 400)


def test_classify_anthropic_timeout():
    anthropic = pytest.importorskip("anthropic")
    err = anthropic.APITimeoutError(request=sdk_httpx(anthropic).Request("POST", "https://api.example.test"))
    assert classify(err) == Classification("timeout", True, None, None)


def test_classify_anthropic_connection_error():
    anthropic = pytest.importorskip("anthropic")
    err = anthropic.APIConnectionError(request=sdk_httpx(anthropic).Request("POST", "https://api.example.test"))
    assert classify(err) == Classification("connection", True, None, None)


# --------------------------------------------------------------------------- classify: botocore


def boto_client_error(code: str, status: int, headers: dict[str, str] | None = None):
    exceptions = pytest.importorskip("botocore.exceptions")
    response = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return exceptions.ClientError(response, "InvokeModel")


def test_classify_botocore_body_cut_off_mid_way_is_a_retryable_connection_error():
    # s3transfer retries these itself; the S3 adapter turns its retries off, so ours must see them.
    exceptions = pytest.importorskip("botocore.exceptions")
    for exc in (exceptions.IncompleteReadError(actual_bytes=1, expected_bytes=2), exceptions.ResponseStreamingError(error="reset")):
        assert classify(exc) == Classification("connection", True, None, None)


def test_classify_botocore_throttling_exception():
    assert classify(boto_client_error("ThrottlingException", 429)) == Classification("rate_limit", True, None, 429)


def test_classify_botocore_throttling_by_code_even_on_a_400():
    # DynamoDB and older AWS APIs throttle with HTTP 400; the code is what counts.
    err = boto_client_error("ProvisionedThroughputExceededException", 400)
    assert classify(err) == Classification("rate_limit", True, None, 400)


def test_classify_botocore_validation_exception():
    assert classify(boto_client_error("ValidationException", 400)) == Classification("invalid", False, None, 400)


def test_classify_botocore_service_unavailable_exception():
    err = boto_client_error("ServiceUnavailableException", 503, {"retry-after": "4"})
    assert classify(err) == Classification("overloaded", True, 4.0, 503)


def test_classify_botocore_unknown_code_falls_back_to_the_status():
    assert classify(boto_client_error("SomethingNewException", 500)) == Classification("server", True, None, 500)
    assert classify(boto_client_error("SomethingNewException", 400)) == Classification("invalid", False, None, 400)


def test_classify_botocore_read_timeout():
    exceptions = pytest.importorskip("botocore.exceptions")
    err = exceptions.ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
    assert classify(err) == Classification("timeout", True, None, None)


def test_classify_botocore_endpoint_connection_error():
    exceptions = pytest.importorskip("botocore.exceptions")
    err = exceptions.EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
    assert classify(err) == Classification("connection", True, None, None)


# --------------------------------------------------------------------------- classify: builtins


def test_classify_builtin_timeout_error():
    assert classify(TimeoutError("timed out")) == Classification("timeout", True, None, None)


def test_classify_builtin_connection_error_and_its_subclasses():
    for err in (ConnectionError("x"), ConnectionResetError("x"), ConnectionRefusedError("x"), BrokenPipeError("x")):
        assert classify(err) == Classification("connection", True, None, None)


def test_classify_value_error_is_other_and_final():
    assert classify(ValueError("bad input")) == Classification("other", False, None, None)


def test_classify_a_plain_os_error_is_other_and_final():
    assert classify(FileNotFoundError(2, "No such file")) == Classification("other", False, None, None)


def test_classify_an_exception_with_a_non_numeric_status_ignores_it():
    err = RuntimeError("odd")
    err.status_code = "429"  # type: ignore[attr-defined]
    err.response = object()  # type: ignore[attr-defined]
    assert classify(err) == Classification("other", False, None, None)


@pytest.mark.parametrize(
    ("code", "kind"),
    [("throttlingException", "rate_limit"), ("modelStreamErrorException", "server"),
     ("serviceUnavailableException", "overloaded"), ("validationException", "invalid")],
)  # fmt: skip
def test_classify_botocore_event_stream_codes_in_lower_camel_case(code, kind):
    # botocore's EventStreamError names the stream's member ("throttlingException"), with no HTTP status.
    exceptions = pytest.importorskip("botocore.exceptions")
    err = exceptions.EventStreamError({"Error": {"Code": code, "Message": "m"}}, "InvokeModelWithResponseStream")
    assert classify(err).kind == kind
