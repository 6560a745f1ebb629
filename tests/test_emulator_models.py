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
    emulator.models = {"anthropic": {"claude-sonnet-4-5"}}
    assert openai_chat(emulator, TYPO)["text"]
    with pytest.raises(NotFoundError):
        anthropic_chat(emulator, "claude-sonet-4-5")
    emulator.models = None
    assert openai_chat(emulator, TYPO)["text"]


def test_models_is_kept_as_a_set_or_a_set_per_provider() -> None:
    assert Emulator(models=("a", "b", "a")).models == {"a", "b"}
    assert Emulator(models="gpt-4o").models == {"gpt-4o"}  # one name, not its letters
    assert Emulator(models={"openai": ["a", "a"], "ollama": "llama3.2"}).models == {"openai": {"a"}, "ollama": {"llama3.2"}}
    assert Emulator().models is None


def test_the_unknown_model_is_not_retryable() -> None:
    from resilient import classify

    with Emulator(models={"gpt-4o"}) as emu, pytest.raises(ProviderError) as caught:
        openai_chat(emu, TYPO)
    assert classify(caught.value).retryable is False


# -- the wire, word for word -----------------------------------------------------------


def post(url: str, body: dict, **headers: str) -> requests.Response:
    return requests.post(url, json=body, headers=headers, timeout=10)


ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
GEMINI_BODY = {"contents": [{"parts": [{"text": "hi"}]}], "content": {"parts": [{"text": "hi"}]}}


def gemini_refusal(version: str, method: str) -> dict:
    message = (
        f"models/gemini-2.5-flsh is not found for API version {version}, or is not supported for {method}."
        " Call ListModels to see the list of available models and their supported methods."
    )
    return {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}


@pytest.mark.parametrize(
    ("served", "path", "body", "headers", "status", "expected", "expected_headers"),
    [
        pytest.param(
            "gpt-4o", "/v1/chat/completions", {"model": TYPO, "messages": USER}, {"authorization": "Bearer " + KEY},
            404,
            {
                "error": {
                    "message": f"The model `{TYPO}` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            {},
            id="openai",
        ),
        pytest.param(
            "claude-sonnet-4-5", "/v1/messages", {"model": "claude-sonet-4-5", "max_tokens": 10, "messages": USER},
            ANTHROPIC_HEADERS,
            404,
            {
                "type": "error",
                "error": {"type": "not_found_error", "message": "model: claude-sonet-4-5"},
                "request_id": "req_000000000001",  # the emulator's first request
            },
            {},
            id="anthropic",
        ),
        *(
            pytest.param(
                "gemini-2.5-flash", f"/{version}/models/gemini-2.5-flsh:{method}", GEMINI_BODY,
                {"x-goog-api-key": GOOGLE_KEY}, 404, gemini_refusal(version, method), {},
                id=f"gemini-{version}-{method}",
            )
            for version, method in [("v1beta", "generateContent"), ("v1", "generateContent"), ("v1beta", "embedContent")]
        ),
        pytest.param(
            "llama3.2", "/api/chat", {"model": "llama3.3", "messages": USER, "stream": False}, {},
            404, {"error": 'model "llama3.3" not found, try pulling it first'}, {},
            id="ollama",
        ),
        pytest.param(
            "anthropic.claude-3-haiku-20240307-v1:0", "/model/anthropic.claude-3-haiku-v1:0/invoke",
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": USER},
            {"authorization": "Bearer " + KEY},
            400,
            {"message": "The provided model identifier is invalid."},
            {"x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
            id="bedrock",
        ),
    ],
)  # fmt: skip
def test_the_wire_body_of_an_unknown_model_is_the_providers_own(
    served, path, body, headers, status, expected, expected_headers
) -> None:
    with Emulator(models={served}) as emu:
        got = post(emu.url + path, body, **headers)
    assert got.status_code == status
    assert got.json() == expected
    assert {name: got.headers.get(name) for name in expected_headers} == expected_headers


def test_groq_speaks_openais_refusal() -> None:
    from resilient.adapters import groq

    with Emulator(models={"llama-3.1-8b-instant"}) as emu:
        with pytest.raises(NotFoundError) as caught:
            groq.chat(USER, model="llama-3.1-8b-instnat", api_key=KEY, base_url=emu.url + "/v1")
        assert groq.chat(USER, model="llama-3.1-8b-instant", api_key=KEY, base_url=emu.url + "/v1")["text"]
    assert caught.value.status == 404
    assert "llama-3.1-8b-instnat" in str(caught.value)


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


# -- models by provider, and the model lists ------------------------------------------


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def openai_completion(emu: Emulator, model: str) -> requests.Response:
    return post(emu.url + "/v1/chat/completions", {"model": model, "messages": USER}, authorization="Bearer " + KEY)


def anthropic_message(emu: Emulator, model: str) -> requests.Response:
    return post(emu.url + "/v1/messages", {"model": model, "max_tokens": 10, "messages": USER}, **ANTHROPIC_HEADERS)


def anthropic_count(emu: Emulator, model: str) -> requests.Response:
    return post(emu.url + "/v1/messages/count_tokens", {"model": model, "messages": USER}, **ANTHROPIC_HEADERS)


def anthropic_model(emu: Emulator, model: str) -> requests.Response:
    return get(f"{emu.url}/v1/models/{model}", **ANTHROPIC_HEADERS)


def ollama_api_chat(emu: Emulator, model: str) -> requests.Response:
    return post(emu.url + "/api/chat", {"model": model, "messages": USER, "stream": False})


def ollama_api_embed(emu: Emulator, model: str) -> requests.Response:
    return post(emu.url + "/api/embed", {"model": model, "input": "hello"})


def bedrock_invoke(emu: Emulator, model: str) -> requests.Response:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": USER}
    return post(f"{emu.url}/model/{model}/invoke", body, authorization="Bearer " + KEY)


PER_PROVIDER = {
    "openai": {"gpt-4o"},
    "anthropic": {"claude-sonnet-4-5-20250929", "claude-custom"},
    "gemini": {"gemini-2.5-flash"},
    "ollama": {"llama3.2", "qwen2.5:7b"},
}


def test_lists_name_each_providers_configured_models_only() -> None:
    with Emulator(models=PER_PROVIDER) as emu:
        openai_list = get(emu.url + "/v1/models", authorization="Bearer " + KEY)
        anthropic_list = get(emu.url + "/v1/models", **ANTHROPIC_HEADERS)
        gemini_list = get(emu.url + "/v1beta/models", **{"x-goog-api-key": GOOGLE_KEY})
        ollama_list = get(emu.url + "/api/tags")
        openai_one = get(emu.url + "/v1/models/gpt-4o-mini", authorization="Bearer " + KEY)
        gemini_one = get(emu.url + "/v1beta/models/gemini-2.0-flash", **{"x-goog-api-key": GOOGLE_KEY})
    assert [m["id"] for m in openai_list.json()["data"]] == ["gpt-4o"]
    # Anthropic's list: the models it knows first (newest first), then the others by name.
    assert [m["id"] for m in anthropic_list.json()["data"]] == ["claude-sonnet-4-5-20250929", "claude-custom"]
    assert [m["name"] for m in gemini_list.json()["models"]] == ["models/gemini-2.5-flash"]
    assert [m["name"] for m in ollama_list.json()["models"]] == ["llama3.2:latest", "qwen2.5:7b"]  # tags, as Ollama's
    assert (openai_one.status_code, openai_one.json()["error"]["code"]) == (404, "model_not_found")
    assert (gemini_one.status_code, gemini_one.json()["error"]["status"]) == (404, "NOT_FOUND")


def test_a_set_of_names_is_listed_by_every_provider() -> None:
    with Emulator(models={"gpt-4o", "claude-custom"}) as emu:
        openai_list = get(emu.url + "/v1/models", authorization="Bearer " + KEY)
        anthropic_list = get(emu.url + "/v1/models", **ANTHROPIC_HEADERS)
    assert [m["id"] for m in openai_list.json()["data"]] == ["claude-custom", "gpt-4o"]
    assert [m["id"] for m in anthropic_list.json()["data"]] == ["claude-custom", "gpt-4o"]


@pytest.mark.parametrize(
    ("route", "model", "status"),
    [
        pytest.param(openai_completion, "gpt-4o", 200, id="openai-own"),
        pytest.param(openai_completion, "claude-sonnet-4-5-20250929", 404, id="openai-anthropics"),
        pytest.param(anthropic_message, "claude-sonnet-4-5-20250929", 200, id="anthropic-own"),
        pytest.param(anthropic_message, "gpt-4o", 404, id="anthropic-openais"),
        pytest.param(ollama_api_chat, "qwen2.5:7b", 200, id="ollama-own"),
        pytest.param(ollama_api_chat, "gpt-4o", 404, id="ollama-openais"),
        pytest.param(bedrock_invoke, "any-model-at-all", 200, id="a-provider-left-out-takes-any-name"),
    ],
)
def test_models_by_provider_serve_each_provider_its_own(route, model: str, status: int) -> None:
    with Emulator(models=PER_PROVIDER) as emu:
        assert route(emu, model).status_code == status


def test_models_by_provider_name_only_providers_the_emulator_speaks() -> None:
    with pytest.raises(ValueError, match="models: no provider named 'antropic'; the providers are anthropic, bedrock,"):
        Emulator(models={"openai": {"gpt-4o"}, "antropic": {"claude-sonnet-4-5"}})


# -- one model, several names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "served", "asked", "status"),
    [
        *(
            pytest.param(route, "claude-sonnet-4-5-20250929", asked, status, id=f"{route.__name__}-{asked}")
            for route in (anthropic_message, anthropic_count, anthropic_model)
            for asked, status in [
                ("claude-sonnet-4-5", 200),  # the alias: the id without its date
                ("claude-sonnet-4", 404),  # another model's alias, not a prefix of this one
                ("claude-sonnet-4-5-20250514", 404),  # another date
            ]
        ),
        *(
            pytest.param(route, served, asked, status, id=f"{route.__name__}-{served}-{asked}")
            for route in (ollama_api_chat, ollama_api_embed)
            for served, asked, status in [
                ("llama3.2:latest", "llama3.2", 200),
                ("llama3.2", "llama3.2:latest", 200),
                ("llama3.2", "llama3.2:1b", 404),
            ]
        ),
    ],
)
def test_a_model_is_served_under_each_of_its_names_on_every_route(route, served: str, asked: str, status: int) -> None:
    with Emulator(models={served}) as emu:
        assert route(emu, asked).status_code == status
