"""OPEA ChatQnA megaservice: ``/v1/chatqna``.

ChatQnA streams by default, each token as ``data: b'...'`` (the Python
``repr`` of the encoded text, as OPEA's LLM microservice writes it) and
ends with ``data: [DONE]``; without streaming it answers an OpenAI-shaped
chat completion. Errors are FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from resilient.clock import Clock

from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse_raw
from . import Protocol, Route
from .openai import OpenAI, parse_chat

__all__ = ["OPEA"]


class OPEA(Protocol):
    name: ClassVar[str] = "opea"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self._openai = OpenAI(clock)  # the non-streamed answer is an OpenAI chat completion

    def routes(self) -> list[Route]:
        return [self.route("POST", "/v1/chatqna", self.chatqna)]

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        return JsonReply(status, {"detail": message})

    def chatqna(self, request: Request) -> Reply:
        body = request.json()
        messages = body.get("messages")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a question string or a non-empty list of messages")
        chat: dict[str, Any] = {"model": body.get("model") or "chatqna", "messages": messages}
        if body.get("stream", True):
            completion = parse_chat(chat, body.get("max_tokens"))
            return StreamReply(_tokens(completion.pieces))
        return self._openai.chat(request.with_json(chat | {"max_tokens": body.get("max_tokens")}))


def _tokens(pieces: list[str]) -> Iterator[bytes]:
    for piece in pieces:
        yield sse_raw(repr(piece.encode("utf-8")))
    yield sse_raw("[DONE]")
