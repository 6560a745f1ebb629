"""Anthropic Messages API: ``/v1/messages`` and ``/v1/messages/count_tokens``.

Streams send every event type in the documented order (``message_start``,
``content_block_start``, ``ping``, ``content_block_delta``,
``content_block_stop``, ``message_delta``, ``message_stop``), and an
``error`` event when a fault cuts the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion, Tool
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse
from . import Protocol, Quota, Route, utc_timestamp

__all__ = ["Anthropic"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}


class Anthropic(Protocol):
    name: ClassVar[str] = "anthropic"
    request_id_header = "request-id"
    request_id_prefix = "req_"

    def routes(self) -> list[Route]:
        return [
            self.route("POST", "/v1/messages", self.messages),
            self.route("POST", "/v1/messages/count_tokens", self.count_tokens),
        ]

    def api_key(self, request: Request) -> str | None:
        return request.header("x-api-key") or request.bearer_token()

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        return JsonReply(status, _error_body(status, message))

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        return sse(_error_body(status, message), "error")

    def rate_limit_headers(self, quota: Quota) -> dict[str, str]:
        now = self.clock.time()
        headers = {
            "anthropic-ratelimit-requests-limit": str(quota.requests_limit),
            "anthropic-ratelimit-requests-remaining": str(quota.requests_remaining),
            "anthropic-ratelimit-requests-reset": utc_timestamp(now + quota.requests_reset),
        }
        if quota.tokens_limit is not None:
            for family in ("tokens", "input-tokens"):
                headers[f"anthropic-ratelimit-{family}-limit"] = str(quota.tokens_limit)
                headers[f"anthropic-ratelimit-{family}-remaining"] = str(quota.tokens_remaining)
                headers[f"anthropic-ratelimit-{family}-reset"] = utc_timestamp(now + (quota.tokens_reset or 0.0))
        return headers

    # -- endpoints ---------------------------------------------------------------

    def messages(self, request: Request) -> Reply:
        body = self._checked(request)
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest("max_tokens: Field required (a positive integer)")
        completion = _parse(body, max_tokens)
        ident, model = "msg_" + request.id, body["model"]
        if body.get("stream"):
            return StreamReply(self._events(ident, model, completion))
        return JsonReply(
            200,
            {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": _blocks(ident, completion),
                "stop_reason": _STOP_REASONS[completion.finish],
                "stop_sequence": None,
                "usage": _usage(completion.input_tokens, _output_tokens(completion)),
            },
        )

    def count_tokens(self, request: Request) -> Reply:
        body = self._checked(request)
        return JsonReply(200, {"input_tokens": _parse(body, None).input_tokens})

    def _checked(self, request: Request) -> dict[str, Any]:
        if not request.header("anthropic-version"):
            raise BadRequest("anthropic-version: header is required")
        body = request.json()
        if not isinstance(body.get("model"), str):
            raise BadRequest("model: Field required")
        return body

    def _events(self, ident: str, model: str, completion: Completion) -> Iterator[bytes]:
        start: dict[str, Any] = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(completion.input_tokens, 1),
        }
        yield sse({"type": "message_start", "message": start}, "message_start")
        for index, block in enumerate(_blocks(ident, completion)):
            if block["type"] == "text":
                opening, deltas = {"type": "text", "text": ""}, [
                    {"type": "text_delta", "text": piece} for piece in content.tokens(block["text"])
                ]
            else:
                opening = block | {"input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in completion.pieces]
            yield sse({"type": "content_block_start", "index": index, "content_block": opening}, "content_block_start")
            if index == 0:
                yield sse({"type": "ping"}, "ping")
            for delta in deltas:
                yield sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        stop = {"stop_reason": _STOP_REASONS[completion.finish], "stop_sequence": None}
        usage = {"output_tokens": _output_tokens(completion)}
        yield sse({"type": "message_delta", "delta": stop, "usage": usage}, "message_delta")
        yield sse({"type": "message_stop"}, "message_stop")


def _parse(body: dict[str, Any], max_tokens: int | None) -> Completion:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    texts = [_text(body.get("system"))]
    question = ""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest("messages: each message needs a role of 'user' or 'assistant'")
        text = _text(message.get("content"))
        texts.append(text)
        if message["role"] == "user" and text:
            question = text
    last = messages[-1].get("content")
    answered = isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
    tools = [Tool(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {}
    forced = choice.get("name") if choice.get("type") == "tool" else ("none" if choice.get("type") == "none" else None)
    return content.complete(
        "\n".join(texts), question, max_tokens=max_tokens, tools=tools, tool_choice=forced, tool_answered=answered
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for block in value:
            if not isinstance(block, dict) or "type" not in block:
                raise BadRequest("content: each block must be an object with a 'type'")
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block["type"] == "tool_result":
                parts.append(_text(block.get("content")))
        return " ".join(parts)
    raise BadRequest("content: must be a string or an array of content blocks")


def _blocks(ident: str, completion: Completion) -> list[dict[str, Any]]:
    """Text, or a short preface then a ``tool_use`` block, as Claude answers a tool call."""
    if completion.tool is None:
        return [{"type": "text", "text": completion.text}]
    return [
        {"type": "text", "text": _preface(completion)},
        {
            "type": "tool_use",
            "id": "toolu_" + ident.removeprefix("msg_"),
            "name": completion.tool.name,
            "input": completion.arguments,
        },
    ]


def _preface(completion: Completion) -> str:
    assert completion.tool is not None
    return f"I will use the {completion.tool.name} tool."


def _output_tokens(completion: Completion) -> int:
    extra = content.count_tokens(_preface(completion)) if completion.tool else 0
    return completion.output_tokens + extra


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
