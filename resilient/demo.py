"""``resilient demo``: a decorated call surviving injected failures, narrated.

A real HTTP round trip: the Anthropic adapter talks to the provider emulator
on 127.0.0.1, which is told to misbehave the way real APIs do (a rate limit
with Retry-After, then an outage). Policies are scaled down to fractions of a
second so the run takes about two seconds; what each layer decided, and
every request the "provider" received, is printed as it happens.
"""

from __future__ import annotations

import time
from typing import TextIO

from .adapters import anthropic
from .backoff import backoff
from .circuit import Circuit
from .errors import CircuitOpenError, ProviderError
from .layer import describe
from .testing.emulator import Emulator

def run(out: TextIO) -> int:
    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    started = time.monotonic()
    with Emulator() as emu:
        seen = 0

        def provider_log() -> None:
            nonlocal seen
            for record in emu.requests[seen:]:
                at = record.time - emu.requests[0].time
                say(f"    provider got request at +{at:.2f}s -> {record.status}")
            seen = len(emu.requests)

        breaker = Circuit(
            fail_max=2,
            reset_timeout=0.5,
            name="anthropic",
            on_state_change=lambda name, old, new: say(f"    [circuit] {old} -> {new}"),
        )

        @breaker
        @backoff(max_retries=2, initial_delay=0.1, factor=2, jitter=None)
        def ask(question: str) -> str:
            messages = [{"role": "user", "content": question}]
            return anthropic.chat(messages, model="claude-demo", api_key="demo-key", base_url=emu.url)["text"]

        def attempt(question: str) -> None:
            try:
                say(f"  -> {ask(question)!r}")
            except CircuitOpenError as exc:
                say(f"  -> failed fast: {exc}")
            except ProviderError as exc:
                say(f"  -> gave up: {exc} [{exc.__notes__[-1]}]")
            provider_log()

        say("resilient demo: @circuit(fail_max=2, reset_timeout=0.5) over")
        say("                @backoff(max_retries=2, initial_delay=0.1) over resilient.adapters.anthropic.chat,")
        say(f"                against the provider emulator at {emu.url}\n")

        say("1. a normal call")
        attempt("What is a circuit breaker?")

        say("\n2. the provider allows 2 requests per second; a third is answered 429 + Retry-After,")
        say("   and @backoff waits exactly that long instead of guessing")
        emu.add_fault("rate_limit", rps=2, burst=2)
        for question in ("one", "two", "three"):
            attempt(f"Question {question}?")
        emu.clear_faults()

        say("\n3. a 0.8 s outage (503): each call's retries run out, two failed calls open the circuit")
        emu.add_fault("outage", duration=0.8, status=503)
        attempt("Anyone there?")
        attempt("Still down?")

        say("\n4. while the circuit is open, calls fail fast and never reach the provider")
        attempt("Hello?")

        say("\n5. after reset_timeout a probe goes through; the outage is over, the circuit closes")
        time.sleep(breaker.retry_after() + 0.35)
        attempt("Back now?")

        say("\nwhat each layer did (resilient.describe):")
        for layer in describe(ask):
            stats = {k: v for k, v in layer["stats"].items() if v not in (None, 0, 0.0, {}) and k != "opened_at"}
            if "slept" in stats:
                stats["slept"] = round(stats["slept"], 3)
            say(f"  {layer['layer']:<8} {stats}")
        statuses = [r.status for r in emu.requests]
        counts = ", ".join(f"{statuses.count(s)} x {s}" for s in sorted(set(statuses), key=str))
        say(f"  provider {len(statuses)} requests: {counts}")
    say(f"\ndone in {time.monotonic() - started:.2f}s")
    return 0
