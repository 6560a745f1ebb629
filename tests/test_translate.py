"""OpenAI ⇄ Anthropic and OpenAI → Gemini translation: every rule, round trips, and chat_openai on the emulator."""

from __future__ import annotations

import copy
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
)
from resilient.adapters import anthropic, translate
from resilient.errors import ProviderTimeout

KEY = "test-key-0001"
WEATHER = {
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
    "input_schema": WEATHER["function"]["parameters"],
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
TOOL_CONVERSATION = [
    {"role": "system", "content": "You answer about weather."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "Let me look.", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    {"role": "user", "content": "And should I take a coat?"},
]
PNG = "iVBORw0KGgo="


def to_anthropic(**request):
    return translate.openai_request_to_anthropic({"model": "claude-x", **request})


# ============================================================ OpenAI request → Anthropic


def test_system_and_developer_messages_are_pulled_into_system() -> None:
    body = to_anthropic(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]
    )

    assert body["system"] == "Be brief.\n\nUse French."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_consecutive_messages_of_one_role_are_merged_into_one_turn() -> None:
    body = to_anthropic(
        messages=[
            {"role": "user", "content": "One."},
            {"role": "user", "content": [{"type": "text", "text": "Two."}]},
            {"role": "assistant", "content": "Three."},
            {"role": "assistant", "content": "Four."},
        ]
    )

    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Three."}, {"type": "text", "text": "Four."}]},
    ]


@pytest.mark.parametrize(
    ("request_fields", "default", "expected"),
    [
        ({"max_tokens": 100}, 2048, 100),
        ({"max_completion_tokens": 200, "max_tokens": 100}, None, 200),
        ({}, 2048, 2048),
        ({}, None, 4096),
    ],
)
def test_max_tokens_is_the_requests_else_the_model_configs_else_4096(request_fields, default, expected) -> None:
    body = translate.openai_request_to_anthropic(
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **request_fields}, default_max_tokens=default
    )

    assert body["max_tokens"] == expected


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop, expected) -> None:
    assert to_anthropic(messages=[{"role": "user", "content": "Hi"}], stop=stop)["stop_sequences"] == expected


def test_sampling_parameters_and_user_are_carried_over() -> None:
    body = to_anthropic(messages=[{"role": "user", "content": "Hi"}], temperature=0.3, top_p=0.9, user="u-42", seed=7)

    assert (body["temperature"], body["top_p"], body["metadata"]) == (0.3, 0.9, {"user_id": "u-42"})
    assert "seed" not in body


def test_function_tools_become_anthropic_tools() -> None:
    bare = {"type": "function", "function": {"name": "now"}}

    body = to_anthropic(messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER, bare])

    assert body["tools"] == [WEATHER_ANTHROPIC, {"name": "now", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_is_mapped(choice, expected) -> None:
    body = to_anthropic(messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER], tool_choice=choice)

    assert body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    body = to_anthropic(messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER], parallel_tool_calls=False)

    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_assistant_tool_calls_become_tool_use_blocks_and_tool_messages_tool_results() -> None:
    body = to_anthropic(messages=TOOL_CONVERSATION)

    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": 21}'},
                {"type": "text", "text": "And should I take a coat?"},
            ],
        },
    ]


def test_parallel_tool_results_share_one_user_turn() -> None:
    second = {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    body = to_anthropic(
        messages=[
            {"role": "user", "content": "Paris and Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
            {"role": "tool", "tool_call_id": "call_1", "content": "21"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "4"}]},
        ]
    )

    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "21"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "4"}]},
        ],
    }


def test_image_parts_become_base64_or_url_sources() -> None:
    body = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                ],
            }
        ]
    )

    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "request_fields",
    [
        {"n": 2},
        {"logprobs": True},
        {"response_format": {"type": "json_object"}},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///x.png"}}]}]},
        {"messages": [{"role": "tool", "content": "orphan"}]},
        {"messages": [{"role": "wizard", "content": "Hi"}]},
        {"messages": []},
        {"tools": [{"type": "code_interpreter"}]},
        {"tool_choice": "sometimes"},
    ],
)
def test_what_anthropic_cannot_honour_is_an_invalid_request(request_fields) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **request_fields}

    with pytest.raises(InvalidRequestError):
        translate.openai_request_to_anthropic(request)


def test_translation_leaves_the_request_untouched() -> None:
    request = {"model": "m", "messages": copy.deepcopy(TOOL_CONVERSATION), "tools": [WEATHER]}
    before = copy.deepcopy(request)

    translate.openai_request_to_anthropic(request)

    assert request == before


# ============================================================ Anthropic response → OpenAI

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "text", "text": "I will check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2},
}


def test_anthropic_message_becomes_a_chat_completion_the_openai_sdk_accepts() -> None:
    completion = translate.anthropic_response_to_openai(MESSAGE, created=1700000000)

    parsed = pytest.importorskip("openai").types.chat.ChatCompletion.model_validate(completion)
    assert parsed.id == "msg_01" and parsed.model == "claude-x" and parsed.created == 1700000000
    assert parsed.choices[0].message.content == "I will check."
    assert parsed.choices[0].finish_reason == "tool_calls"
    call = parsed.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_1", "get_weather", {"city": "Paris"})
    assert isinstance(call.function.arguments, str)
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens, parsed.usage.total_tokens) == (16, 5, 21)
    assert parsed.usage.prompt_tokens_details.cached_tokens == 4


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter")],
)  # fmt: skip
def test_stop_reason_becomes_finish_reason(stop_reason, finish) -> None:
    message = {**MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}

    assert translate.anthropic_response_to_openai(message)["choices"][0]["finish_reason"] == finish


def test_a_text_only_answer_has_no_tool_calls_field() -> None:
    message = {**MESSAGE, "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn"}

    reply = translate.anthropic_response_to_openai(message)["choices"][0]["message"]

    assert reply == {"role": "assistant", "content": "Hello", "refusal": None}


def test_a_body_that_is_not_a_message_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        translate.anthropic_response_to_openai({"emulator": "a body of the wrong shape"})


def test_openai_completion_becomes_a_message_the_anthropic_sdk_accepts() -> None:
    completion = translate.anthropic_response_to_openai(MESSAGE)

    message = translate.openai_response_to_anthropic(completion)

    parsed = pytest.importorskip("anthropic").types.Message.model_validate(message)
    assert parsed.stop_reason == "tool_use"
    assert [b.type for b in parsed.content] == ["text", "tool_use"]
    assert message["content"] == MESSAGE["content"]
    assert message["usage"]["output_tokens"] == 5 and message["usage"]["cache_read_input_tokens"] == 4


# ============================================================ round trips


def test_a_tool_use_conversation_survives_openai_to_anthropic_and_back() -> None:
    request = {
        "model": "claude-x", "messages": TOOL_CONVERSATION, "max_tokens": 300, "temperature": 0.2, "stop": ["END"],
        "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }  # fmt: skip

    back = translate.anthropic_request_to_openai(translate.openai_request_to_anthropic(request))

    assert back == request


def test_a_tool_use_conversation_survives_anthropic_to_openai_and_back() -> None:
    body = to_anthropic(messages=TOOL_CONVERSATION, tools=[WEATHER], tool_choice="required", max_tokens=64)

    again = translate.openai_request_to_anthropic(translate.anthropic_request_to_openai(body))

    assert again == body


def test_a_tool_use_answer_survives_anthropic_to_openai_and_back() -> None:
    message = {**MESSAGE, "usage": {"input_tokens": 10, "output_tokens": 5}}

    assert translate.openai_response_to_anthropic(translate.anthropic_response_to_openai(message)) == message


def test_result_to_openai_turns_any_adapters_result_into_a_chat_completion() -> None:
    result = {
        "text": "", "model": "m", "finish_reason": "tool_calls",
        "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}, "request_id": "req_1", "raw": {},
    }  # fmt: skip

    parsed = pytest.importorskip("openai").types.chat.ChatCompletion.model_validate(translate.result_to_openai(result))

    assert parsed.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert parsed.usage.total_tokens == 5 and parsed.id == "req_1"


# ============================================================ errors


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("authentication_error", AuthenticationError, 401),
        ("permission_error", AuthenticationError, 403),
        ("not_found_error", NotFoundError, 404),
        ("invalid_request_error", InvalidRequestError, 400),
        ("request_too_large", InvalidRequestError, 413),
        ("rate_limit_error", RateLimitError, 429),
        ("api_error", ServerError, 500),
        ("timeout_error", ServerError, 504),
        ("overloaded_error", OverloadedError, 529),
    ],
)
def test_anthropic_error_types_map_to_the_taxonomy(kind, error, status) -> None:
    exc = translate.anthropic_error({"type": "error", "error": {"type": kind, "message": "nope"}})

    assert type(exc) is error and exc.status == status and exc.provider == "anthropic"
    assert exc.message == f"{kind}: nope"


@pytest.mark.parametrize(("status", "error"), [(500, ServerError), (502, ServerError), (504, ServerError),
                                               (503, OverloadedError), (529, OverloadedError)])  # fmt: skip
def test_an_anthropic_http_status_decides_over_the_type(status, error) -> None:
    exc = translate.anthropic_error({"type": "error", "error": {"type": "api_error", "message": "x"}}, status, retry_after=2.0)

    assert type(exc) is error and exc.status == status and exc.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "error"),
    [("RESOURCE_EXHAUSTED", RateLimitError), ("UNAUTHENTICATED", AuthenticationError), ("NOT_FOUND", NotFoundError),
     ("INVALID_ARGUMENT", InvalidRequestError), ("UNAVAILABLE", OverloadedError), ("INTERNAL", ServerError)],
)  # fmt: skip
def test_gemini_error_statuses_map_to_the_taxonomy(status, error) -> None:
    exc = translate.gemini_error([{"error": {"message": "no", "status": status}}])

    assert type(exc) is error and exc.provider == "gemini"


def test_a_gemini_429_takes_its_retry_delay_from_retry_info() -> None:
    body = {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}  # fmt: skip

    exc = translate.gemini_error(body)

    assert isinstance(exc, RateLimitError) and exc.retry_after == 1.5 and exc.status == 429


# ============================================================ OpenAI → Gemini


def test_openai_conversation_becomes_gemini_contents_with_model_role_and_function_parts() -> None:
    body = translate.openai_request_to_gemini({"model": "gemini-x", "messages": TOOL_CONVERSATION, "tools": [WEATHER]})

    assert body["systemInstruction"] == {"parts": [{"text": "You answer about weather."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"text": "Let me look."}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
            {"text": "And should I take a coat?"},
        ]},
    ]  # fmt: skip
    assert body["tools"] == [
        {"functionDeclarations": [
            {"name": "get_weather", "description": "Weather for a city", "parametersJsonSchema": WEATHER["function"]["parameters"]}
        ]}
    ]  # fmt: skip


def test_gemini_request_is_accepted_by_google_genai_types() -> None:
    types = pytest.importorskip("google.genai.types")
    body = translate.openai_request_to_gemini(
        {"model": "gemini-x", "messages": TOOL_CONVERSATION, "tools": [WEATHER], "tool_choice": "required",
         "max_tokens": 50, "temperature": 0.1, "top_p": 0.5, "stop": "END", "seed": 3,
         "response_format": {"type": "json_object"}}
    )  # fmt: skip

    for turn in body["contents"]:
        types.Content.model_validate(turn)
    types.Content.model_validate(body["systemInstruction"])
    types.Tool.model_validate(body["tools"][0])
    types.ToolConfig.model_validate(body["toolConfig"])
    config = types.GenerationConfig.model_validate(body["generationConfig"])
    assert (config.max_output_tokens, config.stop_sequences, config.response_mime_type) == (50, ["END"], "application/json")


def test_a_tool_result_that_is_not_a_json_object_is_wrapped() -> None:
    body = translate.openai_request_to_gemini(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]}
    )  # fmt: skip

    assert body["contents"][-1]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
     ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]})],
)  # fmt: skip
def test_tool_choice_becomes_a_function_calling_mode(choice, expected) -> None:
    body = translate.openai_request_to_gemini(
        {"messages": [{"role": "user", "content": "Hi"}], "tools": [WEATHER], "tool_choice": choice}
    )

    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_images_become_inline_data_or_file_data() -> None:
    body = translate.openai_request_to_gemini(
        {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]}]}
    )  # fmt: skip

    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
    ]


GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "thinking...", "thought": True}, {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "thoughtsTokenCount": 2, "totalTokenCount": 12},
    "modelVersion": "gemini-2.5-flash", "responseId": "resp_1",
}  # fmt: skip


def test_gemini_answer_becomes_a_chat_completion_the_openai_sdk_accepts() -> None:
    completion = translate.gemini_response_to_openai(GEMINI_ANSWER)

    parsed = pytest.importorskip("openai").types.chat.ChatCompletion.model_validate(completion)
    assert parsed.id == "resp_1" and parsed.model == "gemini-2.5-flash"
    assert parsed.choices[0].message.content == "Checking."
    assert parsed.choices[0].finish_reason == "tool_calls"
    call = parsed.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens, parsed.usage.total_tokens) == (7, 5, 12)


@pytest.mark.parametrize(("reason", "finish"), [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
                                                ("RECITATION", "content_filter"), ("OTHER", "stop")])  # fmt: skip
def test_gemini_finish_reason_is_mapped(reason, finish) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}

    assert translate.gemini_response_to_openai(answer, model="g")["choices"][0]["finish_reason"] == finish


def test_a_blocked_gemini_prompt_is_an_empty_content_filter_choice() -> None:
    completion = translate.gemini_response_to_openai({"promptFeedback": {"blockReason": "SAFETY"}}, model="g")

    assert completion["choices"][0]["finish_reason"] == "content_filter"
    assert completion["choices"][0]["message"]["content"] is None


def test_a_tool_loop_through_the_emulated_gemini_api(emulator) -> None:
    url = f"{emulator.url}/v1beta/models/gemini-emulated:generateContent"
    request = {"model": "gemini-emulated", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]}

    first = translate.gemini_response_to_openai(
        requests.post(url, json=translate.openai_request_to_gemini(request), headers={"x-goog-api-key": KEY}).json()
    )
    call = first["choices"][0]["message"]["tool_calls"][0]
    request["messages"] += [first["choices"][0]["message"], {"role": "tool", "tool_call_id": call["id"], "content": "21C"}]
    second = translate.gemini_response_to_openai(
        requests.post(url, json=translate.openai_request_to_gemini(request), headers={"x-goog-api-key": KEY}).json()
    )

    assert first["choices"][0]["finish_reason"] == "tool_calls" and call["function"]["name"] == "get_weather"
    assert second["choices"][0]["finish_reason"] == "stop"
    assert second["choices"][0]["message"]["content"].startswith("Emulated answer to: Weather in Paris?")


# ============================================================ anthropic.chat_openai on the emulator


def chat_openai(emulator, **request):
    return anthropic.chat_openai(
        {"model": "claude-emulated", "messages": [{"role": "user", "content": "What is a circuit breaker?"}], **request},
        api_key=KEY,
        base_url=emulator.url,
    )


def test_chat_openai_returns_a_chat_completion_equal_to_the_anthropic_answer(emulator) -> None:
    sdk = pytest.importorskip("anthropic").Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)
    expected = sdk.messages.create(
        model="claude-emulated", max_tokens=4096, system="Be brief.",
        messages=[{"role": "user", "content": "What is a circuit breaker?"}],
    )  # fmt: skip

    result = chat_openai(emulator, messages=[{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "What is a circuit breaker?"}])  # fmt: skip

    parsed = pytest.importorskip("openai").types.chat.ChatCompletion.model_validate(result)
    assert parsed.object == "chat.completion" and parsed.model == expected.model
    assert parsed.id.startswith("msg_")
    assert parsed.choices[0].message.content == expected.content[0].text
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage.prompt_tokens == expected.usage.input_tokens
    assert parsed.usage.completion_tokens == expected.usage.output_tokens


def test_chat_openai_runs_a_whole_tool_loop(emulator) -> None:
    openai_types = pytest.importorskip("openai").types.chat
    messages = [{"role": "user", "content": "Weather in Paris?"}]

    first = chat_openai(emulator, messages=messages, tools=[WEATHER], tool_choice="required")
    reply = openai_types.ChatCompletion.model_validate(first).choices[0].message
    call = reply.tool_calls[0]
    messages += [first["choices"][0]["message"], {"role": "tool", "tool_call_id": call.id, "content": "21C"}]
    second = openai_types.ChatCompletion.model_validate(chat_openai(emulator, messages=messages, tools=[WEATHER]))

    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Weather in Paris?"}
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Emulated answer to: 21C"  # the tool result is the last user text


def test_chat_openai_maps_max_tokens_to_a_length_finish(emulator) -> None:
    result = chat_openai(emulator, max_tokens=2)

    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 2


def test_chat_openai_uses_the_model_configs_max_tokens_and_model(emulator) -> None:
    result = anthropic.chat_openai(
        {"messages": [{"role": "user", "content": "What is a circuit breaker?"}]},
        api_key=KEY, base_url=emulator.url, model="claude-configured", default_max_tokens=3,
    )  # fmt: skip

    assert result["model"] == "claude-configured"
    assert result["choices"][0]["finish_reason"] == "length" and result["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ({"kind": "bad_key", "keys": [KEY]}, AuthenticationError, 401),
        ({"kind": "outage", "status": 500}, ServerError, 500),
        ({"kind": "outage", "status": 529}, OverloadedError, 529),
    ],
)
def test_chat_openai_errors_are_the_taxonomy(emulator, fault, error, status) -> None:
    emulator.add_fault(fault.pop("kind"), **fault)

    with pytest.raises(error) as caught:
        chat_openai(emulator)

    assert caught.value.status == status and caught.value.provider == "anthropic"
    assert KEY not in str(caught.value)


def test_chat_openai_unknown_path_is_not_found(emulator) -> None:
    with pytest.raises(NotFoundError):
        anthropic.chat_openai(
            {"model": "claude-emulated", "messages": [{"role": "user", "content": "Hi"}]},
            api_key=KEY, base_url=emulator.url + "/nowhere",
        )  # fmt: skip


def test_chat_openai_429_carries_retry_after(emulator, fake_clock) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)
    chat_openai(emulator)

    with pytest.raises(RateLimitError) as caught:
        chat_openai(emulator)

    assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)


def test_chat_openai_malformed_body_is_a_provider_error(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError) as caught:
        chat_openai(emulator)

    assert caught.value.status == 200 and "malformed response" in str(caught.value)


def test_chat_openai_refuses_a_stream_request_before_sending(emulator) -> None:
    with pytest.raises(InvalidRequestError):
        chat_openai(emulator, stream=True)

    assert emulator.requests == []


def test_chat_openai_timeout_is_a_provider_timeout(emulator) -> None:
    emulator.add_fault("latency", seconds=0.5)

    with pytest.raises(ProviderTimeout):
        anthropic.chat_openai(
            {"model": "claude-emulated", "messages": [{"role": "user", "content": "Hi"}]},
            api_key=KEY, base_url=emulator.url, timeout=0.05,
        )  # fmt: skip


# ============================================================ anthropic.stream_chat_openai on the emulator


def stream_openai(emulator, **request):
    return list(
        anthropic.stream_chat_openai(
            {"model": "claude-emulated", "messages": [{"role": "user", "content": "What is a circuit breaker?"}], **request},
            api_key=KEY,
            base_url=emulator.url,
        )
    )


@pytest.mark.parametrize("tools", [{}, {"tools": [WEATHER], "tool_choice": "required"}])
def test_stream_chat_openai_adds_up_to_chat_openai_in_the_sdks_own_accumulator(emulator, tools) -> None:
    streaming = pytest.importorskip("openai.lib.streaming.chat")
    whole = chat_openai(emulator, **tools)
    state = streaming.ChatCompletionStreamState()

    for chunk in stream_openai(emulator, **tools):
        state.handle_chunk(pytest.importorskip("openai").types.chat.ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion().choices[0]

    expected = whole["choices"][0]
    assert final.finish_reason == expected["finish_reason"]
    assert final.message.content == expected["message"]["content"]
    assert [(c.function.name, c.function.arguments) for c in final.message.tool_calls or []] == [
        (c["function"]["name"], c["function"]["arguments"]) for c in expected["message"].get("tool_calls", [])
    ]


def test_stream_chat_openai_sends_usage_last_when_asked(emulator) -> None:
    whole = chat_openai(emulator)

    chunks = stream_openai(emulator, stream_options={"include_usage": True})

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert len({c["id"] for c in chunks}) == 1


def test_stream_chat_openai_cut_stream_raises(emulator) -> None:
    emulator.add_fault("truncate_stream", after=3)

    with pytest.raises(ProviderConnectionError):
        stream_openai(emulator)
