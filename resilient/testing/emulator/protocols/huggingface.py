"""Hugging Face Text Generation Inference (``/generate``, ``/generate_stream``, ``/``) and Text Embeddings
Inference (``/embed``, ``/rerank``).

TGI's and TEI's OpenAI-compatible routes (``/v1/chat/completions``,
``/v1/embeddings``) are served by the OpenAI module, which wants a key as
OpenAI does unless the emulator is made ``keyless={"openai"}``. TGI's 429
carries no ``Retry-After``, so neither does this one. ``POST /`` is TGI's
compatibility route (``stream`` in the body picks the answer), which is
where ``huggingface_hub.InferenceClient(model=url).text_generation`` posts;
TEI embeddings are at ``/embed``, so that client takes ``model=url + "/embed"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse
from . import Protocol, Route

__all__ = ["HuggingFace"]

# TGI's error_type per status; huggingface_hub maps each to its own exception (429 -> OverloadedError).
_ERROR_TYPES = {400: "validation", 422: "validation", 424: "generation", 429: "overloaded"}
_FINISH = {"stop": "eos_token", "length": "length", "tool": "eos_token"}
_DEFAULT_EMBEDDING_SIZE = 384
_DEFAULT_MAX_NEW_TOKENS = 100


class HuggingFace(Protocol):
    name: ClassVar[str] = "huggingface"

    def routes(self) -> list[Route]:
        return [
            self.route("POST", "/", self.compat_generate),
            self.route("POST", "/generate", self.generate),
            self.route("POST", "/generate_stream", self.generate_stream),
            self.route("POST", "/embed", self.embed),
            self.route("POST", "/rerank", self.rerank),
        ]

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        kind = _ERROR_TYPES.get(status, "incomplete_generation" if status < 500 else "generation")
        return JsonReply(status, {"error": message, "error_type": kind})

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        return sse({"error": message, "error_type": "generation"})

    # -- TGI ---------------------------------------------------------------------

    def compat_generate(self, request: Request) -> Reply:
        body = request.json()
        return self._stream(body) if body.get("stream") else JsonReply(200, [self._generated(body)])

    def generate(self, request: Request) -> Reply:
        return JsonReply(200, self._generated(request.json()))

    def generate_stream(self, request: Request) -> Reply:
        return self._stream(request.json())

    def _generated(self, body: dict[str, Any]) -> dict[str, Any]:
        completion, parameters = _complete(body)
        reply: dict[str, Any] = {"generated_text": completion.text}
        if parameters.get("details"):
            reply["details"] = _details(completion) | {
                "prefill": [],
                "tokens": [_token(i, piece) for i, piece in enumerate(completion.pieces)],
            }
        return reply

    def _stream(self, body: dict[str, Any]) -> StreamReply:
        completion, _ = _complete(body)
        return StreamReply(_token_events(completion))

    # -- TEI ---------------------------------------------------------------------

    def embed(self, request: Request) -> Reply:
        body = request.json()
        texts = _texts(body.get("inputs"), "inputs")
        size = body.get("dimensions") or _DEFAULT_EMBEDDING_SIZE
        return JsonReply(200, [content.embedding(text, size) for text in texts])

    def rerank(self, request: Request) -> Reply:
        body = request.json()
        query = body.get("query")
        if not isinstance(query, str):
            raise BadRequest("`query` must be a string")
        texts = _texts(body.get("texts"), "texts")
        probe = content.embedding(query, _DEFAULT_EMBEDDING_SIZE)
        ranked = []
        for index, text in enumerate(texts):
            score = sum(a * b for a, b in zip(probe, content.embedding(text, _DEFAULT_EMBEDDING_SIZE)))
            entry: dict[str, Any] = {"index": index, "score": (score + 1) / 2}
            if body.get("return_text"):
                entry["text"] = text
            ranked.append(entry)
        return JsonReply(200, sorted(ranked, key=lambda e: -e["score"]))


def _complete(body: dict[str, Any]) -> tuple[Completion, dict[str, Any]]:
    prompt = body.get("inputs")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("`inputs` must be a non-empty string")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("`parameters` must be an object")
    limit = parameters.get("max_new_tokens") or _DEFAULT_MAX_NEW_TOKENS
    if not isinstance(limit, int) or limit < 1:
        raise BadRequest("`max_new_tokens` must be strictly positive")
    return content.complete(prompt, prompt, max_tokens=limit), parameters


def _token_events(completion: Completion) -> Iterator[bytes]:
    pieces = completion.pieces
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        yield sse(
            {
                "index": index + 1,
                "token": _token(index, piece),
                "top_tokens": None,
                "generated_text": completion.text if last else None,
                "details": _details(completion) if last else None,
            }
        )


def _details(completion: Completion) -> dict[str, Any]:
    return {"finish_reason": _FINISH[completion.finish], "generated_tokens": completion.output_tokens, "seed": None}


def _token(index: int, piece: str) -> dict[str, Any]:
    return {"id": 1000 + index, "text": piece, "logprob": -0.1, "special": False}


def _texts(value: Any, name: str) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest(f"`{name}` must be a string or a non-empty list of strings")
    return texts
