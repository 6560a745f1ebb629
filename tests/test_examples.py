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


def test_retry_requests_survives_503_and_429() -> None:
    result = load("retry_requests").main()

    assert result["answer"] == "hello"
    circuit_layer, backoff_layer = result["layers"]
    assert backoff_layer["stats"]["attempts"] == 3
    assert backoff_layer["stats"]["slept"] >= 0.05  # the 429's Retry-After was honoured
    assert circuit_layer["stats"]["state"] == "closed"
