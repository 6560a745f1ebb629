"""Amazon Bedrock Runtime, Claude models: ``InvokeModel`` and ``InvokeModelWithResponseStream``.

``POST /model/{modelId}/invoke`` takes an Anthropic Messages body with
``anthropic_version: "bedrock-2023-05-31"`` (no ``model``, no ``stream``:
Bedrock rejects extraneous keys) and answers the Messages API's ``message``.
``/invoke-with-response-stream`` sends the Anthropic stream events, each as
base64 ``bytes`` in a ``chunk`` event of the AWS event-stream binary
framing (``application/vnd.amazon.eventstream``); a fault that cuts the
stream sends an exception frame of a type the stream may carry
(``internalServerException`` for a 500, ``throttlingException`` for a 429,
``validationException`` for other client errors...): any other type is
not in Bedrock's ``ResponseStream`` union and botocore reads it as an
error without a code.
The answers themselves come from the Anthropic protocol, so both providers
agree word for word.

Requests must carry SigV4 (``AWS4-HMAC-SHA256 Credential=<key id>/.../bedrock/aws4_request``)
or a Bedrock API key (``Authorization: Bearer``); the key id is the
emulator's API key. The signature itself is not verified: the emulator
knows no secrets. An unsigned request is 403 ``MissingAuthenticationTokenException``,
a refused key 403 ``UnrecognizedClientException``, as AWS answers them.
Errors follow rest-json: the type in ``x-amzn-ErrorType``, ``{"message"}``
in the body; a 429 carries no ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import struct
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar
from urllib.parse import unquote

from ..content import dumps
from ..exchange import BadRequest, JsonReply, Reply, Request, StreamReply
from . import Protocol, Refusal, Route, path_model
from .anthropic import Anthropic

__all__ = ["Bedrock", "frame"]

ANTHROPIC_VERSION = "bedrock-2023-05-31"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_TYPES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
# The exception members of Bedrock's ResponseStream union, by the status they stand for.
_STREAM_ERROR_TYPES = {
    400: "validationException",
    408: "modelTimeoutException",
    424: "modelStreamErrorException",
    429: "throttlingException",
    503: "serviceUnavailableException",
    504: "modelTimeoutException",
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/bedrock/aws4_request")
_REJECTED_BODY_KEYS = frozenset({"model", "stream"})


class Bedrock(Protocol):
    name: ClassVar[str] = "bedrock"
    request_id_header = "x-amzn-requestid"
    request_id_prefix = "bdrk-"
    missing_key: ClassVar[Refusal | None] = Refusal(403, "Missing Authentication Token", code="MissingAuthenticationTokenException")
    bad_key: ClassVar[Refusal] = Refusal(403, "The security token included in the request is invalid.", code="UnrecognizedClientException")
    path_prefixes: ClassVar[tuple[str, ...]] = ("/model/",)
    model_not_found: ClassVar[Refusal | None] = Refusal(
        400, "The provided model identifier is invalid.", code="ValidationException"
    )

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self._claude = Anthropic(clock)

    def routes(self) -> list[Route]:
        model = r"/model/(?P<model>[^/]+)"
        return [
            self.route("POST", model + "/invoke", self.invoke, model=path_model),
            self.route("POST", model + "/invoke-with-response-stream", self.invoke_stream, model=path_model),
        ]

    def api_key(self, request: Request) -> str | None:
        found = _CREDENTIAL.search(request.header("authorization") or "")
        return found.group(1) if found else request.bearer_token()

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> JsonReply:
        kind = _ERROR_TYPES.get(status, "InternalServerException" if status >= 500 else "ValidationException")
        return _error(status, message, kind)

    def refuse(self, refusal: Refusal) -> JsonReply:
        # AWS names the refusal in the error type, whatever its status: 403 is not always AccessDenied.
        return _error(refusal.status, refusal.message, refusal.code) if refusal.code else super().refuse(refusal)

    def stream_error(self, status: int, message: str, *, retry_after: float | None = None) -> bytes:
        kind = _STREAM_ERROR_TYPES.get(status) or ("validationException" if status < 500 else "internalServerException")
        return frame(
            {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
            dumps({"message": message}).encode(),
        )

    # -- endpoints ---------------------------------------------------------------

    def invoke(self, request: Request) -> Reply:
        reply = self._claude.messages(self._as_messages_request(request, stream=False))
        assert isinstance(reply, JsonReply)
        usage = reply.body["usage"]
        reply.headers.update(
            {
                "x-amzn-bedrock-input-token-count": str(usage["input_tokens"]),
                "x-amzn-bedrock-output-token-count": str(usage["output_tokens"]),
                "x-amzn-bedrock-invocation-latency": "1",
            }
        )
        return reply

    def invoke_stream(self, request: Request) -> Reply:
        reply = self._claude.messages(self._as_messages_request(request, stream=True))
        assert isinstance(reply, StreamReply)
        return StreamReply(_chunks(reply.events), content_type=EVENT_STREAM)

    def _as_messages_request(self, request: Request, *, stream: bool) -> Request:
        """The same call as the Anthropic handler expects it: model from the path, the API's version header."""
        body = request.json()
        if body.get("anthropic_version") != ANTHROPIC_VERSION:
            raise BadRequest(f'anthropic_version: must be "{ANTHROPIC_VERSION}"')
        extraneous = sorted(_REJECTED_BODY_KEYS & body.keys())
        if extraneous:
            raise BadRequest(f"Malformed input request: extraneous key [{extraneous[0]}] is not permitted")
        messages_body = {k: v for k, v in body.items() if k != "anthropic_version"}
        messages_body.update(model=unquote(request.params["model"]), **({"stream": True} if stream else {}))
        headers = {**request.headers, "anthropic-version": "2023-06-01"}
        return dataclasses.replace(request.with_json(messages_body), headers=headers)


def _error(status: int, message: str, kind: str) -> JsonReply:
    return JsonReply(status, {"message": message}, {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"})


def _chunks(sse_events: Iterable[bytes]) -> Iterator[bytes]:
    """Each Anthropic SSE event re-sent as a Bedrock ``chunk`` frame; the last one carries Bedrock's invocation metrics."""
    input_tokens = output_tokens = 0
    for event in sse_events:
        data = json.loads(event.split(b"data: ", 1)[1])
        if data["type"] == "message_start":
            input_tokens = data["message"]["usage"]["input_tokens"]
        elif data["type"] == "message_delta":
            output_tokens = data["usage"]["output_tokens"]
        elif data["type"] == "message_stop":
            data["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": input_tokens, "outputTokenCount": output_tokens,
                "invocationLatency": 1, "firstByteLatency": 1,
            }  # fmt: skip
        payload = {"bytes": base64.b64encode(dumps(data).encode()).decode("ascii")}
        yield frame(
            {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
            dumps(payload).encode(),
        )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC32), string headers, payload, message CRC32."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    head = prelude + struct.pack("!I", binascii.crc32(prelude)) + encoded + payload
    return head + struct.pack("!I", binascii.crc32(head))
