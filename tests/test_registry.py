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
    if model in ("Qwen/Qwen2.5-7B-Instruct", "tgi"):
        emulator.keyless.add("openai")  # vLLM and TGI speak OpenAI's /v1 dialect and take no key

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


# ----------------------------------------------------------------- keys

TEAM_KEY = "sk-" + "team-" + "T" * 24 + "TTTT"
DEFAULT_KEY = "sk-" + "default-" + "D" * 24 + "DDDD"
INLINE_KEY = "sk-" + "inline-" + "I" * 24 + "IIII"


@pytest.fixture
def seen_keys(monkeypatch, tmp_path) -> list:
    """The key each openai adapter call resolves to, with OPENAI_API_KEY holding another account's key."""
    from resilient.adapters import _http
    from resilient.adapters import openai as openai_adapter

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
    monkeypatch.delenv("TEAM_B_OPENAI_KEY", raising=False)
    seen: list = []

    def chat(messages, *, model, api_key=None, **kw):
        seen.append(_http.credential(api_key, ["OPENAI_API_KEY"], "openai"))
        return {"raw": {"object": "chat.completion"}}

    monkeypatch.setattr(openai_adapter, "chat", chat)
    return seen


def one_provider(**provider) -> Registry:
    return Registry.from_dict({"providers": [{"name": "p", "type": "openai", **provider}],
                               "models": [{"name": "m", "provider": "p"}]})  # fmt: skip


def test_an_unset_api_key_env_is_an_error_naming_it_not_a_fall_back(seen_keys) -> None:
    from resilient.errors import AuthenticationError

    with pytest.raises(AuthenticationError, match="TEAM_B_OPENAI_KEY, which is not set") as caught:
        one_provider(api_key_env="TEAM_B_OPENAI_KEY").get("m").invoke(REQUEST)

    assert seen_keys == []
    assert DEFAULT_KEY not in str(caught.value)


def test_a_set_api_key_env_is_used(seen_keys, monkeypatch) -> None:
    monkeypatch.setenv("TEAM_B_OPENAI_KEY", TEAM_KEY)

    one_provider(api_key_env="TEAM_B_OPENAI_KEY").get("m").invoke(REQUEST)

    assert seen_keys == [TEAM_KEY]


def test_api_key_env_is_also_read_from_dotenv(seen_keys, tmp_path) -> None:
    (tmp_path / ".env").write_text(f"TEAM_B_OPENAI_KEY={TEAM_KEY}\n")

    one_provider(api_key_env="TEAM_B_OPENAI_KEY").get("m").invoke(REQUEST)

    assert seen_keys == [TEAM_KEY]


def test_a_key_given_per_call_needs_no_api_key_env(seen_keys) -> None:
    one_provider(api_key_env="TEAM_B_OPENAI_KEY").get("m").invoke(REQUEST, api_key=INLINE_KEY)

    assert seen_keys == [INLINE_KEY]


def test_a_key_in_options_is_honoured(seen_keys) -> None:
    one_provider(options={"api_key": INLINE_KEY}).get("m").invoke(REQUEST)

    assert seen_keys == [INLINE_KEY]


def test_without_any_key_setting_the_adapter_uses_its_usual_variable(seen_keys) -> None:
    one_provider().get("m").invoke(REQUEST)

    assert seen_keys == [DEFAULT_KEY]


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"api_key_env": "TEAM_B_OPENAI_KEY", "options": {"api_key": INLINE_KEY}}, r"options\.api_key: .* not both"),
        ({"options": {"api_key": ""}}, r"options\.api_key: a non-empty string"),
        ({"options": {"api_key": 12345}}, r"options\.api_key: a non-empty string"),
        ({"api_key_env": INLINE_KEY}, r"api_key_env: the name of an environment variable"),
        ({"api_key_env": "TEAM-B KEY"}, r"api_key_env: the name of an environment variable"),
        ({"options": INLINE_KEY}, r"providers\[0\]\.options"),
        ({"api_base": 7}, r"providers\[0\]\.api_base"),
    ],
)  # fmt: skip
def test_bad_key_settings_are_refused_at_load_without_showing_the_key(provider, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        one_provider(**provider)

    assert INLINE_KEY not in str(caught.value)
    assert INLINE_KEY[3:-4] not in str(caught.value)


SECRET = "sk-" + "proj-" + "S" * 24 + "abcd"
AWS_SECRET = "wJalrXUtnFEMI" + "/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
URL_PASSWORD = "pr0xy" + "%2Fpass" + "w" * 12


def test_repr_of_a_provider_and_a_model_masks_every_secret() -> None:
    registry = Registry.from_dict(
        {
            "providers": [
                {"name": "p", "type": "openai_compatible", "api_base": f"https://user:{URL_PASSWORD}@proxy.example/v1",
                 "options": {"api_key": SECRET, "timeout": 30, "headers": {"Authorization": "Bearer " + SECRET}}},
                {"name": "aws", "type": "bedrock", "options": {"aws_access_key_id": "AK" + "IA" + "ABCDEFGHIJKLWXYZ",
                 "aws_secret_access_key": AWS_SECRET, "aws_session_token": "Fwo" + "Z" * 60, "region": "us-east-1"}},
            ],
            "models": [
                {"name": "m", "provider": "p", "params": {"extra_headers": {"x-api-key": SECRET}, "temperature": 0.5, "max_tokens": 64}},
                {"name": "b", "provider": "aws"},
            ],
        }
    )  # fmt: skip

    shown = repr(registry.get("m")) + repr(registry.get("b")) + str(registry.get("m")) + repr(registry.providers)

    for secret in (SECRET, SECRET[8:-4], AWS_SECRET, AWS_SECRET[4:-4], "Z" * 20, "ABCDEFGHIJKL", URL_PASSWORD[:-4]):
        assert secret not in shown
    assert "sk-proj-…abcd" in shown
    assert "'timeout': 30" in shown and "'temperature': 0.5" in shown and "'max_tokens': 64" in shown and "'region': 'us-east-1'" in shown
    assert "proxy.example/v1" in shown


def test_repr_without_secrets_reads_like_a_dataclass_repr() -> None:
    model = one_provider(api_key_env="TEAM_B_OPENAI_KEY", options={"timeout": 30}).get("m")

    assert repr(model) == (
        "ModelConfig(name='m', provider=ProviderConfig(name='p', type='openai', api_key_env='TEAM_B_OPENAI_KEY',"
        " api_base=None, options={'timeout': 30}), max_tokens=None, params={})"
    )
