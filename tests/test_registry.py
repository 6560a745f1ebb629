"""The model registry: one file of providers and models, any model invoked in the OpenAI format."""

from __future__ import annotations

import json

import pytest

from resilient.registry import Registry

KEY = "test-key-registry"
REQUEST = {"model": "ignored", "messages": [{"role": "user", "content": "Name a colour"}]}


def registry_for(url: str) -> Registry:
    return Registry.from_dict(
        {
            "providers": [
                {"name": "oa", "type": "openai", "api_key_env": "REGISTRY_TEST_KEY", "api_base": url + "/v1"},
                {"name": "claude", "type": "anthropic", "api_key_env": "REGISTRY_TEST_KEY", "api_base": url},
                {"name": "google", "type": "gemini", "api_key_env": "REGISTRY_TEST_KEY", "api_base": url},
                {"name": "local", "type": "ollama", "api_base": url},
                {"name": "fast", "type": "groq", "api_key_env": "REGISTRY_TEST_KEY", "api_base": url + "/v1"},
                {"name": "vllm", "type": "openai_compatible", "api_base": url + "/v1"},
                {"name": "openvino", "type": "ovms", "api_base": url},
                {"name": "tgi", "type": "hf_tgi", "api_base": url},
                {"name": "aws", "type": "bedrock", "api_base": url, "options": {"region": "eu-west-3"}},
                {"name": "chatqna", "type": "opea", "api_base": url},
            ],
            "models": [
                {"name": "gpt-4o-mini", "provider": "oa"},
                {"name": "claude-3-5-sonnet-20241022", "provider": "claude", "max_tokens": 8192},
                {"name": "gemini-2.0-flash", "provider": "google", "params": {"temperature": 0.2}},
                {"name": "llama3.2", "provider": "local"},
                {"name": "llama-3.1-8b-instant", "provider": "fast"},
                {"name": "Qwen/Qwen2.5-7B-Instruct", "provider": "vllm"},
                {"name": "llama-3.2-1b-int4-ov", "provider": "openvino"},
                {"name": "tgi", "provider": "tgi"},
                {"name": "anthropic.claude-3-5-sonnet-20240620-v1:0", "provider": "aws", "max_tokens": 512},
                {"name": "Intel/neural-chat-7b-v3-3", "provider": "chatqna"},
            ],
        }
    )


MODELS = [
    "gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-2.0-flash", "llama3.2", "llama-3.1-8b-instant",
    "Qwen/Qwen2.5-7B-Instruct", "llama-3.2-1b-int4-ov", "tgi", "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "Intel/neural-chat-7b-v3-3",
]  # fmt: skip


def test_every_provider_type_is_exercised() -> None:
    from resilient.registry import PROVIDER_TYPES

    assert {p.type for p in registry_for("http://unused").providers.values()} == set(PROVIDER_TYPES)


@pytest.mark.parametrize("model", MODELS)
def test_every_provider_answers_in_the_openai_format(emulator, monkeypatch, model: str) -> None:
    openai_types = pytest.importorskip("openai.types.chat")
    monkeypatch.setenv("REGISTRY_TEST_KEY", KEY)
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDREGISTRY0001", "AWS_SECRET_ACCESS_KEY": "emulated",
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)

    completion = registry_for(emulator.url).get(model).invoke(REQUEST)

    parsed = openai_types.ChatCompletion.model_validate(completion)
    assert parsed.choices[0].message.content == "Emulated answer to: Name a colour"
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage.total_tokens == parsed.usage.prompt_tokens + parsed.usage.completion_tokens


def test_model_max_tokens_is_the_default_for_anthropic(emulator, monkeypatch) -> None:
    monkeypatch.setenv("REGISTRY_TEST_KEY", KEY)
    sent = []
    import requests

    session = requests.Session()
    session.hooks["response"].append(lambda r, **_: sent.append(json.loads(r.request.body)))

    registry_for(emulator.url).get("claude-3-5-sonnet-20241022").invoke(REQUEST, session=session)

    assert sent[0]["max_tokens"] == 8192
    assert sent[0]["model"] == "claude-3-5-sonnet-20241022"


def test_loads_toml_and_json_files(tmp_path) -> None:
    (tmp_path / "models.toml").write_text(
        '[[providers]]\nname = "claude"\ntype = "anthropic"\napi_key_env = "ANTHROPIC_API_KEY"\n\n'
        '[[models]]\nname = "claude-3-5-sonnet-20241022"\nprovider = "claude"\nmax_tokens = 4096\n'
        "params = { temperature = 0.7 }\n"
    )
    (tmp_path / "models.json").write_text(json.dumps({"providers": [{"name": "p", "type": "groq"}],
                                                      "models": [{"name": "llama-3.1-8b-instant", "provider": "p"}]}))

    model = Registry.from_file(tmp_path / "models.toml").get("claude-3-5-sonnet-20241022")
    assert (model.provider.type, model.max_tokens, model.params) == ("anthropic", 4096, {"temperature": 0.7})
    assert Registry.from_file(tmp_path / "models.json").get("llama-3.1-8b-instant").provider.name == "p"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"providers": [{"name": "p", "type": "nope"}]}, r"providers\[0\]\.type: unknown type 'nope'"),
        ({"providers": [{"type": "openai"}]}, r"providers\[0\]\.name"),
        ({"models": [{"name": "m", "provider": "claud"}]}, r"models\[0\]\.provider: unknown provider 'claud'"),
        ({"providers": [{"name": "p", "type": "openai"}], "models": [{"name": "m", "provider": "p", "max_tokens": 0}]},
         r"models\[0\]\.max_tokens"),
        ({"providers": [{"name": "p", "type": "openai"}], "models": [{"name": "m", "provider": "p", "params": 3}]},
         r"models\[0\]\.params"),
        ({"providers": {"name": "p"}}, "providers: a list of tables"),
        ({"providers": [{"name": "p", "type": "bedrock", "options": "us-east-1"}]}, r"providers\[0\]\.options"),
    ],
)  # fmt: skip
def test_bad_config_names_the_entry_and_field(data, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Registry.from_dict(data)


def test_invalid_file_syntax_is_a_value_error(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text("[[providers]\n")

    with pytest.raises(ValueError, match="not valid TOML"):
        Registry.from_file(tmp_path / "bad.toml")


def test_unknown_model_lists_the_known_ones(emulator) -> None:
    with pytest.raises(KeyError, match="known: gpt-4o-mini"):
        registry_for(emulator.url).get("gpt-5")
