"""OpenVINO Model Server: OpenAI-compatible ``/v3/chat/completions`` and ``/v3/embeddings``, and the
KServe v2 REST API (``/v2/models/{name}``, ``/ready``, ``/infer``).

The ``/v3`` routes are the OpenAI module's handlers under another prefix.
The KServe model is a stand-in: text (``BYTES``) inputs come back as
deterministic embeddings, numeric inputs are echoed (an identity model), so
tests can assert outputs exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

from resilient.clock import Clock

from .. import content
from ..exchange import BadRequest, JsonReply, Reply, Request
from . import Protocol, Quota, Refusal, Route
from .openai import OpenAI

__all__ = ["OpenVINO"]

_EMBEDDING_SIZE = 384
_NUMERIC = {"FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


class OpenVINO(OpenAI):
    """A local server: no key needed, no rate-limit or retry headers, its own ``{"error": "..."}`` body.

    Chat messages go to the model's chat template as they are, without
    OpenAI's checks of roles and tool turns.
    """

    name: ClassVar[str] = "openvino"
    checks_messages: ClassVar[bool] = False
    sends_retry_after = sends_retry_after_ms = False
    missing_key: ClassVar[Refusal | None] = None
    bad_key: ClassVar[Refusal] = Protocol.bad_key
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v3/", "/v2/")

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock, prefix="/v3")

    def routes(self) -> list[Route]:
        model = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"
        return [
            self.route("POST", "/v3/chat/completions", self.chat),
            self.route("POST", "/v3/embeddings", self.embeddings),
            self.route("GET", model, self.metadata),
            self.route("GET", model + "/ready", self.ready),
            self.route("POST", model + "/infer", self.infer),
        ]

    def rate_limit_headers(self, quota: Quota) -> dict[str, str]:
        """None: OVMS sends no ``x-ratelimit-*`` headers, so a client must not come to rely on OpenAI's here."""
        return {}

    def _error(self, status: int, message: str, code: str | None, param: str | None = None) -> JsonReply:
        return JsonReply(status, {"error": message})

    def metadata(self, request: Request) -> Reply:
        return JsonReply(
            200,
            {
                "name": request.params["model"],
                "versions": ["1"],
                "platform": "OpenVINO",
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "embeddings", "datatype": "FP32", "shape": [-1, _EMBEDDING_SIZE]}],
            },
        )

    def ready(self, request: Request) -> Reply:
        return JsonReply(200, {})

    def infer(self, request: Request) -> Reply:
        body = request.json()
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest("Invalid request: 'inputs' must be a non-empty array")
        reply: dict[str, Any] = {
            "model_name": request.params["model"],
            "model_version": request.params.get("version") or "1",
            "outputs": [_output(tensor) for tensor in inputs],
        }
        if "id" in body:
            reply["id"] = body["id"]
        return JsonReply(200, reply)


def _output(tensor: Any) -> dict[str, Any]:
    if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= tensor.keys():
        raise BadRequest("Invalid input tensor: 'name', 'shape', 'datatype' and 'data' are required")
    data = tensor["data"]
    if tensor["datatype"] == "BYTES":
        texts = [str(t) for t in data]
        values = [x for text in texts for x in content.embedding(text, _EMBEDDING_SIZE)]
        return {"name": "embeddings", "shape": [len(texts), _EMBEDDING_SIZE], "datatype": "FP32", "data": values}
    if tensor["datatype"] not in _NUMERIC:
        raise BadRequest(f"Invalid datatype: {tensor['datatype']}")
    return {"name": tensor["name"], "shape": tensor["shape"], "datatype": tensor["datatype"], "data": data}
