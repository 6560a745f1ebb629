"""Anthropic Messages API: ``/v1/messages``, ``/v1/messages/count_tokens``, and the Models API ``/v1/models``.

The key travels in ``x-api-key`` (the raw API) or as a Bearer token (how
the official SDK, 2.x, sends ``api_key``); without either the answer is 401
``authentication_error``. ``GET /v1/models`` is also OpenAI's path: a request carrying
``anthropic-version`` or ``x-api-key`` is Anthropic's, as only its SDK sends
those. Error bodies carry the ``request_id`` of the ``request-id`` header.

Tool turns must pair up as the API requires: each ``tool_result`` answers a
``tool_use`` of the message just before it, and each ``tool_use`` is
answered in the next message; otherwise the answer is the API's 400.

Streams send every event type in the documented order (``message_start``,
``content_block_start``, ``ping``, ``content_block_delta``,
``content_block_stop``, ``message_delta``, ``message_stop``), and an
``error`` event when a fault cuts the stream.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion, Tool
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse
from . import Protocol, Quota, Refusal, Route, body_model, served_names, utc_timestamp

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
# (id, display_name, created_at), newest first, as the Models API lists them.
_MODELS = (
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
    ("claude-3-haiku-20240307", "Claude Haiku 3", "2024-03-07T00:00:00Z"),
)
_DEFAULT_PAGE = 20
_DATE = re.compile(r"-\d{8}\Z")  # a dated model id's suffix: claude-sonnet-4-5-20250929
_UNKNOWN_CREATED_AT = "2025-01-01T00:00:00Z"  # for configured models the built-in list does not know


class Anthropic(Protocol):
    name: ClassVar[str] = "anthropic"
    request_id_header = "request-id"
    request_id_prefix = "req_"
    sends_retry_after = True
    missing_key: ClassVar[Refusal | None] = Refusal(401, "x-api-key header is required")
    bad_key: ClassVar[Refusal] = Refusal(401, "invalid x-api-key")
    model_not_found: ClassVar[Refusal | None] = Refusal(404, "model: {model}")

    def routes(self) -> list[Route]:
        return [
            self.route("POST", "/v1/messages", self.messages, model=body_model),
            self.route("POST", "/v1/messages/count_tokens", self.count_tokens, model=body_model),
            self.route("GET", "/v1/models", self.models, when=self.owns),
            self.route("GET", r"/v1/models/(?P<model>[^/]+)", self.model, when=self.owns),
        ]

    def api_key(self, request: Request) -> str | None:
        return request.header("x-api-key") or request.bearer_token()

    def serves(self, name: str, models: Collection[str]) -> bool:
        """A dated model is also served under its alias, its id without the date (``claude-sonnet-4-5``)."""
        return name in models or any(_DATE.sub("", model) == name for model in models)

    def owns(self, request: Request) -> bool:
        """Anthropic's SDK, and only it, sends ``anthropic-version`` and ``x-api-key``; paths are shared with OpenAI."""
        return request.header("anthropic-version") is not None or request.header("x-api-key") is not None

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        return JsonReply(status, _error_body(status, message))

    def stamp(self, reply: Reply, request_id: str) -> None:
        super().stamp(reply, request_id)
        if isinstance(reply, JsonReply) and isinstance(reply.body, dict) and reply.body.get("type") == "error":
            reply.body["request_id"] = request_id

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

    def models(self, request: Request) -> Reply:
        """One page of the Models API, newest first; ``after_id`` / ``before_id`` page as the SDK's iterator does."""
        _require_version(request)
        catalogue = _catalogue(request)
        ids = [model[0] for model in catalogue]
        limit = _page_size(request.query.get("limit"))
        after, before = request.query.get("after_id"), request.query.get("before_id")
        start, end = 0, len(ids)
        if after is not None:
            start = _position(ids, after, "after_id") + 1
            end = min(start + limit, len(ids))
            has_more = end < len(ids)
        elif before is not None:
            end = _position(ids, before, "before_id")
            start = max(0, end - limit)
            has_more = start > 0
        else:
            end = min(limit, len(ids))
            has_more = end < len(ids)
        page = [_model_card(model) for model in catalogue[start:end]]
        return JsonReply(
            200,
            {
                "data": page,
                "has_more": has_more,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )

    def model(self, request: Request) -> Reply:
        """One model by id or alias (the id without its date, ``claude-sonnet-4-5``); unknown ones are 404."""
        _require_version(request)
        wanted = request.params["model"]
        for model in _catalogue(request):
            if self.serves(wanted, (model[0],)):
                return JsonReply(200, _model_card(model))
        return self.unknown_model(request, wanted)

    def _checked(self, request: Request) -> dict[str, Any]:
        _require_version(request)
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
    _check_tool_turns(messages)
    last = messages[-1].get("content")
    answered = isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
    tools = [Tool(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {}
    forced = choice.get("name") if choice.get("type") == "tool" else ("none" if choice.get("type") == "none" else None)
    return content.complete(
        "\n".join(texts), question, max_tokens=max_tokens, tools=tools, tool_choice=forced, tool_answered=answered
    )


def _check_tool_turns(messages: list[dict[str, Any]]) -> None:
    """Refuse, in Anthropic's words, tool turns that do not pair up: a ``tool_result`` answering no ``tool_use`` of
    the previous message, or a ``tool_use`` whose next message does not answer it.

    A conversation that lost or reordered a turn (a trimmed history, a
    crashed agent step) is a 400 from the API; the emulator must refuse it
    too, or the bug ships. A ``tool_use`` in the last message is left alone:
    only a following message can leave it unanswered. A ``tool_result`` in
    the first message answers nothing: the history was cut after a call.
    """
    for index in range(len(messages)):
        asked = [b.get("id") for _, b in _blocks_of(messages[index - 1], "tool_use")] if index else []
        results = _blocks_of(messages[index], "tool_result")
        for position, block in results:
            if block.get("tool_use_id") not in asked:
                raise BadRequest(
                    f"messages.{index}.content.{position}: unexpected `tool_use_id` found in `tool_result` blocks:"
                    f" {block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` block"
                    " in the previous message."
                )
        answered = {b.get("tool_use_id") for _, b in results}
        unanswered = [str(ident) for ident in asked if ident not in answered]
        if unanswered:
            raise BadRequest(
                f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks immediately after:"
                f" {', '.join(unanswered)}. Each `tool_use` block must have a corresponding `tool_result` block in the"
                " next message."
            )


def _blocks_of(message: dict[str, Any], kind: str) -> list[tuple[int, dict[str, Any]]]:
    """The message's content blocks of one type, with their positions (a string content has none)."""
    blocks = message.get("content")
    if not isinstance(blocks, list):
        return []
    return [(i, b) for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == kind]


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


def _require_version(request: Request) -> None:
    if not request.header("anthropic-version"):
        raise BadRequest("anthropic-version: header is required")


def _page_size(value: str | None) -> int:
    if value is None:
        return _DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise BadRequest("limit: Input should be greater than or equal to 1 and less than or equal to 1000")
    return int(value)


def _position(ids: list[str], cursor: str, name: str) -> int:
    if cursor not in ids:
        raise BadRequest(f"{name}: {cursor} is not a model id of this list")
    return ids.index(cursor)


def _catalogue(request: Request) -> list[tuple[str, str, str]]:
    """The models served: the built-in list, or the emulator's ``models`` (known ones first, newest first)."""
    names = served_names(request, (model[0] for model in _MODELS))
    known = [model for model in _MODELS if model[0] in names]
    ids = {model[0] for model in known}
    return known + [(name, name, _UNKNOWN_CREATED_AT) for name in names if name not in ids]


def _model_card(model: tuple[str, str, str]) -> dict[str, Any]:
    ident, display_name, created_at = model
    return {"type": "model", "id": ident, "display_name": display_name, "created_at": created_at}


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
