"""``resilient demo``: a decorated call surviving injected failures, narrated.

The "provider" here is a scripted function that fails the way real LLM APIs
do (503, a 429 with Retry-After, an outage). Delays are scaled down
(``SCALE``) so the whole run takes about a second on the real clock; the
printed numbers are what each layer decided.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TextIO

from .backoff import backoff
from .circuit import Circuit
from .errors import CircuitOpenError, OverloadedError, ProviderError, RateLimitError, ServerError
from .layer import describe

SCALE = 0.01  # one "second" of policy time lasts 10 ms in the demo


class ScriptedProvider:
    """Answers from a script of outcomes: an exception to raise, or ``None`` for a normal answer."""

    def __init__(self, script: Iterator[BaseException | None], say: Callable[[str], None]) -> None:
        self.script = script
        self.say = say
        self.calls = 0
        self.last: float | None = None

    def __call__(self, question: str) -> str:
        self.calls += 1
        now = time.monotonic()
        waited = "" if self.last is None else f" after waiting {(now - self.last) / SCALE:.1f} policy-s"
        self.last = now
        outcome = next(self.script, None)
        if outcome is not None:
            self.say(f"    provider call {self.calls}{waited}: {type(outcome).__name__} {outcome}")
            raise outcome
        self.say(f"    provider call {self.calls}{waited}: 200 OK")
        return f"answer to {question!r}"


def run(out: TextIO) -> int:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    started = time.monotonic()
    breaker = Circuit(
        fail_max=2,
        reset_timeout=5 * SCALE,
        name="provider",
        on_state_change=lambda name, old, new: say(f"  [circuit] {old} -> {new}"),
    )
    script = iter(
        [
            OverloadedError("overloaded", status=529, provider="demo"),
            RateLimitError("rate limited", status=429, provider="demo", retry_after=2 * SCALE),
            None,  # call 1 succeeds on its third attempt
            *[ServerError("outage", status=503, provider="demo")] * 6,  # calls 2 and 3: an outage
        ]
    )
    provider = ScriptedProvider(script, say)

    @breaker
    @backoff(max_retries=2, initial_delay=1 * SCALE, jitter=None)
    def ask(question: str) -> str:
        return provider(question)

    say("resilient demo: @circuit(fail_max=2) over @backoff(max_retries=2) over a scripted provider\n")
    say("1. transient errors are retried (exponential delay, Retry-After honoured):")
    say(f"  -> {ask('what is a circuit breaker?')}")

    say("\n2. an outage: each call's retries run out; two failed calls trip the circuit:")
    for question in ("and a retry budget?", "and a throttle gate?"):
        try:
            ask(question)
        except ProviderError as exc:
            say(f"  -> gave up: {exc} ({exc.__notes__[-1]})")

    say("\n3. while the circuit is open, calls fail fast without reaching the provider:")
    calls_before = provider.calls
    try:
        ask("anyone there?")
    except CircuitOpenError as exc:
        say(f"  -> CircuitOpenError, next probe in {(exc.retry_after or 0) / SCALE:.1f} policy-seconds")
    say(f"  provider calls made: {provider.calls - calls_before}")

    say("\n4. after reset_timeout a probe goes through and closes the circuit:")
    time.sleep(breaker.policy.reset_timeout)
    say(f"  -> {ask('is it back?')}")

    say("\nwhat each layer did (resilient.describe):")
    for layer in describe(ask):
        stats = {k: v for k, v in layer["stats"].items() if v not in (None, 0, 0.0, {}) and k != "opened_at"}
        say(f"  {layer['layer']:<8} {stats}")
    say(f"\ndone in {time.monotonic() - started:.2f}s")
    return 0
