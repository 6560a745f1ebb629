"""Call priorities, and the context variable that carries one past the function signature.

A priority is per *call*, not per function: the same ``ask`` serves an
interactive user (``high``) and a nightly batch (``low``). Adding a
``priority=`` argument to every wrapped function would leak the queue into
every signature, so the priority travels in a :class:`contextvars.ContextVar`
instead, set with :func:`priority`::

    with resilient.priority("high"):
        answer = ask(messages)          # also across ``await``, and in tasks created inside

A layer that orders calls (``@queued``) reads it with :func:`current_priority`.
This module is shared context (like the clock), not a decorator: any layer may
read it without importing another layer.
"""

from __future__ import annotations

import contextvars
from enum import IntEnum
from typing import Any

__all__ = ["Priority", "priority", "current_priority", "as_priority"]


class Priority(IntEnum):
    """Lower value is served first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @property
    def label(self) -> str:
        """``"high"``, ``"normal"`` or ``"low"`` (the name used in stats)."""
        return self.name.lower()


_PRIORITY: contextvars.ContextVar[Priority | None] = contextvars.ContextVar("resilient_priority", default=None)


def as_priority(value: Any) -> Priority:
    """``value`` as a :class:`Priority`: a member, its value, or its name in any case.

    Raises :class:`ValueError` naming the accepted values otherwise.
    """
    if isinstance(value, Priority):
        return value
    if isinstance(value, str):
        member = Priority.__members__.get(value.strip().upper())
        if member is not None:
            return member
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value)
        except ValueError:
            pass
    raise ValueError(f"priority must be 'high', 'normal', 'low' or a Priority; got {value!r}")


class priority:
    """Run the calls inside the block at priority ``value``; blocks nest, the outer value returns on exit.

    A small class rather than ``@contextlib.contextmanager``: a block around
    every call should cost a few hundred nanoseconds, not a generator.
    """

    __slots__ = ("value", "_tokens")

    def __init__(self, value: Any) -> None:
        self.value = as_priority(value)
        self._tokens: list[contextvars.Token[Priority | None]] = []

    def __enter__(self) -> Priority:
        self._tokens.append(_PRIORITY.set(self.value))
        return self.value

    def __exit__(self, *exc_info: Any) -> None:
        _PRIORITY.reset(self._tokens.pop())


def current_priority() -> Priority | None:
    """The priority set by the innermost :func:`priority` block, or ``None`` outside any."""
    return _PRIORITY.get()
