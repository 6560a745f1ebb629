"""The request id context: set once at the edge, checked at once, sent as ``X-Request-ID``."""

from __future__ import annotations

import asyncio

import pytest

from resilient.request_ids import current_request_id, request_id

MAX_REQUEST_ID_LENGTH = 200


def test_the_id_is_visible_inside_the_block_only() -> None:
    assert current_request_id() is None
    with request_id("trace-42") as rid:
        assert rid == "trace-42"
        assert current_request_id() == "trace-42"
    assert current_request_id() is None


def test_no_argument_gives_a_fresh_random_id() -> None:
    with request_id() as first, request_id() as second:
        assert first != second
        assert len(first) == 32


def test_the_id_reaches_tasks_created_inside_the_block() -> None:
    async def main() -> str | None:
        with request_id("async-7"):
            return await asyncio.create_task(asyncio.sleep(0, current_request_id()))

    assert asyncio.run(main()) == "async-7"


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "req-1",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "trace id with spaces:/=+;,",
        "x" * MAX_REQUEST_ID_LENGTH,
    ],
)
def test_valid_ids_are_accepted(value: str) -> None:
    with request_id(value) as rid:
        assert rid == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (42, "a string is required, got int"),
        (b"req-1", "a string is required, got bytes"),
        ("", "1 to 200 characters"),
        ("x" * (MAX_REQUEST_ID_LENGTH + 1), "1 to 200 characters"),
        ("req-1\r\nX-Evil: 1", "printable ASCII"),
        ("req-1\n", "printable ASCII"),
        ("req\t1", "printable ASCII"),
        ("req-\x00", "printable ASCII"),
        (" req-1", "printable ASCII"),
        ("req-1 ", "printable ASCII"),
        ("req-é", "printable ASCII"),
    ],
)
def test_an_invalid_id_is_a_value_error_when_the_block_is_entered(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match="^request_id: ") as caught:
        with request_id(value):  # type: ignore[arg-type]
            pytest.fail("the block must not run")
    assert reason in str(caught.value)
    assert current_request_id() is None


def test_the_error_message_never_shows_a_key_given_by_mistake() -> None:
    key = "sk-" + "proj-" + "K" * 30 + "9z9z"
    with pytest.raises(ValueError) as caught:
        with request_id(key + "\n"):
            pass
    assert key not in str(caught.value)
    assert "K" * 20 not in str(caught.value)


def test_an_invalid_id_never_reaches_an_adapter_call(emulator) -> None:
    from resilient.adapters import openai

    with pytest.raises(ValueError, match="request_id"):
        with request_id("req-1\r\nX-Evil: 1"):
            openai.chat([{"role": "user", "content": "hi"}], model="gpt-4o", api_key="test-key", base_url=emulator.url + "/v1")
