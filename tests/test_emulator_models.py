"""``Emulator(models=...)``: a model outside the configured set gets the provider's own "model not found"."""

from __future__ import annotations

import pytest
import requests

from resilient import NotFoundError, ProviderError
from resilient.adapters import anthropic, gemini, ollama, openai
from resilient.testing.emulator import Emulator

KEY = "sk-" + "test-" + "a" * 20
GOOGLE_KEY = "AIza" + "test" + "b" * 20
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
TYPO = "gpt-4o-mnii"


# -- what each adapter sees ------------------------------------------------------------


def openai_chat(emu: Emulator, model: str) -> dict:
    return openai.chat(USER, model=model, api_key=KEY, base_url=emu.url + "/v1")


def openai_stream(emu: Emulator, model: str) -> list:
    return list(openai.stream_chat(USER, model=model, api_key=KEY, base_url=emu.url + "/v1"))


def openai_embed(emu: Emulator, model: str) -> dict:
    return openai.embed(["hello"], model=model, api_key=KEY, base_url=emu.url + "/v1")


def anthropic_chat(emu: Emulator, model: str) -> dict:
    return anthropic.chat(USER, model=model, api_key=KEY, base_url=emu.url)


def anthropic_stream(emu: Emulator, model: str) -> list:
    return list(anthropic.stream_chat(USER, model=model, api_key=KEY, base_url=emu.url))


def gemini_chat(emu: Emulator, model: str) -> dict:
    return gemini.chat(USER, model=model, api_key=GOOGLE_KEY, base_url=emu.url)


def gemini_stream(emu: Emulator, model: str) -> list:
    return list(gemini.stream_chat(USER, model=model, api_key=GOOGLE_KEY, base_url=emu.url))


def gemini_embed(emu: Emulator, model: str) -> dict:
    return gemini.embed(["hello"], model=model, api_key=GOOGLE_KEY, base_url=emu.url)


def ollama_chat(emu: Emulator, model: str) -> dict:
    return ollama.chat(USER, model=model, base_url=emu.url)


def ollama_stream(emu: Emulator, model: str) -> list:
    return list(ollama.stream_chat(USER, model=model, base_url=emu.url))


def ollama_embed(emu: Emulator, model: str) -> dict:
    return ollama.embed(["hello"], model=model, base_url=emu.url)


CALLS = [
    pytest.param(openai_chat, "gpt-4o-mini", id="openai-chat"),
    pytest.param(openai_stream, "gpt-4o-mini", id="openai-stream"),
    pytest.param(openai_embed, "text-embedding-3-small", id="openai-embed"),
    pytest.param(anthropic_chat, "claude-sonnet-4-5", id="anthropic-chat"),
    pytest.param(anthropic_stream, "claude-sonnet-4-5", id="anthropic-stream"),
    pytest.param(gemini_chat, "gemini-2.5-flash", id="gemini-chat"),
    pytest.param(gemini_stream, "gemini-2.5-flash", id="gemini-stream"),
    pytest.param(gemini_embed, "text-embedding-004", id="gemini-embed"),
    pytest.param(ollama_chat, "llama3.2", id="ollama-chat"),
    pytest.param(ollama_stream, "llama3.2", id="ollama-stream"),
    pytest.param(ollama_embed, "nomic-embed-text", id="ollama-embed"),
]


@pytest.mark.parametrize(("call", "model"), CALLS)
def test_an_unknown_model_is_a_404_naming_it(call, model) -> None:
    with Emulator(models=[model]) as emu:
        with pytest.raises(NotFoundError) as caught:
            call(emu, model + "-typo")
    assert caught.value.status == 404
    assert model + "-typo" in str(caught.value)
    assert emu.requests[-1].status == 404


@pytest.mark.parametrize(("call", "model"), CALLS)
def test_a_configured_model_answers(call, model) -> None:
    with Emulator(models=[model, "another-model"]) as emu:
        assert call(emu, model)
    assert [r.status for r in emu.requests] == [200]


@pytest.mark.parametrize(("call", "model"), CALLS)
def test_without_models_any_name_is_served(emulator, call, model) -> None:
    assert emulator.models is None
    assert call(emulator, "a-model-no-provider-has")


def test_models_can_change_while_the_emulator_runs(emulator) -> None:
    emulator.models = {"gpt-4o"}
    with pytest.raises(NotFoundError):
        openai_chat(emulator, "gpt-4o-mini")
    emulator.models.add("gpt-4o-mini")
    assert openai_chat(emulator, "gpt-4o-mini")["text"]
    emulator.models = None
    assert openai_chat(emulator, TYPO)["text"]


def test_models_is_kept_as_a_set() -> None:
    assert Emulator(models=("a", "b", "a")).models == {"a", "b"}
    assert Emulator(models="gpt-4o").models == {"gpt-4o"}  # one name, not its letters
    assert Emulator().models is None


def test_the_unknown_model_is_not_retryable() -> None:
    from resilient import classify

    with Emulator(models={"gpt-4o"}) as emu, pytest.raises(ProviderError) as caught:
        openai_chat(emu, TYPO)
    assert classify(caught.value).retryable is False


# -- the wire, word for word -----------------------------------------------------------


def post(url: str, body: dict, **headers: str) -> requests.Response:
    return requests.post(url, json=body, headers=headers, timeout=10)


def test_openai_wire_body() -> None:
    with Emulator(models={"gpt-4o"}) as emu:
        got = post(emu.url + "/v1/chat/completions", {"model": TYPO, "messages": USER}, authorization="Bearer " + KEY)
    assert got.status_code == 404
    assert got.json() == {
        "error": {
            "message": f"The model `{TYPO}` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


def test_groq_speaks_openais_refusal() -> None:
    from resilient.adapters import groq

    with Emulator(models={"llama-3.1-8b-instant"}) as emu:
        with pytest.raises(NotFoundError) as caught:
            groq.chat(USER, model="llama-3.1-8b-instnat", api_key=KEY, base_url=emu.url + "/v1")
        assert groq.chat(USER, model="llama-3.1-8b-instant", api_key=KEY, base_url=emu.url + "/v1")["text"]
    assert caught.value.status == 404
    assert "llama-3.1-8b-instnat" in str(caught.value)


def test_anthropic_wire_body() -> None:
    with Emulator(models={"claude-sonnet-4-5"}) as emu:
        got = post(
            emu.url + "/v1/messages",
            {"model": "claude-sonet-4-5", "max_tokens": 10, "messages": USER},
            **{"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        )
    assert got.status_code == 404
    body = got.json()
    assert body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-sonet-4-5"},
        "request_id": got.headers["request-id"],
    }


@pytest.mark.parametrize(
    ("version", "method"), [("v1beta", "generateContent"), ("v1", "generateContent"), ("v1beta", "embedContent")]
)
def test_gemini_wire_body(version: str, method: str) -> None:
    with Emulator(models={"gemini-2.5-flash"}) as emu:
        got = post(
            f"{emu.url}/{version}/models/gemini-2.5-flsh:{method}",
            {"contents": [{"parts": [{"text": "hi"}]}], "content": {"parts": [{"text": "hi"}]}},
            **{"x-goog-api-key": GOOGLE_KEY},
        )
    assert got.status_code == 404
    assert got.json() == {
        "error": {
            "code": 404,
            "message": f"models/gemini-2.5-flsh is not found for API version {version}, or is not supported for"
            f" {method}. Call ListModels to see the list of available models and their supported methods.",
            "status": "NOT_FOUND",
        }
    }


def test_ollama_wire_body() -> None:
    with Emulator(models={"llama3.2"}) as emu:
        got = post(emu.url + "/api/chat", {"model": "llama3.3", "messages": USER, "stream": False})
    assert got.status_code == 404
    assert got.json() == {"error": 'model "llama3.3" not found, try pulling it first'}


def test_bedrock_answers_an_invalid_model_identifier() -> None:
    with Emulator(models={"anthropic.claude-3-haiku-20240307-v1:0"}) as emu:
        got = post(
            emu.url + "/model/anthropic.claude-3-haiku-v1:0/invoke",
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": USER},
            authorization="Bearer " + KEY,
        )
    assert got.status_code == 400
    assert got.json() == {"message": "The provided model identifier is invalid."}
    assert got.headers["x-amzn-errortype"].startswith("ValidationException:")


def test_a_malformed_body_is_still_the_providers_400() -> None:
    with Emulator(models={"gpt-4o"}) as emu:
        got = requests.post(
            emu.url + "/v1/chat/completions", data=b"{not json", headers={"authorization": "Bearer " + KEY}, timeout=10
        )
    assert got.status_code == 400


def test_single_model_servers_are_not_checked() -> None:
    with Emulator(models={"gpt-4o"}) as emu:
        got = post(emu.url + "/generate", {"inputs": "hello", "parameters": {"max_new_tokens": 5}})
    assert got.status_code == 200


# -- model lists ----------------------------------------------------------------------


def test_lists_name_the_configured_models_only() -> None:
    names = {"gpt-4o", "claude-sonnet-4-5-20250929", "claude-custom", "gemini-2.5-flash", "llama3.2"}
    with Emulator(models=names) as emu:
        openai_list = requests.get(emu.url + "/v1/models", headers={"authorization": "Bearer " + KEY}, timeout=10)
        anthropic_list = requests.get(
            emu.url + "/v1/models", headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}, timeout=10
        )
        gemini_list = requests.get(emu.url + "/v1beta/models", headers={"x-goog-api-key": GOOGLE_KEY}, timeout=10)
        ollama_list = requests.get(emu.url + "/api/tags", timeout=10)
        openai_one = requests.get(
            emu.url + "/v1/models/gpt-4o-mini", headers={"authorization": "Bearer " + KEY}, timeout=10
        )
        gemini_one = requests.get(
            emu.url + "/v1beta/models/gemini-2.0-flash", headers={"x-goog-api-key": GOOGLE_KEY}, timeout=10
        )
    assert [m["id"] for m in openai_list.json()["data"]] == sorted(names)
    # Anthropic's list: the models it knows first (newest first), then the others by name.
    known = "claude-sonnet-4-5-20250929"
    assert [m["id"] for m in anthropic_list.json()["data"]] == [known, *sorted(names - {known})]
    assert [m["name"] for m in gemini_list.json()["models"]] == ["models/" + n for n in sorted(names)]
    assert [m["name"] for m in ollama_list.json()["models"]] == sorted(names)
    assert openai_one.status_code == 404
    assert openai_one.json()["error"]["code"] == "model_not_found"
    assert gemini_one.status_code == 404
