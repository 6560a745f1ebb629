"""Google Gemini API (Generative Language): ``generateContent``, ``streamGenerateContent?alt=sse``,
``embedContent``, ``batchEmbedContents``; key by ``x-goog-api-key`` or ``?key=``.

Errors follow Google's ``{"error": {"code", "message", "status"}}`` shape; a
429 carries a ``RetryInfo`` detail with the exact ``retryDelay``, which is
where Google puts the retry hint. Inside a stream the error body is written
bare (indented JSON lines, no ``data:`` prefix), as the API does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion, Tool
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse
from . import Protocol, Route, format_seconds

__all__ = ["Gemini"]

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
_DEFAULT_EMBEDDING_SIZE = 768
_MODEL_PATH = r"/(?:v1|v1beta|v1alpha)/models/(?P<model>[^/:]+)"


class Gemini(Protocol):
    name: ClassVar[str] = "gemini"
    request_id_header = "x-goog-request-id"
    request_id_prefix = "gemini-"

    def routes(self) -> list[Route]:
        return [
            self.route("POST", _MODEL_PATH + ":generateContent", self.generate),
            self.route("POST", _MODEL_PATH + ":streamGenerateContent", self.stream),
            self.route("POST", _MODEL_PATH + ":embedContent", self.embed),
            self.route("POST", _MODEL_PATH + ":batchEmbedContents", self.batch_embed),
        ]

    def api_key(self, request: Request) -> str | None:
        return request.header("x-goog-api-key") or request.query.get("key")

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUSES.get(status, "UNKNOWN")}
        if retry_after is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_seconds(retry_after) + "s"}
            ]
        return JsonReply(status, {"error": error})

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        """The error body as Google sends it inside an SSE stream: bare pretty-printed JSON, no ``data:`` field.

        That is what google-genai's stream reader expects (it collects such
        lines until the braces balance); a ``data:`` event would let clients
        that only read SSE fields pass a test the real API fails.
        """
        body = self.error(status, message, retry_after=retry_after).body
        return (json.dumps(body, indent=2) + "\n").encode()

    # -- endpoints ---------------------------------------------------------------

    def generate(self, request: Request) -> Reply:
        completion = _parse(request.json())
        model = request.params["model"]
        parts = _parts(completion)
        return JsonReply(200, _response(model, request.id, parts, completion, final=True))

    def stream(self, request: Request) -> Reply:
        completion = _parse(request.json())
        model = request.params["model"]
        if request.query.get("alt") != "sse":
            raise BadRequest("This emulator streams only with alt=sse.")
        return StreamReply(self._chunks(model, request.id, completion))

    def _chunks(self, model: str, ident: str, completion: Completion) -> Iterator[bytes]:
        if completion.tool:
            yield sse(_response(model, ident, _parts(completion), completion, final=True))
            return
        pieces = completion.pieces
        for index, piece in enumerate(pieces):
            yield sse(_response(model, ident, [{"text": piece}], completion, final=index == len(pieces) - 1))

    def embed(self, request: Request) -> Reply:
        return JsonReply(200, {"embedding": _embedding(request.json())})

    def batch_embed(self, request: Request) -> Reply:
        entries = request.json().get("requests")
        if not isinstance(entries, list) or not entries:
            raise BadRequest("* BatchEmbedContentsRequest.requests: at least one request is required")
        return JsonReply(200, {"embeddings": [_embedding(e) for e in entries]})


def _parse(body: dict[str, Any]) -> Completion:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    texts = [_text((body.get("systemInstruction") or {}).get("parts"))]
    question = ""
    for turn in contents:
        if not isinstance(turn, dict):
            raise BadRequest("* GenerateContentRequest.contents: each content must be an object")
        text = _text(turn.get("parts"))
        texts.append(text)
        if turn.get("role", "user") == "user" and text:
            question = text
    last_parts = contents[-1].get("parts") or []
    answered = any(isinstance(p, dict) and "functionResponse" in p for p in last_parts)
    tools = [
        Tool(d["name"], d.get("parametersJsonSchema") or d.get("parameters") or {})
        for group in body.get("tools") or []
        for d in (group.get("functionDeclarations") or [])
        if isinstance(d, dict) and "name" in d
    ]
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    mode, allowed = calling.get("mode"), calling.get("allowedFunctionNames") or []
    choice = "none" if mode == "NONE" else (allowed[0] if allowed else None)
    limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
    return content.complete(
        "\n".join(texts), question, max_tokens=limit, tools=tools, tool_choice=choice, tool_answered=answered
    )


def _text(parts: Any) -> str:
    if parts is None:
        return ""
    if not isinstance(parts, list):
        raise BadRequest("* parts: must be a list")
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _parts(completion: Completion) -> list[dict[str, Any]]:
    if completion.tool:
        return [{"functionCall": {"name": completion.tool.name, "args": completion.arguments}}]
    return [{"text": completion.text}]


def _response(model: str, ident: str, parts: list[dict[str, Any]], completion: Completion, *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    usage = {"promptTokenCount": completion.input_tokens, "totalTokenCount": completion.input_tokens}
    if final:
        candidate["finishReason"] = _FINISH[completion.finish]
        usage["candidatesTokenCount"] = completion.output_tokens
        usage["totalTokenCount"] += completion.output_tokens
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": ident}


def _embedding(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), dict):
        raise BadRequest("* EmbedContentRequest.content: content is not specified")
    size = entry.get("outputDimensionality") or _DEFAULT_EMBEDDING_SIZE
    return {"values": content.embedding(_text(entry["content"].get("parts")), size)}
