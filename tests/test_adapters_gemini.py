"""Gemini adapter against the emulator, judged by the official google-genai client."""

from __future__ import annotations

import base64

import pytest

from resilient import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from resilient.adapters import gemini, translate

KEY = "AIzaTest0123456789abcdefghijkl"
MODEL = "gemini-2.0-flash"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def ask(emulator, messages=USER, **kwargs):
    return gemini.chat(messages, model=MODEL, api_key=KEY, base_url=emulator.url, **kwargs)


@pytest.fixture
def sdk(emulator):
    genai = pytest.importorskip("google.genai")
    types = genai.types
    options = types.HttpOptions(base_url=emulator.url, retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=KEY, http_options=options)


def test_chat_matches_the_official_client(emulator, sdk) -> None:
    expected = sdk.models.generate_content(model=MODEL, contents="What is a circuit breaker?")

    got = ask(emulator)

    assert got["text"] == expected.text
    assert got["model"] == expected.model_version
    assert got["finish_reason"] == "stop"
    assert got["usage"] == {
        "input_tokens": expected.usage_metadata.prompt_token_count,
        "output_tokens": expected.usage_metadata.candidates_token_count,
        "total_tokens": expected.usage_metadata.total_token_count,
    }
    assert got["request_id"].startswith("gemini-")
    assert emulator.requests[-1].path == f"/v1beta/models/{MODEL}:generateContent"


def test_messages_become_contents_with_user_and_model_roles_and_a_system_instruction() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": "Hello"},
    ]

    body = gemini.request_body(messages, 50, 0.2, "You are kind.", None, None, "END", {})

    assert body["systemInstruction"] == {"parts": [{"text": "You are kind."}, {"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "Look:"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
    ]
    assert body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2, "stopSequences": ["END"]}


def test_a_tool_conversation_becomes_function_call_and_response_parts() -> None:
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]  # fmt: skip

    contents = gemini.request_body(messages, None, None, None, None, None, None, {})["contents"]

    assert contents[1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]},
    ]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice_becomes_function_calling_config(choice, config) -> None:
    body = gemini.request_body(USER, None, None, None, [WEATHER], choice, None, {})

    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": WEATHER["function"]["description"],
         "parametersJsonSchema": WEATHER["function"]["parameters"]},
    ]}]  # fmt: skip


def test_tool_call_matches_the_official_client(emulator, sdk) -> None:
    types = pytest.importorskip("google.genai").types
    declaration = types.FunctionDeclaration(
        name="get_weather",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
    )
    expected = sdk.models.generate_content(
        model=MODEL, contents="What is a circuit breaker?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])]),
    ).function_calls[0]  # fmt: skip

    got = ask(emulator, tools=[WEATHER], tool_choice="required")

    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [(expected.name, expected.args)]


def test_a_tool_result_gets_a_text_answer(emulator) -> None:
    first = ask(emulator, tools=[WEATHER])
    call = first["tool_calls"][0]
    messages = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}},
        ]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]  # fmt: skip

    second = ask(emulator, messages, tools=[WEATHER])

    assert second["finish_reason"] == "stop" and second["text"]


def test_stream_yields_the_same_text_and_one_final_chunk(emulator, sdk) -> None:
    expected = list(sdk.models.generate_content_stream(model=MODEL, contents="What is a circuit breaker?"))
    whole = ask(emulator)

    chunks = list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))

    assert "".join(c["text"] for c in chunks) == "".join(e.text for e in expected) == whole["text"]
    assert [c["done"] for c in chunks].count(True) == 1 and chunks[-1]["done"]
    assert chunks[-1]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == whole["usage"]


def test_stream_carries_tool_calls(emulator) -> None:
    *_, last = gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url, tools=[WEATHER])

    assert last["finish_reason"] == "tool_calls"
    assert [c["name"] for c in last["tool_calls"]] == ["get_weather"]


def test_embed_matches_the_official_client(emulator, sdk) -> None:
    types = pytest.importorskip("google.genai").types
    expected = sdk.models.embed_content(
        model="text-embedding-004", contents=["hello", "world"], config=types.EmbedContentConfig(output_dimensionality=32)
    )

    got = gemini.embed(["hello", "world"], api_key=KEY, base_url=emulator.url, dimensions=32)

    assert got["embeddings"] == [e.values for e in expected.embeddings]
    assert got["model"] == "text-embedding-004"


def test_process_image_sends_the_image_inline(emulator) -> None:
    sent = []
    import requests

    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: sent.append(response.request.body))

    got = gemini.process_image(PNG, "What is in this picture?", api_key=KEY, base_url=emulator.url, session=session)

    assert got["text"] and got["finish_reason"] == "stop"
    import json

    parts = json.loads(sent[0])["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
        {"text": "What is in this picture?"},
    ]


def test_key_from_gemini_api_key(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)

    assert gemini.chat(USER, base_url=emulator.url)["text"]
    assert emulator.requests[-1].key == "AIza…ijkl"


def test_missing_key_names_both_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(AuthenticationError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        gemini.chat(USER)


# ----------------------------------------------------------------- errors


def test_a_rejected_key_is_an_authentication_error(emulator) -> None:
    emulator.add_fault("bad_key", keys=[KEY])

    with pytest.raises(AuthenticationError) as caught:
        ask(emulator)

    # Google's answer to a wrong key: 400 INVALID_ARGUMENT, reason API_KEY_INVALID; by meaning a credential error.
    assert caught.value.status == 400 and "API key not valid" in caught.value.message
    assert KEY not in str(caught.value)


def test_a_server_error_carries_the_request_id(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError) as caught:
        ask(emulator)

    assert caught.value.request_id.startswith("gemini-")


def test_429_carries_retry_after(emulator, fake_clock) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)
    ask(emulator)

    with pytest.raises(RateLimitError) as caught:
        ask(emulator)

    assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)


def test_retry_delay_is_read_from_retry_info_when_no_header() -> None:
    body = {"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"}]}}

    assert translate.gemini_retry_delay(body) == 7.5


def test_unknown_model_path_is_not_found(emulator) -> None:
    with pytest.raises(NotFoundError):
        gemini.chat(USER, model="gemini-2.0-flash", api_key=KEY, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_body_is_a_provider_error(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response") as caught:
        ask(emulator)

    assert caught.value.status == 200


def test_malformed_stream_event_is_a_provider_error(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError, match="malformed response"):
        list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))


def test_truncated_stream_raises(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))


@pytest.mark.parametrize(
    ("status", "error"), [(400, InvalidRequestError), (403, AuthenticationError), (429, RateLimitError)]
)
def test_an_error_mid_stream_keeps_its_status(emulator, status: int, error: type) -> None:
    # Google sends it as bare JSON after the first chunks; read as a cut stream it would be retried blindly.
    emulator.add_fault("truncate_stream", after=2, error=True, status=status)

    with pytest.raises(error) as caught:
        list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))

    assert caught.value.status == status and "mid-stream" in caught.value.message
    assert KEY not in str(caught.value)


def test_a_rate_limit_mid_stream_carries_its_retry_delay(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True, status=429, retry_after=3.5)

    with pytest.raises(RateLimitError) as caught:
        list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))

    assert caught.value.retry_after == 3.5


def test_error_event_mid_stream_raises(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True)

    with pytest.raises(ServerError, match="INTERNAL.*mid-stream"):
        list(gemini.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url))
