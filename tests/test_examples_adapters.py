"""Every provider example runs against the emulator, through a rate limit its @backoff waits out in fake time.

Each example makes several calls; with a limit of one request per second
every call after the first gets a 429 with ``Retry-After: 1``, and the
example's @backoff waits exactly that (a floor over its jitter) and succeeds.
The local servers (Ollama, TGI, TEI, OVMS, OPEA) and Gemini send no
Retry-After header themselves: the fault adds it, as a gateway in front of
them would, so that every example's wait is exact.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from resilient.testing.emulator.content import answer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KEY = "example-key-0001"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def limited(emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=True)
    return emulator


def waited_out_every_429(emulator, fake_clock) -> bool:
    limited = [r for r in emulator.requests if r.status == 429]
    return bool(limited) and fake_clock.sleeps == [1.0] * len(limited) and emulator.requests[-1].status == 200


def test_ollama_example(limited, fake_clock) -> None:
    result = load("ollama_chat").main(limited.url)

    assert result["answer"] == result["streamed"] == answer("What is a circuit breaker?")[0]
    assert result["dimensions"] == 768
    assert [layer["layer"] for layer in result["layers"]] == ["circuit", "backoff"]
    assert waited_out_every_429(limited, fake_clock)


def test_gemini_example(limited, fake_clock) -> None:
    result = load("gemini_chat").main(limited.url, api_key=KEY)

    assert result["answer"] == result["streamed"] == answer("What is a circuit breaker?")[0]
    assert [c["name"] for c in result["tool_calls"]] == ["get_weather"]
    assert result["image_answer"] == answer("What is in this picture?")[0]
    assert waited_out_every_429(limited, fake_clock)


def test_groq_example(limited, fake_clock) -> None:
    result = load("groq_chat").main(limited.url + "/v1", api_key=KEY)

    assert result["model"] == "llama-3.1-8b-instant"
    assert result["answer"] == answer("What is a circuit breaker?")[0]
    assert "meta-llama/llama-4-scout-17b-16e-instruct" in result["vision"]
    assert waited_out_every_429(limited, fake_clock)


def test_openai_compatible_example(limited, fake_clock, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "local-" + "key-0001")  # the emulator's /v1 is OpenAI's
    result = load("openai_compatible_chat").main(limited.url + "/v1")

    assert result["answer"] == result["streamed"] == answer("What is a circuit breaker?")[0]
    assert result["embeddings"] == 2
    assert waited_out_every_429(limited, fake_clock)


def test_hf_tgi_example(limited, fake_clock, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_" + "test0001")  # its chat goes to the emulator's /v1, which is OpenAI's
    result = load("hf_tgi_generate").main(limited.url)

    assert result["text"] == result["chat"] == answer("Explain gravity", 40)[0]
    assert "".join(result["tokens"]).strip() == result["text"]
    assert waited_out_every_429(limited, fake_clock)


def test_hf_tei_example(limited, fake_clock) -> None:
    result = load("hf_tei_search").main(limited.url)

    assert result == {"vectors": 3, "best": "A circuit breaker fails fast.", "self_similarity": pytest.approx(1.0)}
    assert waited_out_every_429(limited, fake_clock)


def test_ovms_example(limited, fake_clock) -> None:
    result = load("ovms_infer").main(limited.url)

    assert result == {"answer": answer("What is OpenVINO?")[0], "output_shape": [2, 384]}
    assert waited_out_every_429(limited, fake_clock)


def test_opea_example(limited, fake_clock) -> None:
    result = load("opea_chatqna").main(limited.url)

    assert result["answer"] == result["streamed"] == answer("What is the revenue of Nike in 2023?")[0]
    assert waited_out_every_429(limited, fake_clock)
