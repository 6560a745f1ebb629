"""Claude on Amazon Bedrock behind @circuit and @backoff: a chat, a stream, a tool call.

Run: python examples/bedrock_chat.py [endpoint_url] [model_id]
Credentials and region come from the usual AWS places (or a Bedrock API key
in ``AWS_BEARER_TOKEN_BEDROCK``). With no endpoint and no credentials, a
local emulator that speaks Bedrock's wire format is started and given
placeholder credentials, so the example runs anywhere without touching AWS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff, circuit
from resilient.adapters import bedrock

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

chat = circuit(fail_max=5, reset_timeout=30)(backoff(max_retries=3)(bedrock.chat))
stream_chat = backoff(max_retries=3)(bedrock.stream_chat)


def main(endpoint_url: str | None = None, model: str = MODEL) -> dict[str, Any]:
    with server(endpoint_url) as (url, credentials):
        options = {"model": model, "endpoint_url": url, "max_tokens": 200, **credentials}
        question = [{"role": "user", "content": "What is a circuit breaker?"}]
        answer = chat(question, system="Answer in one sentence.", **options)
        streamed = "".join(chunk["text"] for chunk in stream_chat(question, system="Answer in one sentence.", **options))
        tool = chat([{"role": "user", "content": "Weather in Rome?"}], tools=[WEATHER], tool_choice={"type": "any"}, **options)
    return {"answer": answer["text"], "streamed": streamed, "tool_calls": tool["tool_calls"], "usage": answer["usage"]}


@contextmanager
def server(endpoint_url: str | None) -> Iterator[tuple[str | None, dict[str, str]]]:
    """The given endpoint or AWS with the environment's credentials, else a local emulator and placeholders."""
    if endpoint_url or os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE") or os.environ.get(
        "AWS_BEARER_TOKEN_BEDROCK"
    ):
        yield endpoint_url, {}
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url, {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "example", "region": "us-east-1"}


if __name__ == "__main__":
    print(main(*sys.argv[1:3]))
