"""Deterministic model output: answers, token counts, embeddings, tool arguments.

Every protocol module answers through these functions so that all providers
agree: the same prompt gives the same answer everywhere, a streamed answer is
exactly the concatenation of its chunks, and the usage a body reports is the
number of chunks it streamed. Tests can therefore assert answers and token
counts exactly, whichever wire format they went through.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["tokens", "count_tokens", "answer", "embedding", "tool_arguments", "Tool", "Completion", "complete", "dumps"]

_TOKEN = re.compile(r"\s*\S+")
_PROMPT_ECHO_WORDS = 12


def tokens(text: str) -> list[str]:
    """Split ``text`` into emulated tokens: each word with the spaces before it.

    Joining the pieces gives back the text (minus trailing spaces), which is
    what lets a stream's chunks add up to the non-streamed answer.
    """
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many emulated tokens ``text`` is: a plausible, consistent count."""
    return len(tokens(text))


def answer(prompt: str, max_tokens: int | None = None) -> tuple[str, bool]:
    """The emulated model's answer to ``prompt``, and whether it hit ``max_tokens``.

    The answer echoes the start of the prompt so a test can tell answers to
    different questions apart, and is cut at ``max_tokens`` tokens the way
    a real model stops on its length limit.
    """
    words = prompt.split()[:_PROMPT_ECHO_WORDS]
    text = "Emulated answer to: " + (" ".join(words) if words else "(empty prompt)")
    pieces = tokens(text)
    if max_tokens is not None and max_tokens < len(pieces):
        return "".join(pieces[: max(max_tokens, 0)]).lstrip(), True
    return text, False


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector of ``dimensions`` floats for ``text``.

    Equal texts give equal vectors, different texts nearly orthogonal ones,
    which is all a cache or retrieval test needs.
    """
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimensions)
    vector /= np.linalg.norm(vector)
    return [float(x) for x in vector]


@dataclass(frozen=True)
class Tool:
    """A tool the client offered: its name and the JSON schema of its arguments."""

    name: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    """What the emulated model decided, before any protocol puts it on the wire.

    ``preface`` is a short text some protocols (Anthropic) put before a tool
    call; ``pieces`` are the output tokens a stream sends one by one (the
    answer's, or the tool arguments' JSON).
    """

    text: str
    finish: Literal["stop", "length", "tool"]
    input_tokens: int
    tool: Tool | None = None
    arguments: dict[str, Any] | None = None

    @property
    def arguments_json(self) -> str:
        return dumps(self.arguments or {})

    @property
    def pieces(self) -> list[str]:
        return tokens(self.arguments_json) if self.tool else tokens(self.text)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces)


def complete(
    prompt: str,
    question: str,
    *,
    max_tokens: int | None = None,
    tools: list[Tool] | None = None,
    tool_choice: str | None = None,
    tool_answered: bool = False,
) -> Completion:
    """The emulated model's turn, identical for every provider.

    ``prompt`` is all the text the model was given (it sets the input token
    count), ``question`` the last user text (it sets the answer). When tools
    are offered the model calls one (``tool_choice`` names it, else the
    first) unless the choice is ``"none"`` or the conversation already holds
    a tool result, in which case it answers in text: a predictable
    call-then-answer loop, as a tool-calling test needs.
    """
    input_tokens = count_tokens(prompt)
    if tools and tool_choice != "none" and not tool_answered:
        tool = next((t for t in tools if t.name == tool_choice), tools[0])
        return Completion("", "tool", input_tokens, tool, tool_arguments(tool.schema, question))
    text, cut = answer(question, max_tokens)
    return Completion(text, "length" if cut else "stop", input_tokens)


def tool_arguments(schema: dict[str, Any] | None, prompt: str) -> dict[str, Any]:
    """Arguments for a tool call, valid against the tool's JSON ``schema``.

    Every required property (or every property if none is required) gets a
    value of its declared type; strings carry the start of the prompt so the
    arguments differ between questions.
    """
    schema = schema or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    return {name: _value_for(properties.get(name) or {}, prompt) for name in names}


def _value_for(spec: dict[str, Any], prompt: str) -> Any:
    if spec.get("enum"):
        return spec["enum"][0]
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind).lower()
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value_for(spec.get("items") or {}, prompt)]
    if kind == "object":
        return tool_arguments(spec, prompt)
    return " ".join(prompt.split()[:3]) or "value"


def dumps(value: Any) -> str:
    """Compact JSON, as providers send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
