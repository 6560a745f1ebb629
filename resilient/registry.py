"""A model registry: providers and models in one TOML or JSON file, invoked in the OpenAI format.

::

    [[providers]]
    name = "claude"                  # how models refer to it
    type = "anthropic"               # which adapter speaks to it
    api_key_env = "ANTHROPIC_API_KEY"
    api_base = "https://api.anthropic.com"     # optional: the adapter's default otherwise
    options = { timeout = 30 }       # optional: keyword arguments for every call

    [[providers]]
    name = "aws"
    type = "bedrock"                 # api_base is Bedrock's endpoint_url; no key: SigV4 credentials
    options = { region = "us-west-2" }

    [[models]]
    name = "claude-3-5-sonnet-20241022"
    provider = "claude"
    max_tokens = 8192                # used when a request gives none
    params = { temperature = 0.7 }   # defaults under every request's own values

``Registry.from_file("models.toml").get("claude-3-5-sonnet-20241022").invoke(request)``
takes an OpenAI chat request and returns an OpenAI ``chat.completion``
whatever the provider: OpenAI-dialect servers answer in it already (their raw
answer is returned); Anthropic goes through ``anthropic.chat_openai``; every
other adapter's result dict is translated by
``translate.result_to_openai``. This is the file format the gateway reads too.

A bad file is refused at load with a ``ValueError`` naming the entry and the
field (``models[2].provider: unknown provider 'claud'``), not at the first call.

Keys. ``api_key_env`` names the variable holding the provider's key (looked
up in the environment, then ``./.env``, at each call); if it is unset the
call raises ``AuthenticationError`` naming the variable -- it never falls
back to the adapter's usual variable (``OPENAI_API_KEY``...), which may hold
another team's key. Without ``api_key_env`` the adapter looks in its usual
variable, unless ``options = { api_key = "..." }`` gives the key itself:
that is honoured (handy for local servers with a fixed token or generated
files; the file is then a secret), and giving both is refused at load. A
key passed to ``invoke(..., api_key=...)`` wins over both. ``repr`` of a
provider or model shows secret-looking options and parameters (``api_key``,
``aws_secret_access_key``, ``*_token``, ``*password*``, ``Authorization``, ...,
at any depth) as fingerprints, and redacts credentials in URLs.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from .secrets import fingerprint, redact

__all__ = ["Registry", "ProviderConfig", "ModelConfig", "ProviderType", "PROVIDER_TYPES"]

class ProviderType(NamedTuple):
    """How a provider ``type`` is reached: its adapter, how it answers, what to call."""

    module: str
    style: str  # "openai_raw": answers OpenAI JSON already; "anthropic": chat_openai; "translated": result dict
    call: str = "chat"


#: type -> how it is invoked
PROVIDER_TYPES: dict[str, ProviderType] = {
    "openai": ProviderType("openai", "openai_raw"),
    "groq": ProviderType("groq", "openai_raw"),
    "openai_compatible": ProviderType("openai_compatible", "openai_raw"),
    "ovms": ProviderType("ovms", "openai_raw"),
    "anthropic": ProviderType("anthropic", "anthropic"),
    "bedrock": ProviderType("bedrock", "translated"),
    "gemini": ProviderType("gemini", "translated"),
    "ollama": ProviderType("ollama", "translated"),
    "hf_tgi": ProviderType("hf_tgi", "translated"),
    "opea": ProviderType("opea", "translated", call="chatqna"),
}


@dataclass(frozen=True, repr=False)
class ProviderConfig:
    name: str
    type: str
    api_key_env: str | None = None
    api_base: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def api_key(self) -> str | None:
        """The key for this provider's calls, or ``None`` to let the adapter look in its usual variable.

        With ``api_key_env``: that variable (environment, then ``.env``), and
        an :class:`~resilient.errors.AuthenticationError` naming it when it is
        unset or empty -- never a silent fall-back to the adapter's default
        variable, which may hold another account's key. Otherwise the
        ``api_key`` of ``options``, if any.
        """
        if not self.api_key_env:
            key = self.options.get("api_key")
            return key if isinstance(key, str) and key else None
        from .adapters import _http
        from .errors import AuthenticationError

        key = _http.setting([self.api_key_env])
        if not key:
            raise AuthenticationError(
                f"provider {self.name!r}: api_key_env names {redact(self.api_key_env)}, which is not set"
                " (environment or .env); set it, or drop api_key_env to use the adapter's usual variable",
                provider=self.type,
            )
        return key

    def __repr__(self) -> str:
        return (
            f"ProviderConfig(name={self.name!r}, type={self.type!r}, api_key_env={_shown(self.api_key_env)},"
            f" api_base={_shown(self.api_base)}, options={_shown(self.options)})"
        )


@dataclass(frozen=True, repr=False)
class ModelConfig:
    name: str
    provider: ProviderConfig
    max_tokens: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"ModelConfig(name={self.name!r}, provider={self.provider!r}, max_tokens={self.max_tokens!r},"
            f" params={_shown(self.params)})"
        )

    def invoke(self, request: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """Run an OpenAI chat request on this model; returns an OpenAI ``chat.completion`` dict.

        The request's ``model`` is replaced by this one's name; ``options``
        (``timeout``, ``request_id``, ``session``) go to the adapter.
        """
        if not isinstance(request.get("messages"), list):
            raise ValueError("request.messages: a list of OpenAI chat messages is required")
        merged = {**self.params, **request, "model": self.name}
        if self.max_tokens is not None:
            merged.setdefault("max_tokens", self.max_tokens)
        kind = PROVIDER_TYPES[self.provider.type]
        module = _adapter(kind.module)
        connection = dict(self.provider.options)
        if "api_key" not in options:  # a key given for this call makes the configured one irrelevant
            connection["api_key"] = self.provider.api_key()
        connection.update(options)
        if self.provider.api_base:  # under the adapter's name for it (Bedrock: endpoint_url)
            connection[getattr(module, "BASE_URL_PARAM", "base_url")] = self.provider.api_base
        if kind.style == "anthropic":
            return module.chat_openai(merged, default_max_tokens=self.max_tokens, **connection)
        messages = merged.pop("messages")
        merged.pop("stream", None)
        model = merged.pop("model")
        result = getattr(module, kind.call)(messages, model=model, **connection, **merged)
        if kind.style == "openai_raw":
            return dict(result["raw"])
        from .adapters import translate

        return translate.result_to_openai(result)


# Option and parameter names whose values are credentials: shown as fingerprints.
_SECRET_NAME = re.compile(r"(?i)api[_-]?key|secret|token$|passw(?:or)?d|credential|authorization|^auth$|^key$")


def _masked(value: Any) -> Any:
    """``value`` with every string under a secret-looking name replaced by its fingerprint, at any depth."""
    if isinstance(value, Mapping):
        return {
            k: fingerprint(v) if isinstance(v, str) and isinstance(k, str) and _SECRET_NAME.search(k) else _masked(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v) for v in value)
    return value


def _shown(value: Any) -> str:
    """``repr(value)`` safe to print: secret-named entries fingerprinted, then free text redacted."""
    return redact(repr(_masked(value)))


def _adapter(name: str) -> ModuleType:
    return importlib.import_module(f"resilient.adapters.{name}")


class Registry:
    """Providers and models by name; build with :meth:`from_file` or :meth:`from_dict`."""

    def __init__(self, providers: Mapping[str, ProviderConfig], models: Mapping[str, ModelConfig]) -> None:
        self.providers = dict(providers)
        self.models = dict(models)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Registry:
        """Load a ``.toml`` or ``.json`` file (by its suffix)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Registry:
        """Validate and build; every error names the entry and the field."""
        if not isinstance(data, Mapping):
            raise ValueError("registry: a table with 'providers' and 'models' lists is required")
        providers: dict[str, ProviderConfig] = {}
        for i, entry in enumerate(_entries(data, "providers")):
            where = f"providers[{i}]"
            name = _text(entry, "name", where)
            kind = _text(entry, "type", where)
            if kind not in PROVIDER_TYPES:
                raise ValueError(f"{where}.type: unknown type {kind!r}; known: {', '.join(PROVIDER_TYPES)}")
            if name in providers:
                raise ValueError(f"{where}.name: provider {name!r} is declared twice")
            options = entry.get("options", {})
            if not isinstance(options, Mapping):
                raise ValueError(
                    f"{where}.options: a table of keyword arguments for every call is required, got {_shown(options)}"
                )
            api_key_env = _text(entry, "api_key_env", where, required=False)
            if api_key_env is not None and not _ENV_NAME.fullmatch(api_key_env):
                raise ValueError(
                    f"{where}.api_key_env: the name of an environment variable is required (letters, digits, _),"
                    " got something else (not shown: it may be the key itself, which belongs in that variable)"
                )
            if "api_key" in options:
                if not isinstance(options["api_key"], str) or not options["api_key"].strip():
                    raise ValueError(f"{where}.options.api_key: a non-empty string is required")
                if api_key_env is not None:
                    raise ValueError(f"{where}.options.api_key: give the key by api_key_env or by options.api_key, not both")
            providers[name] = ProviderConfig(
                name,
                kind,
                api_key_env,
                _text(entry, "api_base", where, required=False),
                dict(options),
            )
        models: dict[str, ModelConfig] = {}
        for i, entry in enumerate(_entries(data, "models")):
            where = f"models[{i}]"
            name = _text(entry, "name", where)
            provider = _text(entry, "provider", where)
            if provider not in providers:
                raise ValueError(f"{where}.provider: unknown provider {provider!r}; declared: {', '.join(providers) or 'none'}")
            max_tokens = entry.get("max_tokens")
            if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
                raise ValueError(f"{where}.max_tokens: an integer >= 1 is required, got {max_tokens!r}")
            params = entry.get("params", {})
            if not isinstance(params, Mapping):
                raise ValueError(f"{where}.params: a table of default request parameters is required, got {_shown(params)}")
            if name in models:
                raise ValueError(f"{where}.name: model {name!r} is declared twice")
            models[name] = ModelConfig(name, providers[provider], max_tokens, dict(params))
        return cls(providers, models)

    def get(self, name: str) -> ModelConfig:
        """The model called ``name``; ``KeyError`` listing the known ones otherwise."""
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(self.models) or 'none'}") from None

    def __repr__(self) -> str:
        return f"Registry(providers={list(self.providers)}, models={list(self.models)})"


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise ValueError(f"{key}: a list of tables is required")
    return entries


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.{key}: a non-empty string is required, got {_shown(value)}")
    return value
