"""Every example runs and does what its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retry_requests_survives_503_and_429(fake_clock) -> None:
    result = load("retry_requests").main()

    assert result["answer"] == "hello"
    circuit_layer, backoff_layer = result["layers"]
    assert backoff_layer["stats"]["attempts"] == 3
    assert fake_clock.sleeps == [0.01, 0.05]  # the first delay, then the 429's Retry-After
    assert circuit_layer["stats"]["state"] == "closed"


def test_openai_example_spreads_calls_over_two_keys(emulator, fake_clock) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)

    result = load("openai_chat").main(emulator.url + "/v1", api_keys=["example-key-0001", "example-key-0002"])

    assert result["answers"][0] == "Emulated answer to: What is a circuit breaker?"
    assert result["streamed"] == "Emulated answer to: Say hello"
    assert result["dimensions"] == 1536
    stats = result["stats"]
    assert stats["endpoints_count"] == 2 and stats["failed_requests"] == 0
    assert [usage["total_requests"] for usage in stats["keys"].values()] == [3, 2]
    assert 429 not in [r.status for r in emulator.requests]  # paced on the rate-limit headers


def test_anthropic_example_streams_calls_tools_and_speaks_openai(emulator, fake_clock) -> None:
    result = load("anthropic_chat").main(emulator.url, api_key="example-key-0001")

    assert result["streamed"] == "Emulated answer to: What is a circuit breaker?"
    assert result["usage"]["output_tokens"] > 0
    assert [call["name"] for call in result["tool_calls"]] == ["get_weather"]
    assert result["openai_format"]["object"] == "chat.completion"
    assert [layer["layer"] for layer in result["layers"]] == ["circuit", "backoff"]
