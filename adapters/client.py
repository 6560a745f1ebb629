"""Prebuilt clients: an adapter's functions behind the recommended stack, for one import.

``anthropic.Client()`` (and the same in every keyed adapter) wraps the
module's call functions (``chat``, ``stream_chat``, ``embed``, ``generate``...,
whichever it has) in queue → circuit →
backoff → key pool, outermost first, with the defaults the toolkit was
specified with: 5 concurrent calls, 100 waiting, 5 retries from 1 s doubling
to 16 s, a breaker opening after 5 consecutive provider faults for 30 s.
One queue, one breaker, one retry policy and one key pool serve all of the
client's methods, so a 529 storm seen by ``chat`` also protects ``embed``.

Local servers (Ollama, TGI, TEI, OVMS, OPEA, any OpenAI-compatible server)
and Bedrock (signed with AWS credentials rather than a key) declare
``KEY_OPTIONAL``: when no key is given or found in the environment, their
client's pool is *keyless* — one endpoint, ``"no-key"``, that sends none but
is counted and paced exactly like a key, so ``stats()`` has the same shape
for every provider. A provider that needs a key fails at construction,
naming the variables it looked for.

Pacing: adapters return the provider's rate-limit headers in
``result["rate_limit"]``; when a key has nothing left, the key pool cools it
until one request is back, so the next call waits (through ``@backoff``, at
least that long: the retry's own jittered delay when that is longer) instead
of collecting a 429. Users need not know their limits.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import Any

from resilient import clock as _clock
from resilient.backoff import Backoff, BackoffPolicy
from resilient.circuit import Circuit
from resilient.errors import NoKeyAvailableError
from resilient.layer import describe
from resilient.multiplex import KeyPool
from resilient.queue import RequestQueue
from resilient.secrets import fingerprint

__all__ = ["Client"]

#: Every adapter function that calls the provider. Listings and readiness probes
#: (``list_models``, ``model_ready``) stay outside the stack: they ask what is
#: there now, which retries and an open breaker would only delay.
_METHODS = (
    "chat", "stream_chat", "embed", "text_to_image",  # the chat providers
    "chat_openai", "stream_chat_openai",  # Anthropic behind the OpenAI format
    "generate", "stream_generate", "generate_text", "stream_generate_text",  # Ollama, TGI
    "chatqna", "stream_chatqna", "infer", "process_image", "rerank",  # OPEA, OVMS, Gemini, TEI
)  # fmt: skip
#: Helpers that make their requests through the module's ``embed`` (``embed_with=``):
#: they get the client's stacked one, so each request has its own queue slot and
#: a retry repeats the one that failed, not the whole batch.
_COMPOSED = ("batch_embed", "similarity")
_TOTALS = ("total_requests", "successful_requests", "failed_requests", "total_tokens", "input_tokens", "output_tokens")


class Client:
    """A provider module's functions, each behind the shared stack; see the module docstring.

    ``api_key`` is one key, a list of keys, or ``None`` for the provider's
    environment variable and its numbered variants (``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_API_KEY_1``, ...). Every layer is tunable through
    ``client.policy.queue`` / ``.circuit`` / ``.backoff`` / ``.keys``.
    """

    def __init__(
        self,
        module: types.ModuleType,
        *,
        api_key: str | Sequence[str] | None = None,
        base_url: str | None = None,
        max_concurrent: int = 5,
        queue_size: int = 100,
        max_retries: int = 5,
        initial_delay: float = 1.0,
        factor: float = 2.0,
        max_delay: float = 16.0,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        strategy: Any = "round-robin",
        clock: _clock.Clock | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self.provider: str = module.PROVIDER
        self.base_url = base_url
        # base_url goes to the adapter under its own name (Bedrock: endpoint_url).
        base_param = getattr(module, "BASE_URL_PARAM", "base_url")
        self.defaults = {**({base_param: base_url} if base_url else {}), **(defaults or {})}
        self.keys = _pool(module, api_key, strategy, clock)
        self.retry = Backoff(
            BackoffPolicy(max_retries=max_retries, initial_delay=initial_delay, factor=factor, max_delay=max_delay),
            clock=clock,
        )
        self.circuit = Circuit(fail_max=fail_max, reset_timeout=reset_timeout, name=self.provider, clock=clock)
        self.queue = RequestQueue(max_concurrent=max_concurrent, queue_size=queue_size, name=self.provider, clock=clock)
        self.policy = types.SimpleNamespace(
            queue=self.queue.policy, circuit=self.circuit.policy, backoff=self.retry.policy, keys=self.keys.policy
        )
        stacked = tuple(name for name in _METHODS if hasattr(module, name))
        composed = tuple(name for name in _COMPOSED if hasattr(module, name))
        #: The adapter functions this client offers, each behind the stack.
        self.methods = stacked + composed
        for name in stacked:
            setattr(self, name, self._stack(getattr(module, name)))
        for name in composed:
            helper = getattr(module, name)
            setattr(self, name, functools.update_wrapper(functools.partial(helper, embed_with=getattr(self, "embed")), helper))

    def _stack(self, function: Callable[..., Any]) -> Callable[..., Any]:
        call = functools.partial(function, **self.defaults) if self.defaults else function
        wrapped = self.queue(self.circuit(self.retry.wrap(self.keys(call))))
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):  # a partial has none of its own
            setattr(wrapped, attr, getattr(function, attr))
        return wrapped

    def describe(self) -> list[dict[str, Any]]:
        """Every layer of the stack, outermost first (as :func:`resilient.describe`)."""
        return describe(getattr(self, self.methods[0]))  # every method has the same layers

    def stats(self) -> dict[str, Any]:
        """Usage aggregated over keys, and per key (masked): the seeds' statistics shape."""
        per_key = {
            name: {
                "total_requests": k["requests"],
                "successful_requests": k["successes"],
                "failed_requests": k["failures"],
                "total_tokens": k["total_tokens"],
                "input_tokens": k["input_tokens"],
                "output_tokens": k["output_tokens"],
                "fingerprint": k["key"],
                "disabled": k["disabled"],
                "cooling_for": k["cooling_for"],
            }
            for name, k in self.keys.stats()["keys"].items()
        }
        totals = {field: sum(k[field] for k in per_key.values()) for field in _TOTALS}
        return {**totals, "endpoints_count": len(per_key), "keys": per_key}

    def get_stats(self, key_fingerprint: str | None = None) -> dict[str, Any]:
        """All stats, or one key's by its fingerprint (``sk-…a1b2``) or name."""
        stats = self.stats()
        if key_fingerprint is None:
            return stats
        for name, entry in stats["keys"].items():
            if key_fingerprint in (name, entry["fingerprint"]):
                return entry
        raise KeyError(f"no key {key_fingerprint!r} in this client; keys: {', '.join(stats['keys'])}")

    def __repr__(self) -> str:
        keys = "none (keyless)" if self.keys.keyless else "[" + ", ".join(fingerprint(k._secret) for k in self.keys.keys) + "]"
        return f"{self.provider}.Client(keys={keys}, base_url={self.base_url!r})"


def _pool(module: types.ModuleType, api_key: str | Sequence[str] | None, strategy: Any, clock: Any) -> KeyPool:
    """The given keys, else the environment's, else (for a provider that can go without) a keyless pool.

    The environment is searched variable by variable (``GOOGLE_API_KEY``, then
    ``GEMINI_API_KEY``), each with its numbered variants; the first that has
    keys is used.
    """
    # A dict names its keys ({name: key}): KeyPool takes it as is; a list of its names would be sent as keys.
    keys = [api_key] if isinstance(api_key, str) else (dict(api_key) if isinstance(api_key, dict) else list(api_key or []))
    name = module.PROVIDER
    if keys:
        return KeyPool(keys, strategy=strategy, name=name, clock=clock)
    for var in module.KEY_ENV:
        try:
            return KeyPool(env=var, strategy=strategy, name=name, clock=clock)
        except NoKeyAvailableError:
            continue
    if getattr(module, "KEY_OPTIONAL", False):
        return KeyPool(keyless=True, strategy=strategy, name=name, clock=clock)
    looked = ", ".join(f"{var}, {var}_1, ..." for var in module.KEY_ENV)
    raise NoKeyAvailableError(f"no API key for {name}: pass api_key= or set one of {looked} (environment or .env)")
