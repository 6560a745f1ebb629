"""OpenAI Chat Completions, Embeddings, Images and Models, and every server that copies them.

Groq, vLLM, llama.cpp, TGI's Messages API and OpenVINO Model Server all
speak this dialect; :class:`OpenAI` is parameterised by name and path prefix
so the OpenVINO module reuses it rather than copying it.

A chat is refused as OpenAI refuses it, in its words and with its
``param``: a role the API does not know, a ``tool`` message that answers no
call of the assistant message before it, a call left unanswered.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from resilient.clock import Clock

from .. import content
from ..content import Completion, Tool
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import sse, sse_raw
from . import Protocol, Quota, Refusal, Route, body_model, ceil_millis, format_millis, path_model, served_names

__all__ = ["OpenAI", "parse_chat", "text_of"]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_EMBEDDING_SIZES = {"text-embedding-3-large": 3072}
_DEFAULT_EMBEDDING_SIZE = 1536
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "text-embedding-3-large", "dall-e-3")
# The smallest valid PNG (1x1, transparent): enough for a client to decode an image answer.
_PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class OpenAI(Protocol):
    name: ClassVar[str] = "openai"
    request_id_prefix = "req_"
    sends_retry_after = True
    sends_retry_after_ms = True
    missing_key: ClassVar[Refusal | None] = Refusal(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth"
        " (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.",
    )
    bad_key: ClassVar[Refusal] = Refusal(
        401,
        "Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v1/",)
    model_not_found: ClassVar[Refusal | None] = Refusal(
        404, "The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )
    #: Whether chat messages are checked as OpenAI checks them (roles, tool answers). Servers that copy the
    #: dialect but hand the messages to a chat template do not, and turn it off.
    checks_messages: ClassVar[bool] = True

    def __init__(self, clock: Clock, prefix: str = "/v1") -> None:
        super().__init__(clock)
        self.prefix = prefix

    def routes(self) -> list[Route]:
        p = self.prefix
        return [
            self.route("POST", p + "/chat/completions", self.chat, model=body_model),
            self.route("POST", p + "/embeddings", self.embeddings, model=body_model),
            self.route("POST", p + "/images/generations", self.images, model=body_model),
            self.route("GET", p + "/models", self.models),
            self.route("GET", p + r"/models/(?P<model>[^/]+)", self.model, model=path_model),
        ]

    # -- errors and headers ------------------------------------------------------

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        return self._error(status, message, _ERROR_TYPES.get(status, ("server_error", None))[1])

    def bad_request(self, problem: BadRequest) -> JsonReply:
        """OpenAI names the offending field in ``param``, and some refusals in ``code``; clients read both."""
        return self._error(problem.status, problem.message, problem.code, problem.param)

    def refuse(self, refusal: Refusal) -> JsonReply:
        # A missing key and an unknown path have code null; only a wrong key says invalid_api_key.
        return self._error(refusal.status, refusal.message, refusal.code)

    def _error(self, status: int, message: str, code: str | None, param: str | None = None) -> JsonReply:
        kind = _ERROR_TYPES.get(status, ("server_error", None))[0]
        return JsonReply(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})

    def rate_limit_headers(self, quota: Quota) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit-requests": str(quota.requests_limit),
            "x-ratelimit-remaining-requests": str(quota.requests_remaining),
            "x-ratelimit-reset-requests": _duration(quota.requests_reset),
        }
        if quota.tokens_limit is not None:
            headers["x-ratelimit-limit-tokens"] = str(quota.tokens_limit)
            headers["x-ratelimit-remaining-tokens"] = str(quota.tokens_remaining)
            headers["x-ratelimit-reset-tokens"] = _duration(quota.tokens_reset or 0.0)
        return headers

    # -- endpoints ---------------------------------------------------------------

    def chat(self, request: Request) -> Reply:
        body = request.json()
        model = _required_str(body, "model")
        completion = parse_chat(body, body.get("max_completion_tokens") or body.get("max_tokens"))
        if self.checks_messages:
            _check_conversation(body["messages"])
        ident, created = "chatcmpl-" + request.id, int(self.clock.time())
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamReply(self._chat_chunks(ident, created, model, completion, usage))
        message: dict[str, Any] = {"role": "assistant", "content": completion.text or None, "refusal": None}
        if completion.tool:
            message["tool_calls"] = [_tool_call(ident, completion)]
        return JsonReply(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_emulator",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(completion)}
                ],
                "usage": _usage(completion),
            },
        )

    def _chat_chunks(
        self, ident: str, created: int, model: str, completion: Completion, include_usage: bool
    ) -> Iterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            data: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_emulator",
                "choices": [choice],
            }
            if include_usage:
                data["usage"] = None
            return sse(data)

        if completion.tool:
            call = _tool_call(ident, completion) | {"index": 0}
            call["function"] = {"name": completion.tool.name, "arguments": ""}
            yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
            for piece in completion.pieces:
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        else:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            for piece in completion.pieces:
                yield chunk({"content": piece})
        yield chunk({}, _finish(completion))
        if include_usage:
            yield sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_emulator",
                    "choices": [],
                    "usage": _usage(completion),
                }
            )
        yield sse_raw("[DONE]")

    def embeddings(self, request: Request) -> Reply:
        body = request.json()
        model = _required_str(body, "model")
        texts = _embedding_inputs(body.get("input"))
        size = body.get("dimensions") or _EMBEDDING_SIZES.get(model, _DEFAULT_EMBEDDING_SIZE)
        if not isinstance(size, int) or size < 1:
            raise BadRequest("'dimensions' must be a positive integer.")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector: Any = content.embedding(text, size)
            if as_base64:
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(content.count_tokens(t) for t in texts)
        return JsonReply(
            200,
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
        )

    def images(self, request: Request) -> Reply:
        body = request.json()
        prompt = _required_str(body, "prompt")
        count = body.get("n") or 1
        if not isinstance(count, int) or not 1 <= count <= 10:
            raise BadRequest("'n' must be an integer from 1 to 10.")
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        if body.get("response_format") == "b64_json":
            image = {"b64_json": _PNG_1X1, "revised_prompt": prompt}
        else:
            image = {"url": f"https://emulator.invalid/images/{digest}.png", "revised_prompt": prompt}
        return JsonReply(200, {"created": int(self.clock.time()), "data": [dict(image) for _ in range(count)]})

    def models(self, request: Request) -> Reply:
        return JsonReply(200, {"object": "list", "data": [self._model_card(m) for m in served_names(request, _MODELS)]})

    def model(self, request: Request) -> Reply:
        return JsonReply(200, self._model_card(request.params["model"]))

    def _model_card(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "emulator"}


def parse_chat(body: dict[str, Any], max_tokens: Any) -> Completion:
    """The model's turn for an OpenAI-style message list (OpenAI-compatible servers, Ollama)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.")
    texts, question = [], ""
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise BadRequest("Each message must be an object with a 'role'.")
        text = text_of(message.get("content"))
        texts.append(text)
        if message["role"] == "user":
            question = text
    tools = [
        Tool(t["function"]["name"], t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise BadRequest("'max_tokens' must be a positive integer.")
    return content.complete(
        "\n".join(texts),
        question,
        max_tokens=max_tokens,
        tools=tools,
        tool_choice=choice if choice not in ("auto", "required") else None,
        tool_answered=messages[-1].get("role") == "tool",
    )


def _check_conversation(messages: list[dict[str, Any]]) -> None:
    """Refuse, in OpenAI's words, a conversation the API refuses: an unknown role, a tool answer to no call, a call
    left unanswered.

    Tool messages must come right after the assistant message whose
    ``tool_calls`` they answer, one for each call id. Agent loops that drop
    or reorder a turn break this rule; the real API answers 400, so the
    emulator must too. The wording (its "preceeding" included) and the
    ``messages.[i].role`` spelling of ``param`` are the API's.
    """
    calls: list[str] = []  # ids of the assistant turn the next tool messages answer
    answered: set[str] = set()
    for index, message in enumerate(messages):
        role = message["role"]
        if role not in _ROLES:
            raise BadRequest(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool',"
                " and 'developer'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        if role == "tool":
            if message.get("tool_call_id") not in calls:
                raise BadRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with"
                    " 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            answered.add(message["tool_call_id"])
            continue
        unanswered = [ident for ident in calls if ident not in answered]
        if unanswered:
            raise BadRequest(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each"
                " 'tool_call_id'. The following tool_call_ids did not have response messages: " + ", ".join(unanswered),
                param=f"messages.[{index}].role",
            )
        tool_calls = message.get("tool_calls") if role == "assistant" else None
        tool_calls = tool_calls if isinstance(tool_calls, list) else []
        calls = [c["id"] for c in tool_calls if isinstance(c, dict) and "id" in c]
        answered = set()


def text_of(value: Any) -> str:
    """The text of a message content: a string, or a list of parts whose text parts count."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(p.get("text", "") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise BadRequest("Message content must be a string or an array of content parts.")


def _tool_call(ident: str, completion: Completion) -> dict[str, Any]:
    assert completion.tool is not None
    return {
        "id": "call_" + ident.removeprefix("chatcmpl-"),
        "type": "function",
        "function": {"name": completion.tool.name, "arguments": completion.arguments_json},
    }


def _finish(completion: Completion) -> str:
    return {"tool": "tool_calls"}.get(completion.finish, completion.finish)


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
    }


def _embedding_inputs(value: Any) -> list[str]:
    """The texts to embed: a string, strings, or token ids (one array, or one array per input), as the API takes.

    Token arrays are what tiktoken-based clients send (langchain-openai does
    by default); the emulator embeds their ids' text, deterministic as any.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    if _is_tokens(value):
        return [" ".join(map(str, value))]
    if isinstance(value, list) and value and all(_is_tokens(v) for v in value):
        return [" ".join(map(str, tokens)) for tokens in value]
    raise BadRequest(
        "'input' must be a string, an array of strings, an array of token ids or an array of token id arrays."
    )


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(v) is int for v in value)


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing required parameter: '{name}'.")
    return value


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``1m30s``, ``2s``, ``200ms``; rounded up, so a client pacing on it is never early."""
    millis = ceil_millis(seconds)
    if millis < 1000:
        return f"{millis}ms"
    minutes, rest = divmod(millis, 60_000)
    text = format_millis(rest) + "s"
    return f"{minutes}m{text}" if minutes else text
