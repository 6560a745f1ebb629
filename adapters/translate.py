"""OpenAI chat format ⇄ Anthropic Messages, and OpenAI → Gemini ``generateContent``.

Pure functions over plain dicts: no HTTP, no SDK. They let a caller speak
the OpenAI chat format to any provider (:func:`resilient.adapters.anthropic.chat_openai`,
the registry, the gateway) and get the OpenAI format back.

OpenAI request → Anthropic (:func:`openai_request_to_anthropic`):

- ``system`` and ``developer`` messages are pulled into ``system``;
- consecutive messages of the same role are merged into one turn (the API
  wants strictly alternating turns);
- ``max_tokens`` (or ``max_completion_tokens``) is required by Anthropic: the
  caller's, else ``default_max_tokens`` (a model config's), else 4096;
- ``stop`` → ``stop_sequences``; ``user`` → ``metadata.user_id``;
- ``tools`` → ``{name, description, input_schema}``; ``tool_choice``
  ``auto``/``none``/``required``/``{"type": "function", ...}`` →
  ``auto``/``none``/``any``/``tool``; ``parallel_tool_calls: false`` →
  ``disable_parallel_tool_use``;
- assistant ``tool_calls`` → ``tool_use`` blocks (arguments parsed from JSON);
- ``tool`` messages → ``tool_result`` blocks in a user turn;
- ``image_url`` parts: ``data:`` URLs → a base64 source, ``http(s)`` → a url source.

Parameters that would change the shape of the answer and that Anthropic
cannot honour (``n`` > 1, ``logprobs``, audio, JSON ``response_format``,
non-function tools) raise
:class:`~resilient.errors.InvalidRequestError`; sampling hints it has no
equivalent for (``seed``, penalties, ``logit_bias``, ...) are dropped.

Anthropic message → OpenAI ``chat.completion`` (:func:`anthropic_response_to_openai`):
text blocks joined into ``content``, ``tool_use`` → ``tool_calls`` with JSON
string arguments, ``stop_reason`` end_turn/stop_sequence → ``stop``,
max_tokens → ``length``, tool_use → ``tool_calls``, refusal →
``content_filter``; usage → ``prompt_tokens`` (cache reads and writes
included, as OpenAI counts them) / ``completion_tokens`` / ``total_tokens``.
The reverse directions (:func:`anthropic_request_to_openai`,
:func:`openai_response_to_anthropic`) exist so that a conversation survives a
round trip.

OpenAI request → Gemini (:func:`openai_request_to_gemini`): ``contents`` with
roles ``user``/``model``, ``systemInstruction``, ``functionDeclarations``,
``functionCall``/``functionResponse`` parts, ``generationConfig``;
:func:`gemini_response_to_openai` maps the answer back.

Errors: :func:`anthropic_error` and :func:`gemini_error` turn either
provider's error body into the :mod:`resilient.errors` taxonomy.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from resilient.errors import AuthenticationError, InvalidRequestError, ProviderError, error_for_status

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "openai_request_to_anthropic",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "openai_response_to_anthropic",
    "anthropic_error",
    "openai_request_to_gemini",
    "gemini_response_to_openai",
    "gemini_error",
    "gemini_retry_delay",
    "result_to_openai",
    "chunks_to_openai",
]

DEFAULT_MAX_TOKENS = 4096

ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_OPENAI_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}  # fmt: skip

#: Anthropic's error types and the HTTP status each comes with.
ANTHROPIC_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,  # the account is out of credit: a plain ProviderError, never retried
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
#: Google's canonical error statuses and their HTTP status.
GEMINI_ERROR_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_GEMINI_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}
_SYSTEM_ROLES = ("system", "developer")


# =========================================================================== OpenAI request → Anthropic


def openai_request_to_anthropic(request: Mapping[str, Any], *, default_max_tokens: int | None = None) -> dict[str, Any]:
    """The Anthropic Messages body for an OpenAI chat completion request (see the module doc for the rules)."""
    request = dict(request)
    _refuse_unsupported(request)
    systems: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(_messages(request)):
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            systems.append(_plain_text(message.get("content"), f"messages[{index}]"))
        elif role == "user":
            _append_turn(turns, "user", _anthropic_content(message.get("content"), f"messages[{index}]"))
        elif role == "assistant":
            _append_turn(turns, "assistant", _anthropic_assistant(message, index))
        elif role in ("tool", "function"):
            _append_turn(turns, "user", [_tool_result(message, index)])
        else:
            raise InvalidRequestError(f"messages[{index}].role: unsupported role {role!r}")
    body: dict[str, Any] = {
        "model": request.get("model"),
        "max_tokens": request.get("max_completion_tokens") or request.get("max_tokens") or default_max_tokens
        or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if systems:
        body["system"] = "\n\n".join(s for s in systems if s)
    for name, target in (("temperature", "temperature"), ("top_p", "top_p"), ("stream", "stream")):
        if request.get(name) is not None:
            body[target] = request[name]
    stop = request.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("user"):
        body["metadata"] = {"user_id": str(request["user"])}
    if request.get("tools"):
        body["tools"] = [_anthropic_tool(tool, i) for i, tool in enumerate(request["tools"])]
    choice = _anthropic_tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"), bool(body.get("tools")))
    if choice is not None:
        body["tool_choice"] = choice
    return body


def _refuse_unsupported(request: Mapping[str, Any]) -> None:
    if (request.get("n") or 1) != 1:
        raise InvalidRequestError("n: Anthropic returns one choice per request; n must be 1")
    if request.get("logprobs") or request.get("top_logprobs"):
        raise InvalidRequestError("logprobs: not available from Anthropic")
    if request.get("audio"):
        raise InvalidRequestError("audio: not available from Anthropic")
    if (request.get("response_format") or {}).get("type", "text") != "text":
        raise InvalidRequestError("response_format: Anthropic has no JSON mode; describe the format in the prompt")
    if request.get("functions") or request.get("function_call"):
        raise InvalidRequestError("functions: use tools and tool_choice (the legacy functions API is not translated)")


def _messages(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages: a non-empty list is required")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"messages[{index}]: must be an object")
    return messages


def _append_turn(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one when the role repeats."""
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]
        previous["content"] = _blocks(previous["content"]) + _blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _plain_text(content: Any, where: str) -> str:
    """A system or tool message's text (a string or text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise InvalidRequestError(f"{where}.content[{i}]: only text parts are allowed here")
            texts.append(str(part.get("text") or ""))
        return "\n".join(texts)
    raise InvalidRequestError(f"{where}.content: must be a string or a list of parts")


def _anthropic_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content: must be a string or a list of parts")
    return [_anthropic_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]


def _anthropic_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return {"type": "image", "source": _image_source(url, where)}
    raise InvalidRequestError(f"{where}: part type {kind!r} is not supported by Anthropic")


def _image_source(url: Any, where: str) -> dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        media_type, data = _data_url(url, where)
        return {"type": "base64", "media_type": media_type, "data": data}
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise InvalidRequestError(f"{where}.image_url.url: must be a data: URL or an http(s) URL")


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL."""
    head, comma, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise InvalidRequestError(f"{where}.image_url.url: a data: URL must be data:<media type>;base64,<data>")
    return media_type, data


def _anthropic_assistant(message: Mapping[str, Any], index: int) -> str | list[dict[str, Any]]:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(content, list):
        content = _plain_text(
            [p for p in content if not (isinstance(p, Mapping) and p.get("type") == "refusal")], f"messages[{index}]"
        )
    text = content or ""
    if not calls:
        return text
    blocks = [{"type": "text", "text": text}] if text else []
    for i, call in enumerate(calls):
        function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
        if not isinstance(call, Mapping) or call.get("type", "function") != "function" or not function.get("name"):
            raise InvalidRequestError(f"messages[{index}].tool_calls[{i}]: must be a function call with a name")
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function["name"],
                "input": _parse_arguments(function.get("arguments"), f"messages[{index}].tool_calls[{i}]"),
            }
        )
    return blocks


def _parse_arguments(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{where}.function.arguments: not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where}.function.arguments: must be a JSON object")
    return value


def _tool_result(message: Mapping[str, Any], index: int) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id") or message.get("name")
    if not tool_call_id:
        raise InvalidRequestError(f"messages[{index}].tool_call_id: required on a tool message")
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        block["content"] = [_anthropic_part(p, f"messages[{index}].content[{i}]") for i, p in enumerate(content)]
    else:
        block["content"] = "" if content is None else str(content)
    return block


def _anthropic_tool(tool: Any, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function" or not isinstance(function, Mapping):
        raise InvalidRequestError(f"tools[{index}]: only function tools can be translated")
    if not function.get("name"):
        raise InvalidRequestError(f"tools[{index}].function.name: required")
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _anthropic_tool_choice(choice: Any, parallel: Any, has_tools: bool) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if has_tools and parallel is False else None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, Mapping) and choice.get("type") == "function" and (choice.get("function") or {}).get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequestError(f"tool_choice: cannot translate {choice!r}")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# =========================================================================== Anthropic request → OpenAI


def anthropic_request_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat completion request for an Anthropic Messages body: the inverse of the rules above."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": system if isinstance(system, str) else _joined_text(system)})
    for turn in body.get("messages") or []:
        if turn.get("role") == "assistant":
            messages.append(_openai_assistant(turn.get("content")))
        else:
            messages.extend(_openai_user(turn.get("content")))
    request: dict[str, Any] = {"model": body.get("model"), "messages": messages, "max_tokens": body.get("max_tokens")}
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            request[name] = body[name]
    if body.get("stop_sequences"):
        request["stop"] = list(body["stop_sequences"])
    if (body.get("metadata") or {}).get("user_id"):
        request["user"] = body["metadata"]["user_id"]
    if body.get("tools"):
        request["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    **({"description": t["description"]} if t.get("description") else {}),
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for t in body["tools"]
        ]
    choice = body.get("tool_choice")
    if choice:
        kind = choice.get("type")
        request["tool_choice"] = (
            {"type": "function", "function": {"name": choice.get("name")}}
            if kind == "tool"
            else {"any": "required"}.get(kind, kind)
        )
        if choice.get("disable_parallel_tool_use"):
            request["parallel_tool_calls"] = False
    return request


def _joined_text(blocks: Iterable[Any]) -> str:
    return "".join(b.get("text", "") for b in blocks if isinstance(b, Mapping) and b.get("type") == "text")


def _openai_user(content: Any) -> list[dict[str, Any]]:
    """A user turn as OpenAI messages: its tool results as ``tool`` messages first, then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        if block.get("type") == "tool_result":
            result = block.get("content")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": result if isinstance(result, str) or result is None else [_openai_part(b) for b in result],
                }
            )
        else:
            parts.append(_openai_part(block))
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return out


def _openai_part(block: Mapping[str, Any]) -> dict[str, Any]:
    if block.get("type") == "text":
        return {"type": "text", "text": block.get("text", "")}
    if block.get("type") == "image":
        source = block.get("source") or {}
        url = source.get("url") if source.get("type") == "url" else f"data:{source.get('media_type')};base64,{source.get('data')}"
        return {"type": "image_url", "image_url": {"url": url}}
    raise InvalidRequestError(f"content block type {block.get('type')!r} has no OpenAI equivalent")


def _openai_assistant(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    blocks = content or []
    message: dict[str, Any] = {"role": "assistant", "content": _joined_text(blocks) or None}
    calls = [_openai_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
    }


# =========================================================================== responses


def anthropic_response_to_openai(message: Any, *, created: int | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for an Anthropic ``message``; ``ValueError`` if it is not one."""
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise ValueError("no content list")
    blocks = [b for b in message["content"] if isinstance(b, Mapping)]
    calls = [_openai_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    reply: dict[str, Any] = {"role": "assistant", "content": _joined_text(blocks) or None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    stop_reason = message.get("stop_reason") or "end_turn"
    return _completion(
        message.get("id"),
        message.get("model"),
        reply,
        ANTHROPIC_FINISH.get(stop_reason, "stop"),
        _openai_usage_from_anthropic(message.get("usage")),
        created,
    )


def _openai_usage_from_anthropic(raw: Any) -> dict[str, Any]:
    raw = raw if isinstance(raw, Mapping) else {}
    cached = int(raw.get("cache_read_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + int(raw.get("cache_creation_input_tokens") or 0) + cached
    completion = int(raw.get("output_tokens") or 0)
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _completion(
    ident: Any, model: Any, message: dict[str, Any], finish: str, usage: dict[str, Any], created: int | None
) -> dict[str, Any]:
    return {
        "id": str(ident or f"chatcmpl-{time.time_ns():x}"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(model or ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }


def openai_response_to_anthropic(completion: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic ``message`` for an OpenAI ``chat.completion``: the inverse of :func:`anthropic_response_to_openai`."""
    try:
        choice = completion["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].message") from None
    content: list[dict[str, Any]] = [{"type": "text", "text": message["content"]}] if message.get("content") else []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _parse_arguments(function.get("arguments"), f"tool_calls[{i}]"),
            }
        )
    usage = completion.get("usage") or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {
        "id": completion.get("id"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": content,
        "stop_reason": _OPENAI_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": int(usage.get("prompt_tokens") or 0) - cached,
            "output_tokens": int(usage.get("completion_tokens") or 0),
            **({"cache_read_input_tokens": cached} if cached else {}),
        },
    }


def result_to_openai(result: Mapping[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for any adapter's result dict (``text``, ``tool_calls``, ``usage``, ...)."""
    calls = [
        {"id": c.get("id") or f"call_{i}", "type": "function",
         "function": {"name": c.get("name"), "arguments": json.dumps(c.get("arguments") or {})}}
        for i, c in enumerate(result.get("tool_calls") or [])
    ]  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": result.get("text") or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    usage = result.get("usage") or {}
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    finish = result.get("finish_reason") or "stop"
    return _completion(
        result.get("request_id"),
        result.get("model"),
        message,
        finish if finish in ("stop", "length", "tool_calls", "content_filter") else "stop",
        {"prompt_tokens": prompt, "completion_tokens": completion,
         "total_tokens": int(usage.get("total_tokens") or prompt + completion)},
        created,
    )  # fmt: skip


def chunks_to_openai(
    chunks: Iterable[Mapping[str, Any]],
    *,
    model: str,
    ident: str | None = None,
    created: int | None = None,
    include_usage: bool = False,
) -> Iterator[dict[str, Any]]:
    """OpenAI ``chat.completion.chunk`` objects for any adapter's stream (``{"text", "done"}`` chunks).

    As OpenAI streams: a first chunk with the assistant role, one per text
    piece, the tool calls (whole, one delta each) when the stream ends, a
    chunk with the ``finish_reason``, and with ``include_usage`` (OpenAI's
    ``stream_options``) a last chunk with no choices and the usage.
    """
    ident = ident or f"chatcmpl-{time.time_ns():x}"
    created = int(time.time()) if created is None else created

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}  # fmt: skip

    yield chunk({"role": "assistant", "content": ""})
    for piece in chunks:
        if not piece.get("done"):
            if piece.get("text"):
                yield chunk({"content": piece["text"]})
            continue
        for i, call in enumerate(piece.get("tool_calls") or []):
            yield chunk({"tool_calls": [{"index": i, "id": call.get("id") or f"call_{i}", "type": "function",
                                         "function": {"name": call.get("name"),
                                                      "arguments": json.dumps(call.get("arguments") or {})}}]})  # fmt: skip
        finish = piece.get("finish_reason") or "stop"
        yield chunk({}, finish if finish in ("stop", "length", "tool_calls", "content_filter") else "stop")
        if include_usage:
            usage = piece.get("usage") or {}
            prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
            yield {**chunk({}), "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                         "total_tokens": prompt + completion}}  # fmt: skip
        return


# =========================================================================== errors


def anthropic_error(
    body: Any, status: int | None = None, *, request_id: str | None = None, retry_after: float | None = None
) -> ProviderError:
    """The taxonomy's error for an Anthropic error body (``{"type": "error", "error": {"type", "message"}}``).

    The HTTP status decides when there is one; an error that arrived without
    one (inside a stream) is placed by its type: 401/403 auth, 429 rate limit,
    404 not found, 400/413 invalid, 500-504 server, 529 overloaded.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    kind, message = error.get("type"), error.get("message") or ""
    code = status or ANTHROPIC_ERROR_STATUS.get(str(kind), 500)
    text = f"{kind}: {message}" if kind else str(message)
    return error_for_status(code, text, provider="anthropic", request_id=request_id, retry_after=retry_after, body=body)


def gemini_error(
    body: Any, status: int | None = None, *, request_id: str | None = None, retry_after: float | None = None
) -> ProviderError:
    """The taxonomy's error for a Google error body (``{"error": {"code", "message", "status"}}``).

    A 429's ``RetryInfo.retryDelay`` (``"1.5s"``) becomes ``retry_after`` when
    no header gave one.
    """
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    kind, message = error.get("status"), error.get("message") or ""
    code = status or (error.get("code") if isinstance(error.get("code"), int) else None)
    code = code or GEMINI_ERROR_STATUS.get(str(kind), 500)
    if retry_after is None:
        retry_after = gemini_retry_delay(body)
    text = f"{kind}: {message}" if kind else str(message)
    return gemini_key_rejected(
        error_for_status(code, text, provider="gemini", request_id=request_id, retry_after=retry_after, body=body)
    )


def gemini_key_rejected(error: ProviderError) -> ProviderError:
    """``error`` as an :class:`AuthenticationError` when Google says the API key is not valid.

    Google answers a wrong key with 400 ``INVALID_ARGUMENT`` and an
    ``ErrorInfo`` detail of reason ``API_KEY_INVALID``: by its status a
    request error, by its meaning a credential one (a key pool disables the
    key, nothing retries it). Any other error comes back as it is.
    """
    body = error.body[0] if isinstance(error.body, list) and error.body else error.body
    details = (body.get("error") or {}).get("details") if isinstance(body, Mapping) else None
    reasons = {d.get("reason") for d in details if isinstance(d, Mapping)} if isinstance(details, list) else set()
    if "API_KEY_INVALID" not in reasons or isinstance(error, AuthenticationError):
        return error
    return AuthenticationError(
        error.message, status=error.status, provider=error.provider, request_id=error.request_id, body=error.body
    )


def gemini_retry_delay(body: Any) -> float | None:
    """The ``retryDelay`` (``"1.5s"``) of a Google error body's ``google.rpc.RetryInfo`` detail, in seconds."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).removesuffix("s"))
            except ValueError:
                return None
    return None


# =========================================================================== OpenAI request → Gemini


def openai_request_to_gemini(request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat request (the model goes in the URL, not the body).

    System messages become ``systemInstruction``; ``assistant`` turns are
    ``model`` turns; tool calls are ``functionCall`` parts and ``tool``
    messages ``functionResponse`` parts (named after the call they answer;
    a JSON object result is sent as is, anything else as ``{"result": ...}``);
    consecutive turns of one role are merged; images become ``inlineData``
    (``data:`` URLs) or ``fileData`` (other URLs).
    """
    messages = _messages(request)
    if (request.get("n") or 1) != 1 and request.get("stream"):
        raise InvalidRequestError("n: a streamed Gemini answer has one candidate; n must be 1")
    names: dict[str, str] = {}
    systems: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role, where = message.get("role"), f"messages[{index}]"
        if role in _SYSTEM_ROLES:
            systems.append({"text": _plain_text(message.get("content"), where)})
        elif role == "user":
            _append_gemini(contents, "user", _gemini_parts(message.get("content"), where))
        elif role == "assistant":
            _append_gemini(contents, "model", _gemini_model_parts(message, where, names))
        elif role == "tool":
            _append_gemini(contents, "user", [_function_response(message, where, names)])
        else:
            raise InvalidRequestError(f"{where}.role: unsupported role {role!r}")
    body: dict[str, Any] = {"contents": contents}
    if systems:
        body["systemInstruction"] = {"parts": systems}
    if request.get("tools"):
        body["tools"] = [{"functionDeclarations": [_function_declaration(t, i) for i, t in enumerate(request["tools"])]}]
    config = _gemini_tool_config(request.get("tool_choice"))
    if config:
        body["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(request)
    if generation:
        body["generationConfig"] = generation
    return body


def _append_gemini(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _gemini_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content: must be a string or a list of parts")
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_gemini_image(image.get("url") if isinstance(image, Mapping) else image, f"{where}.content[{i}]"))
        else:
            raise InvalidRequestError(f"{where}.content[{i}]: part type {kind!r} is not supported by Gemini")
    return parts


def _gemini_image(url: Any, where: str) -> dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        media_type, data = _data_url(url, where)
        return {"inlineData": {"mimeType": media_type, "data": data}}
    if isinstance(url, str) and "://" in url:
        mime = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"fileUri": url, **({"mimeType": mime} if mime else {})}}
    raise InvalidRequestError(f"{where}.image_url.url: must be a data: URL or a URL")


def _gemini_model_parts(message: Mapping[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    content = message.get("content")
    text = _plain_text(content, where) if isinstance(content, list) else (content or "")
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
        if not function.get("name"):
            raise InvalidRequestError(f"{where}.tool_calls[{i}]: must be a function call with a name")
        if call.get("id"):
            names[call["id"]] = function["name"]
        args = _parse_arguments(function.get("arguments"), f"{where}.tool_calls[{i}]")
        parts.append({"functionCall": {"name": function["name"], "args": args}})
    if not parts:
        parts.append({"text": ""})
    return parts


def _function_response(message: Mapping[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id or "") or message.get("name")
    if not name:
        raise InvalidRequestError(f"{where}.tool_call_id: answers no earlier assistant tool call")
    text = _plain_text(message.get("content"), where)
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": name, "response": response}}


def _function_declaration(tool: Any, index: int) -> dict[str, Any]:
    declaration = _anthropic_tool(tool, index)  # the same checks; only the field names differ
    out: dict[str, Any] = {"name": declaration["name"]}
    if declaration.get("description"):
        out["description"] = declaration["description"]
    # parametersJsonSchema takes full JSON Schema (additionalProperties, $defs, ...) where parameters
    # takes only Google's OpenAPI subset and rejects OpenAI's strict schemas.
    out["parametersJsonSchema"] = declaration["input_schema"]
    return out


def _gemini_tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"mode": choice.upper()}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, Mapping) and choice.get("type") == "function" and (choice.get("function") or {}).get("name"):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise InvalidRequestError(f"tool_choice: cannot translate {choice!r}")


def _generation_config(request: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    pairs = (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
             ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))  # fmt: skip
    if limit:
        config["maxOutputTokens"] = limit
    for source, target in pairs:
        if request.get(source) is not None:
            config[target] = request[source]
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if (request.get("n") or 1) != 1:
        config["candidateCount"] = request["n"]
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = (response_format.get("json_schema") or {}).get("schema") or {}
    return config


# =========================================================================== Gemini response → OpenAI


def gemini_response_to_openai(response: Any, *, model: str | None = None, created: int | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for a ``generateContent`` answer; ``ValueError`` if it is not one.

    Each candidate is a choice; text parts (thoughts excluded) are joined,
    ``functionCall`` parts become ``tool_calls`` (``finish_reason``
    ``tool_calls``); a prompt blocked before any candidate gives an empty
    ``content_filter`` choice.
    """
    if not isinstance(response, Mapping) or not isinstance(response.get("candidates", []), list):
        raise ValueError("no candidates list")
    candidates = response.get("candidates") or []
    if not candidates and not (response.get("promptFeedback") or {}).get("blockReason"):
        raise ValueError("no candidates and no block reason")
    choices = [_gemini_choice(c, i) for i, c in enumerate(candidates)] or [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": None},
         "finish_reason": "content_filter", "logprobs": None}
    ]  # fmt: skip
    meta = response.get("usageMetadata") or {}
    prompt = int(meta.get("promptTokenCount") or 0)
    completion_tokens = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    out = _completion(
        response.get("responseId"),
        response.get("modelVersion") or model,
        choices[0]["message"],
        choices[0]["finish_reason"],
        {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
         "total_tokens": int(meta.get("totalTokenCount") or prompt + completion_tokens)},
        created,
    )  # fmt: skip
    out["choices"] = choices
    return out


def _gemini_choice(candidate: Any, position: int) -> dict[str, Any]:
    if not isinstance(candidate, Mapping):
        raise ValueError("a candidate is not an object")
    parts = [p for p in ((candidate.get("content") or {}).get("parts") or []) if isinstance(p, Mapping)]
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
    calls = [
        {"id": p["functionCall"].get("id") or f"call_{position}_{i}", "type": "function",
         "function": {"name": p["functionCall"].get("name"), "arguments": json.dumps(p["functionCall"].get("args") or {})}}
        for i, p in enumerate(parts) if isinstance(p.get("functionCall"), Mapping)
    ]  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else _GEMINI_FINISH.get(candidate.get("finishReason") or "STOP", "stop")
    return {"index": candidate.get("index", position), "message": message, "finish_reason": finish, "logprobs": None}
