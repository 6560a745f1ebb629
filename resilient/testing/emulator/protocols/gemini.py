"""Google Gemini API (Generative Language): ``generateContent``, ``streamGenerateContent?alt=sse``,
``embedContent``, ``batchEmbedContents``, and ``models`` (list, get); key by ``x-goog-api-key`` or ``?key=``.

No key is 403 ``PERMISSION_DENIED``; a key Google does not know is 400
``INVALID_ARGUMENT`` with an ``ErrorInfo`` reason ``API_KEY_INVALID``; a
Bearer token that is not an OAuth access token (an API key sent the OpenAI
way) is 401 ``UNAUTHENTICATED``, as the API answers them. ``/v1/models/...`` is also OpenAI's path: there a request
is Gemini's when it carries a Google key (``/v1beta`` and ``/v1alpha`` are
Gemini's alone).

Requests are refused where the API refuses them, in its words: no
``contents``, a turn without parts, and a turn whose role is not the API's
(``assistant`` or ``system``, the usual slips of a client translated from
OpenAI's format).

Errors follow Google's ``{"error": {"code", "message", "status"}}`` shape; a
429 carries a ``RetryInfo`` detail with the exact ``retryDelay``, which is
where Google puts the retry hint: no ``Retry-After`` header. Stream events end their lines in CRLF
(``data: {...}\r\n\r\n``), as Google's do; inside a stream the error body is written
bare (indented JSON lines, no ``data:`` prefix), as the API does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from .. import content
from ..content import Completion, Tool
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from ..framing import CRLF, sse
from . import Protocol, Refusal, Route, format_seconds, path_model, served_names

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
_MODELS_PATH = r"/(?:v1|v1beta|v1alpha)/models"
_MODEL_PATH = _MODELS_PATH + r"/(?P<model>[^/:]+)"
_CHAT_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
# name -> (displayName, version, inputTokenLimit, outputTokenLimit, supportedGenerationMethods)
_MODELS: dict[str, tuple[str, str, int, int, list[str]]] = {
    "gemini-2.5-pro": ("Gemini 2.5 Pro", "2.5", 1_048_576, 65_536, _CHAT_METHODS),
    "gemini-2.5-flash": ("Gemini 2.5 Flash", "001", 1_048_576, 65_536, _CHAT_METHODS),
    "gemini-2.0-flash": ("Gemini 2.0 Flash", "2.0", 1_048_576, 8_192, _CHAT_METHODS),
    "gemini-2.0-flash-lite": ("Gemini 2.0 Flash-Lite", "2.0", 1_048_576, 8_192, _CHAT_METHODS),
    "gemini-1.5-flash": ("Gemini 1.5 Flash", "001", 1_000_000, 8_192, _CHAT_METHODS),
    "gemini-1.5-pro": ("Gemini 1.5 Pro", "001", 2_000_000, 8_192, _CHAT_METHODS),
    "text-embedding-004": ("Text Embedding 004", "004", 2_048, 1, ["embedContent"]),
    "gemini-embedding-001": ("Gemini Embedding 001", "001", 2_048, 1, ["embedContent", "countTextTokens", "countTokens"]),
}
_DEFAULT_PAGE = 50
_OAUTH_TOKEN_PREFIX = "ya29."  # Google's OAuth 2 access tokens
# "function" is not in Google's error message, but the API has taken it for function responses (older REST
# examples and clients send it), so refusing it would fail requests the service answers.
_ROLES = ("user", "model", "function")


class Gemini(Protocol):
    name: ClassVar[str] = "gemini"
    request_id_header = "x-goog-request-id"
    request_id_prefix = "gemini-"
    missing_key: ClassVar[Refusal | None] = Refusal(
        403,
        "Method doesn't allow unregistered callers (callers without established identity)."
        " Please use API Key or other form of API consumer identity to call this API.",
    )
    bad_key: ClassVar[Refusal] = Refusal(400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID")
    #: A Bearer token that is not an OAuth access token, such as an OpenAI-style client sending the API key
    #: where OpenAI wants it: Google reads it as OAuth credentials and refuses them.
    invalid_credentials: ClassVar[Refusal] = Refusal(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid"
        " authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        code="ACCESS_TOKEN_TYPE_UNSUPPORTED",
    )
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v1beta/", "/v1alpha/")
    model_not_found: ClassVar[Refusal | None] = Refusal(
        404,
        "models/{model} is not found for API version {version}, or is not supported for {method}. Call ListModels to"
        " see the list of available models and their supported methods.",
    )

    def routes(self) -> list[Route]:
        return [
            self.route("POST", _MODEL_PATH + ":generateContent", self.generate, model=path_model),
            self.route("POST", _MODEL_PATH + ":streamGenerateContent", self.stream, model=path_model),
            self.route("POST", _MODEL_PATH + ":embedContent", self.embed, model=path_model),
            self.route("POST", _MODEL_PATH + ":batchEmbedContents", self.batch_embed, model=path_model),
            self.route("GET", _MODELS_PATH, self.models, when=self.owns),
            self.route("GET", _MODEL_PATH, self.model, when=self.owns),
        ]

    def api_key(self, request: Request) -> str | None:
        """The API key, or an OAuth access token (``ya29.``), which the API also takes as a Bearer token."""
        token = request.bearer_token()
        return _google_key(request) or (token if token and token.startswith(_OAUTH_TOKEN_PREFIX) else None)

    def unauthenticated(self, request: Request) -> Refusal | None:
        if self.api_key(request) is None and request.bearer_token() is not None:
            return self.invalid_credentials
        return super().unauthenticated(request)

    def owns(self, request: Request) -> bool:
        return super().owns(request) or _google_key(request) is not None

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUSES.get(status, "UNKNOWN")}
        if retry_after is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_seconds(retry_after) + "s"}
            ]
        return JsonReply(status, {"error": error})

    def refuse(self, refusal: Refusal) -> JsonReply:
        """Google names a refused key in an ``ErrorInfo`` detail, which clients read to tell it from other 400s."""
        reply = self.error(refusal.status, refusal.message)
        if refusal.code is not None:
            reply.body["error"]["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": refusal.code,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": refusal.message},
            ]
        return reply

    def model_fields(self, request: Request) -> dict[str, str]:
        """Google's 404 names the API version and the method called (``generateContent``, ``get``...)."""
        method = request.path.rpartition(":")[2] if request.method == "POST" else "get"
        return {"version": request.path.split("/")[1], "method": method}

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
        # Google ends SSE lines in CRLF; a reader that splits on "\n\n" must fail here as against the API.
        if completion.tool:
            yield sse(_response(model, ident, _parts(completion), completion, final=True), newline=CRLF)
            return
        pieces = completion.pieces
        for index, piece in enumerate(pieces):
            final = index == len(pieces) - 1
            yield sse(_response(model, ident, [{"text": piece}], completion, final=final), newline=CRLF)

    def models(self, request: Request) -> Reply:
        """One page of the model list; ``nextPageToken`` is the offset of the next page, opaque to clients."""
        size = request.query.get("pageSize") or str(_DEFAULT_PAGE)
        token = request.query.get("pageToken") or "0"
        if not size.isdigit() or int(size) < 1 or not token.isdigit():
            raise BadRequest("Invalid pageSize or pageToken.")
        names = served_names(request, _MODELS)
        start, end = int(token), int(token) + int(size)
        reply: dict[str, Any] = {"models": [_model_card(name) for name in names[start:end]]}
        if end < len(names):
            reply["nextPageToken"] = str(end)
        return JsonReply(200, reply)

    def model(self, request: Request) -> Reply:
        name = request.params["model"]
        if not self.serves(name, served_names(request, _MODELS)):
            return self.unknown_model(request, name)
        return JsonReply(200, _model_card(name))

    def embed(self, request: Request) -> Reply:
        return JsonReply(200, {"embedding": _embedding(request.json())})

    def batch_embed(self, request: Request) -> Reply:
        entries = request.json().get("requests")
        if not isinstance(entries, list) or not entries:
            raise _invalid("BatchEmbedContentsRequest.requests", "at least one request is required")
        return JsonReply(200, {"embeddings": [_embedding(e) for e in entries]})


def _google_key(request: Request) -> str | None:
    return request.header("x-goog-api-key") or request.query.get("key")


def _model_card(name: str) -> dict[str, Any]:
    """The model's card; a configured name the built-in list does not know gets a chat (or embedding) model's."""
    if "embed" in name:
        default = (name, "001", 2_048, 1, ["embedContent"])
    else:
        default = (name, "001", 1_048_576, 8_192, _CHAT_METHODS)
    display_name, version, input_limit, output_limit, methods = _MODELS.get(name, default)
    card: dict[str, Any] = {
        "name": "models/" + name,
        "version": version,
        "displayName": display_name,
        "description": f"{display_name} (emulated).",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": list(methods),
    }
    if "generateContent" in methods:
        card |= {"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2}
    return card


def _parse(body: dict[str, Any]) -> Completion:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _invalid("GenerateContentRequest.contents", "contents is not specified")
    texts = [_text((body.get("systemInstruction") or {}).get("parts"))]
    question = ""
    for index, turn in enumerate(contents):
        _check_turn(index, turn)
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


def _check_turn(index: int, turn: Any) -> None:
    """Refuse a turn as Google does: a role the API does not know, or no parts.

    ``assistant`` (OpenAI's name for the model) and ``system`` (which belongs
    in ``systemInstruction``) are what a hand-made OpenAI-to-Gemini
    translation sends; the API refuses both, so a test must see them refused.
    A turn without a role is taken as the user's, as the Gemini API does.
    """
    if not isinstance(turn, dict):
        raise _invalid(f"GenerateContentRequest.contents[{index}]", "content must be an object")
    role = turn.get("role", "user")
    if role == "system":
        raise BadRequest("Content with system role is not supported.")
    if role not in _ROLES:
        raise BadRequest("Please use a valid role: user, model.")
    if not turn.get("parts"):
        raise _invalid(f"GenerateContentRequest.contents[{index}].parts", "contents.parts must not be empty.")


def _invalid(field: str, problem: str) -> BadRequest:
    """Google's wording for a field that fails validation: ``* Request.field: problem``, ending in a newline."""
    return BadRequest(f"* {field}: {problem}\n")


def _text(parts: Any) -> str:
    if parts is None:
        return ""
    if not isinstance(parts, list):
        raise _invalid("parts", "must be a list")
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
        raise _invalid("EmbedContentRequest.content", "content is not specified")
    size = entry.get("outputDimensionality") or _DEFAULT_EMBEDDING_SIZE
    return {"values": content.embedding(_text(entry["content"].get("parts")), size)}
