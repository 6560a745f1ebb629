"""The request id of the current call, carried in a context variable.

Set it once at the edge (``with resilient.request_id("req-42"): ...``, or
with no argument for a fresh random one) and every adapter call inside sends
it as ``X-Request-ID``, so a user's logs, ours and the provider's can be
correlated. Like the priority, it travels past function signatures, across
``await`` and into tasks created inside the block.

An id is checked when the block is entered, not at the first call: it must be
a string of 1 to 200 printable ASCII characters, without leading or trailing
blanks (so never CR/LF, which would split the HTTP header); anything else is a
``ValueError`` naming ``request_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator

from .secrets import redact

__all__ = ["request_id", "current_request_id", "check_request_id"]

MAX_REQUEST_ID_LENGTH = 200

# Printable ASCII (space to tilde), first and last character not a space.
_VALID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("resilient_request_id", default=None)


def check_request_id(value: object) -> str:
    """``value`` if it can be sent as an ``X-Request-ID`` header, else a ``ValueError`` naming ``request_id``."""
    if not isinstance(value, str):
        raise ValueError(f"request_id: a string is required, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_REQUEST_ID_LENGTH:
        raise ValueError(f"request_id: 1 to {MAX_REQUEST_ID_LENGTH} characters are required, got {len(value)}")
    if not _VALID.fullmatch(value):
        raise ValueError(
            "request_id: printable ASCII without line breaks, control characters"
            f" or leading/trailing blanks is required, got {redact(repr(value[:40]))}"
        )
    return value


@contextlib.contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    """Make ``value`` (default: a new random id) the request id for the calls inside the block.

    Raises ``ValueError`` at once if ``value`` is not a valid id (see the module docstring).
    """
    rid = check_request_id(value) if value is not None else uuid.uuid4().hex
    token = _REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        _REQUEST_ID.reset(token)


def current_request_id() -> str | None:
    """The request id set by the innermost :func:`request_id` block, if any."""
    return _REQUEST_ID.get()
