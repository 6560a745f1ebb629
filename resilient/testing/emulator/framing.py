"""How streamed pieces are framed on the wire, shared by every protocol.

Server-sent events (OpenAI, Anthropic, TGI, Gemini) and newline-delimited
JSON (Ollama) are the two framings; each protocol module only decides what
goes in the events.

SSE lines may end in LF or CRLF, and providers differ: Google ends Gemini's
in CRLF (``data: {...}\r\n\r\n``), the others in LF. Each protocol sends
its provider's, so a hand-written reader that splits on ``\n\n`` fails
against the emulator as it would against the service.
"""

from __future__ import annotations

from typing import Any

from .content import dumps

__all__ = ["sse", "sse_raw", "ndjson", "SSE", "NDJSON", "LF", "CRLF"]

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
LF = "\n"
CRLF = "\r\n"


def sse(data: Any, event: str | None = None, *, newline: str = LF) -> bytes:
    """One SSE event carrying ``data`` as compact JSON, with an optional ``event:`` name; lines end in ``newline``."""
    return sse_raw(dumps(data), event, newline=newline)


def sse_raw(data: str, event: str | None = None, *, newline: str = LF) -> bytes:
    """One SSE event whose data is sent verbatim (``[DONE]``, or a deliberately broken payload)."""
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {data}{newline}{newline}".encode()


def ndjson(value: Any) -> bytes:
    """One NDJSON line."""
    return (dumps(value) + "\n").encode()


WRONG_SHAPE: dict[str, Any] = {"emulator": "a body of the wrong shape"}


def malform_body(body: Any, mode: str, shape: Any = WRONG_SHAPE) -> bytes:
    """A complete reply body broken the way the ``malformed`` fault asks (``shape``: what ``wrong_shape`` sends)."""
    if mode == "wrong_shape":
        return dumps(shape).encode()
    text = dumps(body)
    return text[: max(1, len(text) // 2)].encode()


def malform_piece(piece: bytes, mode: str, shape: Any = WRONG_SHAPE) -> bytes:
    """One streamed piece broken the same way, keeping its framing so the client parses up to the JSON."""
    if mode == "wrong_shape":
        if piece.startswith(b"data: ") or b"\ndata: " in piece:
            head = piece.split(b"data: ", 1)[0]
            return head + sse_raw(dumps(shape), newline=CRLF if piece.endswith(b"\r\n") else LF)
        return ndjson(shape)
    cut = piece.rfind(b"}")
    return piece[:cut] + piece[cut + 1 :] if cut >= 0 else piece
