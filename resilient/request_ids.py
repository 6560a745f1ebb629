"""The request id of the current call, carried in a context variable.

Set it once at the edge (``with resilient.request_id("req-42"): ...``, or
with no argument for a fresh random one) and every adapter call inside sends
it as ``X-Request-ID``, so a user's logs, ours and the provider's can be
correlated. Like the priority, it travels past function signatures, across
``await`` and into tasks created inside the block.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator

__all__ = ["request_id", "current_request_id"]

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("resilient_request_id", default=None)


@contextlib.contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    """Make ``value`` (default: a new random id) the request id for the calls inside the block."""
    rid = value if value is not None else uuid.uuid4().hex
    token = _REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        _REQUEST_ID.reset(token)


def current_request_id() -> str | None:
    """The request id set by the innermost :func:`request_id` block, if any."""
    return _REQUEST_ID.get()
