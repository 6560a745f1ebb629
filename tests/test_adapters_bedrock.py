"""Claude on Bedrock against the emulator's Bedrock route, which boto3's own bedrock-runtime client judges first."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import importlib.util
import json
import socket
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

botocore = pytest.importorskip("botocore")

import botocore.exceptions  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from resilient import (  # noqa: E402
    AuthenticationError,
    Classification,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
    classify,
)
from resilient.adapters import anthropic, bedrock  # noqa: E402
from resilient.secrets import fingerprint  # noqa: E402
from resilient.testing.emulator.protocols.bedrock import frame  # noqa: E402

KEY_ID, SECRET = "AKIDEMULATED0001", "emulated-secret-not-real"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch) -> None:
    """Placeholder credentials and region; nothing may look for real ones (files, instance metadata)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(bedrock, "_botocore_session", None)  # resolve the placeholders, not a cached chain


def chat(emulator, **kwargs):
    return bedrock.chat(USER, model=MODEL, endpoint_url=emulator.url, **kwargs)


def stream(emulator, **kwargs):
    return list(bedrock.stream_chat(USER, model=MODEL, endpoint_url=emulator.url, **kwargs))


def boto3_client(emulator):
    boto3 = pytest.importorskip("boto3")
    config = botocore.config.Config(retries={"total_max_attempts": 1})
    return boto3.session.Session().client("bedrock-runtime", endpoint_url=emulator.url, region_name="us-east-1", config=config)


# ------------------------------------------------------------ the emulator, judged by boto3


def test_the_official_client_reads_the_emulated_invoke_model(emulator) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": USER}

    answer = boto3_client(emulator).invoke_model(modelId=MODEL, body=json.dumps(body))

    message = json.loads(answer["body"].read())
    assert message["model"] == MODEL and message["stop_reason"] == "end_turn"
    assert message["content"][0]["text"].startswith("Emulated answer to: What is a circuit breaker?")
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == str(
        message["usage"]["output_tokens"]
    )


def test_the_official_client_reads_the_emulated_event_stream(emulator) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": USER}

    answer = boto3_client(emulator).invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))

    events = [json.loads(e["chunk"]["bytes"]) for e in answer["body"]]
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-1]["type"] == "message_stop"
    assert events[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == events[-2]["usage"]["output_tokens"]


def test_the_official_client_sees_a_cut_stream_as_its_exception(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": USER}
    client = boto3_client(emulator)

    answer = client.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))

    with pytest.raises(botocore.exceptions.EventStreamError) as caught:
        list(answer["body"])

    assert caught.value.response["Error"]["Code"] == "internalServerException"
    assert classify(caught.value) == Classification("server", True, None, None)  # retried like a 500


def test_the_official_client_reads_the_emulated_errors(emulator) -> None:
    emulator.add_fault("outage", status=503)
    client = boto3_client(emulator)

    with pytest.raises(client.exceptions.ServiceUnavailableException) as caught:
        client.invoke_model(modelId=MODEL, body=json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9,
                                                            "messages": USER}))  # fmt: skip

    assert classify(caught.value).kind == "overloaded"


# ------------------------------------------------------------ the adapter


def test_chat_answers_as_the_anthropic_adapter_does(emulator) -> None:
    direct = anthropic.chat(USER, model=MODEL, api_key="k", base_url=emulator.url)

    got = chat(emulator)

    assert (got["text"], got["finish_reason"], got["usage"], got["model"]) == (
        direct["text"], "stop", direct["usage"], MODEL
    )  # fmt: skip
    assert got["request_id"].startswith("bdrk-")
    assert emulator.requests[-1].path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"


def test_the_body_is_the_messages_body_with_the_bedrock_version_and_no_model() -> None:
    body = bedrock.invoke_body(
        [{"role": "system", "content": "Be brief."}, *USER], 50, 0.2, None, [WEATHER], {"type": "any"}, "END", {}
    )

    assert body == {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": USER, "system": "Be brief.",
        "temperature": 0.2, "tools": [WEATHER], "tool_choice": {"type": "any"}, "stop_sequences": ["END"],
    }  # fmt: skip
    assert next(iter(body)) == "anthropic_version"


def test_tool_use(emulator) -> None:
    got = chat(emulator, tools=[WEATHER], tool_choice={"type": "any"})

    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [("get_weather", {"city": "What is a"})]


def test_the_stream_adds_up_to_the_answer_and_assembles_tool_input(emulator) -> None:
    whole = chat(emulator, tools=[WEATHER], tool_choice={"type": "any"})

    chunks = stream(emulator, tools=[WEATHER], tool_choice={"type": "any"})

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert [c["done"] for c in chunks].count(True) == 1 and chunks[-1]["done"]
    assert chunks[-1]["finish_reason"] == "tool_calls" and chunks[-1]["usage"] == whole["usage"]
    assert [(c["name"], c["arguments"]) for c in chunks[-1]["tool_calls"]] == [
        (c["name"], c["arguments"]) for c in whole["tool_calls"]
    ]
    assert chunks[-1]["request_id"].startswith("bdrk-")


def test_requests_are_signed_with_sigv4_for_bedrock_and_the_region(emulator) -> None:
    chat(emulator, region="eu-west-3")

    assert emulator.requests[-1].key == fingerprint(KEY_ID)


def test_explicit_credentials_win_over_the_environment(emulator) -> None:
    chat(emulator, aws_access_key_id="AKIDEXPLICIT0002", aws_secret_access_key="s")

    assert emulator.requests[-1].key == fingerprint("AKIDEXPLICIT0002")


def test_a_bedrock_api_key_is_sent_as_a_bearer_token(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-0003")

    chat(emulator)

    assert emulator.requests[-1].key == fingerprint("bedrock-api-key-0003")


def test_missing_credentials_are_an_authentication_error_naming_the_variables(emulator, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(AuthenticationError) as caught:
        chat(emulator)

    assert "AWS_ACCESS_KEY_ID" in caught.value.message and "AWS_BEARER_TOKEN_BEDROCK" in caught.value.message
    assert emulator.requests == []


def test_the_signature_is_sigv4_computed_independently(monkeypatch) -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    url = f"https://bedrock-runtime.eu-west-3.amazonaws.com/model/{quote(MODEL, safe='')}/invoke"
    body = b'{"anthropic_version": "bedrock-2023-05-31"}'
    base = {"Content-Type": "application/json", "Accept": "application/json"}

    headers = bedrock.signed_headers("POST", url, body, base, "eu-west-3", Credentials(KEY_ID, SECRET, "tok"))

    assert headers["X-Amz-Date"] == "20260102T030405Z" and headers["X-Amz-Security-Token"] == "tok"
    assert headers["Authorization"] == sigv4(url, body, {**base, "X-Amz-Date": "20260102T030405Z",
                                                         "X-Amz-Security-Token": "tok"}, "eu-west-3")  # fmt: skip


def sigv4(url: str, body: bytes, headers: dict[str, str], region: str) -> str:
    """AWS Signature Version 4 from its specification, for a request with no query string."""
    parts = urlsplit(url)
    signed = {name.lower(): value.strip() for name, value in {**headers, "host": parts.netloc}.items()}
    names = ";".join(sorted(signed))
    canonical = "\n".join(
        ["POST", quote(parts.path, safe="/~"), "", *(f"{n}:{signed[n]}" for n in sorted(signed)), "", names,
         hashlib.sha256(body).hexdigest()]
    )  # fmt: skip
    stamp = headers["X-Amz-Date"]
    scope = f"{stamp[:8]}/{region}/bedrock/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{SECRET}".encode()
    for part in (stamp[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, SignedHeaders={names}, Signature={signature}"


# ------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("fault", "error", "kind"),
    [
        ({"kind": "bad_key", "keys": [KEY_ID]}, AuthenticationError, "UnrecognizedClientException"),
        ({"kind": "outage", "status": 500}, ServerError, "InternalServerException"),
        ({"kind": "outage", "status": 503}, OverloadedError, "ServiceUnavailableException"),
    ],
)
def test_http_errors_are_placed_by_their_bedrock_type(emulator, fault, error, kind) -> None:
    emulator.add_fault(fault.pop("kind"), **fault)

    with pytest.raises(error) as caught:
        chat(emulator)

    assert caught.value.message.startswith(f"{kind}: ") and caught.value.provider == "bedrock"
    assert caught.value.request_id.startswith("bdrk-")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # Bedrock itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced)
    chat(emulator)

    with pytest.raises(RateLimitError) as caught:
        chat(emulator)

    assert caught.value.status == 429 and caught.value.message.startswith("ThrottlingException: ")
    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_an_extraneous_body_key_is_a_validation_error(emulator) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat(emulator, stream=True)

    assert caught.value.status == 400 and "ValidationException: " in caught.value.message


def test_a_malformed_body_is_a_provider_error(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError) as caught:
        chat(emulator)

    assert caught.value.status == 200 and "malformed response" in str(caught.value)


def test_a_stream_cut_without_a_word_raises_a_connection_error(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        stream(emulator)


def test_an_exception_frame_mid_stream_raises_its_type(emulator) -> None:
    emulator.add_fault("truncate_stream", after=3, error=True)

    with pytest.raises(ServerError) as caught:
        stream(emulator)

    assert caught.value.message.startswith("InternalServerException: ") and "mid-stream" in caught.value.message


def test_a_damaged_frame_is_a_malformed_response(emulator) -> None:
    emulator.add_fault("malformed")

    with pytest.raises(ProviderError) as caught:
        stream(emulator)

    assert "malformed response" in str(caught.value)


def test_an_unreachable_endpoint_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there

    with pytest.raises(ProviderConnectionError):
        bedrock.chat(USER, model=MODEL, endpoint_url=f"http://127.0.0.1:{port}", timeout=2)


def test_a_slow_answer_is_a_provider_timeout(emulator) -> None:
    emulator.add_fault("latency", seconds=0.5)

    with pytest.raises(ProviderTimeout):
        chat(emulator, timeout=0.05)


@pytest.mark.parametrize(
    ("kind", "status", "error", "retryable"),
    [
        ("ThrottlingException", 429, RateLimitError, True),
        ("ModelNotReadyException", 429, OverloadedError, True),
        ("ModelTimeoutException", 408, ProviderTimeout, True),
        ("ServiceUnavailableException", 503, OverloadedError, True),
        ("InternalServerException", 500, ServerError, True),
        ("ModelErrorException", 424, ServerError, True),
        ("ValidationException", 400, InvalidRequestError, False),
        ("AccessDeniedException", 403, AuthenticationError, False),
        ("ResourceNotFoundException", 404, NotFoundError, False),
        ("ServiceQuotaExceededException", 400, InvalidRequestError, False),
    ],
)
def test_bedrock_error_types_map_to_the_taxonomy(kind, status, error, retryable) -> None:
    exc = bedrock.error_for_type(f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/", status, "no")

    assert type(exc) is error and exc.status == status and exc.message == f"{kind}: no"
    assert classify(exc).retryable is retryable


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [("throttlingException", 429, RateLimitError), ("modelStreamErrorException", 424, ServerError),
     ("modelTimeoutException", 408, ProviderTimeout), ("validationException", 400, InvalidRequestError)],
)  # fmt: skip
def test_stream_exception_frames_map_to_the_taxonomy_with_their_status(kind, status, error) -> None:
    exc = bedrock.error_for_type(kind, None, "no")

    assert type(exc) is error and exc.status == status


def test_the_emulators_frames_are_what_botocore_parses() -> None:
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(frame({":message-type": "event", ":event-type": "chunk"}, b'{"bytes":"e30="}'))

    (message,) = list(buffer)

    assert message.headers == {":message-type": "event", ":event-type": "chunk"}
    assert message.payload == b'{"bytes":"e30="}'


# ------------------------------------------------------------ example


def test_the_example_runs_on_the_emulator(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    path = Path(__file__).resolve().parents[1] / "examples" / "bedrock_chat.py"
    spec = importlib.util.spec_from_file_location("bedrock_chat", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    result = example.main()

    assert result["answer"].startswith("Emulated answer to:")
    assert result["streamed"] == result["answer"]
    assert result["tool_calls"][0]["name"] == "get_weather"


def test_the_bedrock_client_signs_keyless_calls_and_counts_them(emulator) -> None:
    client = bedrock.Client(region="us-east-1", endpoint_url=emulator.url)

    result = client.chat(USER, model=MODEL)
    chunks = list(client.stream_chat(USER, model=MODEL))

    assert [r.key for r in emulator.requests] == [fingerprint(KEY_ID)] * 2  # SigV4 with the AWS credentials
    stats = client.get_stats()
    assert list(stats["keys"]) == ["no-key"] and stats["successful_requests"] == 2
    assert stats["output_tokens"] == result["usage"]["output_tokens"] + chunks[-1]["usage"]["output_tokens"]
    assert [layer["layer"] for layer in client.describe()] == ["queue", "circuit", "backoff", "multiplex"]


def test_the_bedrock_client_spreads_calls_over_bedrock_api_keys(emulator) -> None:
    keys = ["bedrock-api-key-" + "0004", "bedrock-api-key-" + "0005"]
    client = bedrock.Client(keys, endpoint_url=emulator.url)

    for _ in range(2):
        client.chat(USER, model=MODEL)

    assert [r.key for r in emulator.requests] == [fingerprint(k) for k in keys]
