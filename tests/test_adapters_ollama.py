"""Ollama adapter against the emulator, judged by the official ``ollama`` client."""

from __future__ import annotations

import pytest

from resilient import (
    AuthenticationError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from resilient.adapters import ollama

KEY = "test-key-0001"
MODEL = "llama3.2:latest"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_chat_matches_the_official_client(emulator) -> None:
    client = pytest.importorskip("ollama").Client(host=emulator.url)
    expected = client.chat(model=MODEL, messages=USER)

    got = ollama.chat(USER, model=MODEL, base_url=emulator.url)

    assert got["text"] == expected.message.content
    assert got["model"] == expected.model
    assert got["finish_reason"] == expected.done_reason == "stop"
    assert got["usage"] == {
        "input_tokens": expected.prompt_eval_count,
        "output_tokens": expected.eval_count,
        "total_tokens": expected.prompt_eval_count + expected.eval_count,
    }
    assert got["request_id"].startswith("ollama-")
    assert got["tool_calls"] == []


def test_max_tokens_becomes_num_predict_and_length(emulator) -> None:
    got = ollama.chat(USER, model=MODEL, base_url=emulator.url, max_tokens=2)

    assert got["finish_reason"] == "length"
    assert got["usage"]["output_tokens"] == 2


def test_tool_calls_match_the_official_client(emulator) -> None:
    client = pytest.importorskip("ollama").Client(host=emulator.url)
    expected = client.chat(model=MODEL, messages=USER, tools=[WEATHER]).message.tool_calls[0].function

    got = ollama.chat(USER, model=MODEL, base_url=emulator.url, tools=[WEATHER])

    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in got["tool_calls"]] == [(expected.name, dict(expected.arguments))]


def test_stream_yields_the_same_text_and_one_final_chunk(emulator) -> None:
    whole = ollama.chat(USER, model=MODEL, base_url=emulator.url)

    chunks = list(ollama.stream_chat(USER, model=MODEL, base_url=emulator.url))

    assert len(chunks) > 2
    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert [c["done"] for c in chunks].count(True) == 1 and chunks[-1]["done"]
    assert chunks[-1]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == whole["usage"]


def test_stream_carries_tool_calls_in_the_final_chunk(emulator) -> None:
    *_, last = ollama.stream_chat(USER, model=MODEL, base_url=emulator.url, tools=[WEATHER])

    assert last["finish_reason"] == "tool_calls"
    assert [c["name"] for c in last["tool_calls"]] == ["get_weather"]


def test_generate_and_its_stream_agree_with_the_official_client(emulator) -> None:
    expected = pytest.importorskip("ollama").Client(host=emulator.url).generate(model=MODEL, prompt="Why is the sky blue?")

    got = ollama.generate("Why is the sky blue?", model=MODEL, base_url=emulator.url)
    chunks = list(ollama.stream_generate("Why is the sky blue?", model=MODEL, base_url=emulator.url))

    assert got["text"] == expected.response == "".join(c["text"] for c in chunks)
    assert got["usage"]["output_tokens"] == expected.eval_count
    assert chunks[-1]["done"] and chunks[-1]["usage"] == got["usage"]


def test_embed_matches_the_official_client(emulator) -> None:
    expected = pytest.importorskip("ollama").Client(host=emulator.url).embed(model="nomic-embed-text", input=["a", "b"])

    got = ollama.embed(["a", "b"], base_url=emulator.url)

    assert got["embeddings"] == [list(v) for v in expected.embeddings]
    assert got["usage"]["input_tokens"] == expected.prompt_eval_count


def test_list_models_returns_the_installed_models(emulator) -> None:
    names = [m["name"] for m in ollama.list_models(base_url=emulator.url)]

    assert names == ["llama3.2:latest", "nomic-embed-text:latest"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0:11434", "http://0.0.0.0:11434"),
        ("http://gpu-box:11434/", "http://gpu-box:11434"),
        ("http://gpu-box:11434/api", "http://gpu-box:11434"),
        ("https://example.com", "https://example.com"),
        ("https://example.com:56789/path/", "https://example.com:56789/path"),
    ],
)
def test_base_url_from_ollama_host(monkeypatch, value: str, expected: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)

    assert ollama.base(None) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("example.com", "http://example.com:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com/path/", "http://example.com:11434/path"),
        ("[::1]", "http://[::1]:11434"),
    ],
)
def test_ollama_host_is_completed_as_the_official_client_does(monkeypatch, value: str, expected: str) -> None:
    # ollama-python's _parse_host: no scheme is http, no host 127.0.0.1, no port 11434.
    monkeypatch.setenv("OLLAMA_HOST", value)

    assert ollama.base(None) == expected


def test_base_url_defaults_to_the_local_port(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    assert ollama.base(None) == "http://localhost:11434"


def test_base_url_from_ollama_api_url_in_a_dotenv(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OLLAMA_API_URL={emulator.url}\n")

    assert ollama.chat(USER, model=MODEL)["text"]


# ----------------------------------------------------------------- errors


def test_a_rejected_key_is_an_authentication_error(emulator) -> None:
    emulator.add_fault("bad_key", keys=[KEY], provider="ollama")

    with pytest.raises(AuthenticationError) as caught:
        ollama.chat(USER, model=MODEL, base_url=emulator.url, api_key=KEY)

    assert caught.value.status == 401 and caught.value.provider == "ollama"
    assert KEY not in str(caught.value)


def test_a_server_error_carries_the_message_and_request_id(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError) as caught:
        ollama.chat(USER, model=MODEL, base_url=emulator.url)

    assert caught.value.status == 500
    assert caught.value.request_id.startswith("ollama-")
    assert "error while processing" in caught.value.message


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # Ollama itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced)
    ollama.chat(USER, model=MODEL, base_url=emulator.url)

    with pytest.raises(RateLimitError) as caught:
        ollama.chat(USER, model=MODEL, base_url=emulator.url)

    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_unknown_path_is_not_found(emulator) -> None:
    with pytest.raises(NotFoundError):
        ollama.chat(USER, model=MODEL, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_body_is_a_provider_error(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response") as caught:
        ollama.chat(USER, model=MODEL, base_url=emulator.url)

    assert caught.value.status == 200


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_stream_line_is_a_provider_error(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response"):
        list(ollama.stream_chat(USER, model=MODEL, base_url=emulator.url))


def test_truncated_stream_raises(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        list(ollama.stream_chat(USER, model=MODEL, base_url=emulator.url))


def test_error_line_mid_stream_raises(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True)

    with pytest.raises(ServerError, match="mid-stream"):
        list(ollama.stream_generate("hello there", model=MODEL, base_url=emulator.url))


def test_connection_refused_is_a_connection_error() -> None:
    with pytest.raises(ProviderConnectionError):
        ollama.chat(USER, model=MODEL, base_url="http://127.0.0.1:9", timeout=2)


def test_request_id_is_sent_from_the_argument_or_the_context(emulator) -> None:
    import requests

    from resilient.request_ids import request_id

    session = requests.Session()
    sent = []
    session.hooks["response"].append(lambda response, **_: sent.append(response.request.headers.get("X-Request-ID")))

    with request_id("trace-42"):
        list(ollama.stream_chat(USER, model=MODEL, base_url=emulator.url, session=session))
    ollama.embed("x", base_url=emulator.url, session=session, request_id="explicit-7")

    assert sent == ["trace-42", "explicit-7"]


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ({"message": "x", "done": False}, "message is not an object"),
        ({"message": {"role": "assistant", "content": ""}, "done": True, "prompt_eval_count": "x"}, "prompt_eval_count is not a number"),
        ({"message": {"content": "", "tool_calls": ["x"]}, "done": True}, "a tool call is not an object"),
    ],
)
def test_wrong_shaped_stream_line_is_malformed(emulator, line: dict, what: str) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body=line)

    with pytest.raises(ProviderError, match=f"malformed response: {what}") as caught:
        list(ollama.stream_chat(USER, model=MODEL, base_url=emulator.url))

    assert type(caught.value) is ProviderError and caught.value.status == 200
