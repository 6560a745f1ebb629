"""OpenAI and Anthropic adapters against the emulator, judged field by field by the official SDKs."""

from __future__ import annotations

import io
import json

import pytest
import requests

from resilient import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
    backoff,
    classify,
)
from resilient.adapters import anthropic, groq, openai, openai_compatible
from resilient.request_ids import request_id

KEY = "test-key-0001"
WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
USER = [{"role": "user", "content": "What is a circuit breaker?"}]


def openai_chat(emulator, **kwargs):
    return openai.chat(USER, model="gpt-4o-mini", api_key=KEY, base_url=emulator.url + "/v1", **kwargs)


def anthropic_chat(emulator, **kwargs):
    return anthropic.chat(USER, model="claude-emulated", api_key=KEY, base_url=emulator.url, **kwargs)


# ----------------------------------------------------------------- OpenAI


def test_openai_chat_matches_the_official_sdk(emulator) -> None:
    sdk = pytest.importorskip("openai").OpenAI(api_key=KEY, base_url=emulator.url + "/v1", max_retries=0)
    expected = sdk.chat.completions.create(model="gpt-4o-mini", messages=USER)

    got = openai_chat(emulator)

    assert got["text"] == expected.choices[0].message.content
    assert got["model"] == expected.model
    assert got["finish_reason"] == expected.choices[0].finish_reason == "stop"
    assert got["usage"] == {
        "input_tokens": expected.usage.prompt_tokens,
        "output_tokens": expected.usage.completion_tokens,
        "total_tokens": expected.usage.total_tokens,
    }
    assert got["request_id"].startswith("req_")
    assert got["tool_calls"] == []


def test_openai_tool_call_matches_the_official_sdk(emulator) -> None:
    import json

    sdk = pytest.importorskip("openai").OpenAI(api_key=KEY, base_url=emulator.url + "/v1", max_retries=0)
    expected = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=USER, tools=[WEATHER_OPENAI], tool_choice="required"
    )
    call = expected.choices[0].message.tool_calls[0]

    got = openai_chat(emulator, tools=[WEATHER_OPENAI], tool_choice="required")

    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [
        (call.function.name, json.loads(call.function.arguments))
    ]


def test_openai_stream_yields_the_same_text_and_a_final_chunk(emulator) -> None:
    whole = openai_chat(emulator)

    chunks = list(openai.stream_chat(USER, model="gpt-4o-mini", api_key=KEY, base_url=emulator.url + "/v1"))

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert [c["done"] for c in chunks].count(True) == 1 and chunks[-1]["done"]
    assert chunks[-1]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == whole["usage"]


def test_openai_stream_assembles_tool_calls(emulator) -> None:
    whole = openai_chat(emulator, tools=[WEATHER_OPENAI], tool_choice="required")

    *_, last = openai.stream_chat(
        USER, model="gpt-4o-mini", api_key=KEY, base_url=emulator.url + "/v1", tools=[WEATHER_OPENAI],
        tool_choice="required",
    )  # fmt: skip

    assert last["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in last["tool_calls"]] == [
        (c["name"], c["arguments"]) for c in whole["tool_calls"]
    ]


def test_openai_embeddings_in_input_order(emulator) -> None:
    result = openai.embed(["alpha", "beta", "alpha"], api_key=KEY, base_url=emulator.url + "/v1")

    assert len(result["embeddings"]) == 3
    assert result["embeddings"][0] == result["embeddings"][2] != result["embeddings"][1]
    assert len(result["embeddings"][0]) == 1536


def test_openai_text_to_image_returns_urls_or_base64(emulator) -> None:
    result = openai.text_to_image("a lighthouse", api_key=KEY, base_url=emulator.url + "/v1", response_format="b64_json")

    assert list(result["images"][0]) == ["b64_json"]


# ----------------------------------------------------------------- Anthropic


def test_anthropic_chat_matches_the_official_sdk(emulator) -> None:
    sdk = pytest.importorskip("anthropic").Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)
    expected = sdk.messages.create(model="claude-emulated", max_tokens=4096, messages=USER)

    got = anthropic_chat(emulator)

    assert got["text"] == expected.content[0].text
    assert got["model"] == expected.model
    assert expected.stop_reason == "end_turn" and got["finish_reason"] == "stop"
    assert got["usage"] == {
        "input_tokens": expected.usage.input_tokens,
        "output_tokens": expected.usage.output_tokens,
        "total_tokens": expected.usage.input_tokens + expected.usage.output_tokens,
    }
    assert got["request_id"]


def test_anthropic_tool_use_matches_the_official_sdk(emulator) -> None:
    sdk = pytest.importorskip("anthropic").Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)
    expected = sdk.messages.create(
        model="claude-emulated", max_tokens=1024, messages=USER, tools=[WEATHER_ANTHROPIC],
        tool_choice={"type": "any"},
    )  # fmt: skip
    block = next(b for b in expected.content if b.type == "tool_use")

    got = anthropic_chat(emulator, tools=[WEATHER_ANTHROPIC], tool_choice={"type": "any"}, max_tokens=1024)

    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [(block.name, block.input)]


def test_anthropic_stream_text_usage_and_tool_input_from_json_deltas(emulator) -> None:
    whole = anthropic_chat(emulator, tools=[WEATHER_ANTHROPIC], tool_choice={"type": "any"})

    chunks = list(
        anthropic.stream_chat(
            USER, model="claude-emulated", api_key=KEY, base_url=emulator.url, tools=[WEATHER_ANTHROPIC],
            tool_choice={"type": "any"},
        )
    )  # fmt: skip

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert chunks[-1]["done"] and chunks[-1]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == whole["usage"]
    assert [(c["name"], c["arguments"]) for c in chunks[-1]["tool_calls"]] == [
        (c["name"], c["arguments"]) for c in whole["tool_calls"]
    ]


def test_anthropic_system_messages_move_to_the_system_parameter() -> None:
    body = anthropic.request_body(
        [{"role": "system", "content": "Be brief."}, *USER], "claude-emulated", None, None, "You are kind.",
        None, None, "END", {},
    )  # fmt: skip

    assert body["system"] == "You are kind.\n\nBe brief."
    assert body["messages"] == USER
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert body["stop_sequences"] == ["END"]


# ----------------------------------------------------------------- errors, both providers

CALLS = {
    "openai": lambda emu, **kw: openai_chat(emu, **kw),
    "anthropic": lambda emu, **kw: anthropic_chat(emu, **kw),
}
STREAMS = {
    "openai": lambda emu: list(openai.stream_chat(USER, model="gpt-4o-mini", api_key=KEY, base_url=emu.url + "/v1")),
    "anthropic": lambda emu: list(anthropic.stream_chat(USER, model="claude-emulated", api_key=KEY, base_url=emu.url)),
}


@pytest.mark.parametrize("provider", CALLS)
@pytest.mark.parametrize(
    ("status", "error"), [(500, ServerError), (503, OverloadedError), (401, AuthenticationError)]
)
def test_http_errors_become_the_taxonomy(emulator, provider: str, status: int, error: type) -> None:
    if status == 401:
        emulator.add_fault("bad_key", keys=[KEY])
    else:
        emulator.add_fault("outage", status=status)

    with pytest.raises(error) as caught:
        CALLS[provider](emulator)

    assert caught.value.status == status
    assert caught.value.provider == provider
    assert caught.value.request_id
    assert KEY not in str(caught.value)


def test_anthropic_529_is_overloaded(emulator) -> None:
    emulator.add_fault("outage", status=529, provider="anthropic")

    with pytest.raises(OverloadedError) as caught:
        anthropic_chat(emulator)

    assert caught.value.status == 529
    assert "overloaded_error" in caught.value.message


@pytest.mark.parametrize("provider", CALLS)
def test_429_carries_retry_after_from_the_headers(emulator, fake_clock, provider: str) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)
    CALLS[provider](emulator)

    with pytest.raises(RateLimitError) as caught:
        CALLS[provider](emulator)

    assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)


def test_unknown_path_is_not_found(emulator) -> None:
    with pytest.raises(NotFoundError):
        openai.chat(USER, model="gpt-4o-mini", api_key=KEY, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize("provider", CALLS)
def test_malformed_body_is_a_provider_error_with_status_and_excerpt(emulator, provider: str) -> None:
    emulator.add_fault("malformed")

    with pytest.raises(ProviderError) as caught:
        CALLS[provider](emulator)

    assert caught.value.status == 200
    assert "malformed response" in str(caught.value)


@pytest.mark.parametrize("provider", STREAMS)
def test_a_truncated_stream_raises_instead_of_ending_quietly(emulator, provider: str) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        STREAMS[provider](emulator)


def test_anthropic_error_event_mid_stream_raises_its_type(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True, provider="anthropic")

    with pytest.raises(ServerError, match="api_error: .*mid-stream"):
        STREAMS["anthropic"](emulator)


def test_connection_refused_is_a_connection_error() -> None:
    with pytest.raises(ProviderConnectionError):
        openai.chat(USER, model="gpt-4o-mini", api_key=KEY, base_url="http://127.0.0.1:9/v1", timeout=2)


def test_missing_key_names_the_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        openai.chat(USER, model="gpt-4o-mini")


def test_key_is_read_from_a_dotenv_file(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")

    assert anthropic.chat(USER, model="claude-emulated", base_url=emulator.url)["text"]


def test_request_id_from_the_context_is_sent(emulator) -> None:
    session = requests.Session()
    sent = []
    session.hooks["response"].append(lambda response, **_: sent.append(response.request.headers.get("X-Request-ID")))

    with request_id("trace-42"):
        openai_chat(emulator, session=session)
    anthropic_chat(emulator, session=session, request_id="explicit-7")

    assert sent == ["trace-42", "explicit-7"]


def test_adapters_compose_with_backoff_over_an_outage(emulator, fake_clock) -> None:
    emulator.add_fault("outage", status=503, duration=3)
    ask = backoff(jitter=None)(anthropic.chat)

    result = ask(USER, model="claude-emulated", api_key=KEY, base_url=emulator.url)

    assert result["finish_reason"] == "stop"
    assert fake_clock.sleeps == [1, 2]
    assert [r.status for r in emulator.requests] == [503, 503, 200]


# ----------------------------------------------------------------- shapes of valid JSON that are not the protocol's


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ({"choices": [{"message": None}]}, "choices[0].message is not an object"),
        ({"choices": [{"message": {"content": None, "tool_calls": ["x"]}}]}, "a tool call is not an object"),
        ({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "a"}}, "usage.prompt_tokens is not a number"),
        ({"choices": [{"message": {"content": "hi"}, "finish_reason": ["stop"]}]}, "finish_reason is not a string"),
    ],
)
def test_openai_wrong_shaped_answer_is_malformed_with_status_and_excerpt(emulator, body: object, what: str) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body=body)

    with pytest.raises(ProviderError) as caught:
        openai_chat(emulator)

    assert type(caught.value) is ProviderError and caught.value.status == 200
    assert str(caught.value).startswith(f"[openai 200] malformed response: {what}: '{{")


@pytest.mark.parametrize(
    "event",
    [
        [1], "x", None, 3,
        {"choices": ["x"]},
        {"choices": [{"delta": "x"}]},
        {"choices": [{"delta": {"tool_calls": ["x"]}}]},
        {"choices": [{"delta": {"content": "hi"}}], "usage": {"prompt_tokens": "a"}},
    ],
)  # fmt: skip
def test_openai_wrong_shaped_stream_event_is_malformed(emulator, event: object) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body=event)

    with pytest.raises(ProviderError) as caught:
        STREAMS["openai"](emulator)

    assert type(caught.value) is ProviderError and caught.value.status == 200
    assert "malformed response" in str(caught.value)


def test_anthropic_message_delta_with_a_string_delta_is_malformed(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body={"type": "message_delta", "delta": "x", "usage": "x"})

    with pytest.raises(ProviderError, match="malformed response: delta is not an object") as caught:
        STREAMS["anthropic"](emulator)

    assert type(caught.value) is ProviderError and caught.value.status == 200


# ----------------------------------------------------------------- errors inside a stream


@pytest.mark.parametrize(
    ("status", "kind", "retryable"), [(402, "billing_error", False), (504, "timeout_error", True)]
)
def test_anthropic_billing_and_timeout_errors_mid_stream(emulator, status: int, kind: str, retryable: bool) -> None:
    # An out-of-credit key fails the same way on every retry; a timeout may pass the next time.
    emulator.add_fault("truncate_stream", after=2, error=True, status=status, provider="anthropic")

    with pytest.raises(ProviderError, match=f"{kind}: .*mid-stream") as caught:
        STREAMS["anthropic"](emulator)

    assert caught.value.status == status
    assert classify(caught.value).retryable is retryable


class _Canned(requests.adapters.BaseAdapter):
    """A transport that answers every request with one 200 event stream, for servers' quirks the emulator does not send."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        reply = requests.Response()
        reply.status_code, reply.raw, reply.url, reply.request = 200, io.BytesIO(self.body), request.url, request
        reply.headers["content-type"] = "text/event-stream"
        return reply

    def close(self) -> None:
        pass


def canned(*events: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _Canned("".join(events).encode()))
    return session


def sse(value: object) -> str:
    return f"data: {json.dumps(value)}\n\n"


DONE = "data: [DONE]\n\n"
BASE = "http://127.0.0.1:9/v1"  # never reached: the canned transport answers


def test_openai_a_chunk_with_error_null_is_not_an_error() -> None:
    # Some compatible servers send "error": null on every chunk; the official SDK tests the value, not the key.
    session = canned(
        sse({"choices": [{"delta": {"content": "Hi"}}], "error": None}),
        sse({"choices": [{"delta": {}, "finish_reason": "stop"}], "error": None}),
        DONE,
    )

    chunks = list(openai.stream_chat(USER, model="m", api_key=KEY, base_url=BASE, session=session))

    assert [c["text"] for c in chunks] == ["Hi", ""] and chunks[-1]["finish_reason"] == "stop"


def test_llama_cpp_error_field_raises_with_its_status() -> None:
    # llama.cpp's server writes `error: {json}` (not a data event) and may still end with [DONE].
    error = {"code": 400, "message": "the request exceeds the available context size", "type": "exceed_context_size_error"}
    session = canned(sse({"choices": [{"delta": {"content": "Hi"}}]}), f"error: {json.dumps(error)}\n\n", DONE)

    with pytest.raises(InvalidRequestError, match="exceeds the available context size") as caught:
        list(openai_compatible.stream_chat(USER, model="m", base_url=BASE, session=session))

    assert caught.value.status == 400 and caught.value.provider == "openai_compatible"


def test_groq_usage_is_read_from_x_groq_when_the_chunk_has_none() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    session = canned(
        sse({"choices": [{"delta": {"content": "Hi"}}], "x_groq": {"id": "req_1"}}),
        sse({"choices": [{"delta": {}, "finish_reason": "stop"}], "x_groq": {"id": "req_1", "usage": usage}}),
        DONE,
    )

    chunks = list(groq.stream_chat(USER, model="m", api_key=KEY, base_url=BASE, session=session))

    assert chunks[-1]["usage"] == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}


# ----------------------------------------------------------------- Anthropic usage with the prompt cache


def ok() -> requests.Response:
    reply = requests.Response()
    reply.status_code = 200
    return reply


def test_anthropic_usage_counts_cache_reads_and_writes_as_input_and_shows_them() -> None:
    usage = {"input_tokens": 5, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 10000, "output_tokens": 7}
    message = {"content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "usage": usage}

    got = anthropic.parse_message(message, ok())

    assert got["usage"] == {
        "input_tokens": 12005,
        "output_tokens": 7,
        "total_tokens": 12012,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 10000,
    }


def test_anthropic_stream_usage_keeps_the_largest_cumulative_counts() -> None:
    # message_delta counts are cumulative; one that leaves a count out or reports it as 0 must not lower it.
    events = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1}}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 9}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"input_tokens": 0, "cache_read_input_tokens": 300, "output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip

    final = list(anthropic.stream_chunks(events, ok()))[-1]

    assert final["finish_reason"] == "stop"
    assert final["usage"] == {"input_tokens": 305, "output_tokens": 12, "total_tokens": 317, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 300}  # fmt: skip
