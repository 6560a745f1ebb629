"""Ollama's native API: ``/api/chat``, ``/api/generate`` (NDJSON streams), ``/api/embed``, ``/api/tags``.

Ollama streams by default (``stream`` absent means true) and ends every
stream with a ``done: true`` line carrying the token counts and durations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import NDJSON, ndjson
from . import Protocol, Refusal, Route, body_model, served_names, utc_timestamp
from .openai import parse_chat

__all__ = ["Ollama"]

_DEFAULT_EMBEDDING_SIZE = 768
_MODELS = ("llama3.2:latest", "nomic-embed-text:latest")
# Plausible per-token timings (ns), so the durations in the final line are consistent with the counts.
_NS_PER_PROMPT_TOKEN, _NS_PER_OUTPUT_TOKEN = 1_000_000, 20_000_000


class Ollama(Protocol):
    name: ClassVar[str] = "ollama"
    request_id_prefix = "ollama-"
    path_prefixes: ClassVar[tuple[str, ...]] = ("/api/",)
    model_not_found: ClassVar[Refusal | None] = Refusal(404, 'model "{model}" not found, try pulling it first')

    def routes(self) -> list[Route]:
        return [
            self.route("POST", "/api/chat", self.chat, model=body_model),
            self.route("POST", "/api/generate", self.generate, model=body_model),
            self.route("POST", "/api/embed", self.embed, model=body_model),
            self.route("GET", "/api/tags", self.tags),
        ]

    def serves(self, name: str, models: Collection[str]) -> bool:
        """``llama3.2`` is ``llama3.2:latest``: Ollama gives a name without a tag the default one."""
        return _tagged(name) in map(_tagged, models)

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        return JsonReply(status, {"error": message})

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        return ndjson({"error": message})

    def chat(self, request: Request) -> Reply:
        body = request.json()
        model = _model(body)
        completion = parse_chat(body, _num_predict(body))

        def message(text: str, final: bool) -> dict[str, Any]:
            turn: dict[str, Any] = {"role": "assistant", "content": text}
            if final and completion.tool:
                turn["tool_calls"] = [{"function": {"name": completion.tool.name, "arguments": completion.arguments}}]
            return {"message": turn}

        return self._answer(body, model, completion, message)

    def generate(self, request: Request) -> Reply:
        body = request.json()
        model = _model(body)
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        system = body.get("system") or ""
        completion = content.complete(f"{system}\n{prompt}".strip(), prompt, max_tokens=_num_predict(body))
        return self._answer(body, model, completion, lambda text, final: {"response": text})

    def _answer(self, body: dict[str, Any], model: str, completion: Completion, shape: Any) -> Reply:
        """One reply for chat and generate: ``shape(text, final)`` puts the text where each endpoint wants it."""
        created = utc_timestamp(self.clock.time())
        head = {"model": model, "created_at": created}
        final = head | shape("" if body.get("stream", True) else completion.text, True) | _final_fields(completion)
        if not body.get("stream", True):
            return JsonReply(200, final)
        pieces = [] if completion.tool else completion.pieces
        lines = (ndjson(head | shape(piece, False) | {"done": False}) for piece in pieces)
        return StreamReply(_then(lines, ndjson(final)), content_type=NDJSON)

    def embed(self, request: Request) -> Reply:
        body = request.json()
        model = _model(body)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequest("input must be a string or a non-empty list of strings")
        size = body.get("dimensions") or _DEFAULT_EMBEDDING_SIZE
        tokens = sum(content.count_tokens(t) for t in texts)
        return JsonReply(
            200,
            {
                "model": model,
                "embeddings": [content.embedding(t, size) for t in texts],
                "total_duration": tokens * _NS_PER_PROMPT_TOKEN,
                "load_duration": 0,
                "prompt_eval_count": tokens,
            },
        )

    def tags(self, request: Request) -> Reply:
        modified = utc_timestamp(1_700_000_000)
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": modified,
                "size": 1_000_000,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {"format": "gguf", "family": name.split(":")[0], "parameter_size": "1B", "quantization_level": "Q4_0"},
            }
            for name in sorted({_tagged(name) for name in served_names(request, _MODELS)})
        ]
        return JsonReply(200, {"models": models})


def _tagged(name: str) -> str:
    """The model's full name: with ``:latest`` when it names no tag (a ``:`` before a ``/`` is a registry's port)."""
    return name if ":" in name.rpartition("/")[2] else name + ":latest"


def _final_fields(completion: Completion) -> dict[str, Any]:
    prompt_ns = completion.input_tokens * _NS_PER_PROMPT_TOKEN
    eval_ns = completion.output_tokens * _NS_PER_OUTPUT_TOKEN
    return {
        "done": True,
        "done_reason": "length" if completion.finish == "length" else "stop",
        "total_duration": prompt_ns + eval_ns,
        "load_duration": 0,
        "prompt_eval_count": completion.input_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion.output_tokens,
        "eval_duration": eval_ns,
    }


def _then(lines: Iterator[bytes], last: bytes) -> Iterator[bytes]:
    yield from lines
    yield last


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required")
    return model


def _num_predict(body: dict[str, Any]) -> int | None:
    options = body.get("options") or {}
    value = options.get("num_predict") if isinstance(options, dict) else None
    return value if isinstance(value, int) and value > 0 else None
