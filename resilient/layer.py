"""What every decorator's wrapper exposes, and :func:`describe` to read a whole stack.

A decorated function carries its layer: ``fn.policy`` (the validated,
tunable configuration), ``fn.stats()`` (a snapshot dict), ``fn.reset_stats()``,
and ``fn.__wrapped__`` (the next layer down, set by :func:`functools.wraps`).
:func:`describe` follows ``__wrapped__`` from the outside in.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .policy import Policy

__all__ = ["Layer", "attach", "describe", "layer", "layers", "layer_of", "SYNC", "ASYNC", "GEN", "ASYNC_GEN", "kind_of"]

F = TypeVar("F", bound=Callable[..., Any])

SYNC, ASYNC, GEN, ASYNC_GEN = "sync", "async", "generator", "async_generator"


def kind_of(fn: Callable[..., Any]) -> str:
    """Which of the four callable kinds ``fn`` is; decides which wrapper a layer builds.

    Looks through ``functools.partial`` and through our own wrappers (which
    keep the kind of what they wrap), so layers stack in any order.
    """
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.isasyncgenfunction(target):
        return ASYNC_GEN
    if inspect.iscoroutinefunction(target):
        return ASYNC
    if inspect.isgeneratorfunction(target):
        return GEN
    call = getattr(target, "__call__", None)
    if not inspect.isfunction(target) and not inspect.ismethod(target) and call is not None:
        # A callable object: judge by its __call__ method.
        if inspect.isasyncgenfunction(call):
            return ASYNC_GEN
        if inspect.iscoroutinefunction(call):
            return ASYNC
        if inspect.isgeneratorfunction(call):
            return GEN
    return SYNC


class Layer:
    """Runtime side of one decorator: its policy, its counters, and its name in :func:`describe`."""

    kind: str = "layer"
    name: str | None = None
    policy: Policy

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError

    def reset_stats(self) -> None:
        raise NotImplementedError


def attach(wrapper: F, wrapped: Callable[..., Any], layer: Layer) -> F:
    """Give ``wrapper`` the metadata of ``wrapped`` and the layer's public handles."""
    functools.update_wrapper(wrapper, wrapped)
    wrapper.policy = layer.policy  # type: ignore[attr-defined]
    wrapper.stats = layer.stats  # type: ignore[attr-defined]
    wrapper.reset_stats = layer.reset_stats  # type: ignore[attr-defined]
    wrapper.__resilient_layer__ = layer  # type: ignore[attr-defined]
    return wrapper


def check_target(decorator: str, fn: Any) -> None:
    """Refuse ``@decorator("high")``: settings are keywords, the one positional is the function.

    Without this a string passed positionally is taken for the function and
    fails only at the first call, with ``'str' object is not callable``.
    """
    if fn is not None and not callable(fn):
        raise TypeError(
            f"{decorator}() takes its settings as keywords (e.g. {decorator}(name=value)); "
            f"its only positional argument is the function to decorate, got a {type(fn).__name__}"
        )


def layer_of(fn: Callable[..., Any]) -> Layer | None:
    """The layer a wrapper belongs to, if ``fn`` is one of ours."""
    return getattr(fn, "__resilient_layer__", None)


def layers(fn: Callable[..., Any]) -> list[Layer]:
    """The layers of a decorated stack, outermost first.

    Layers that are not ours (a user's own decorator in between) are skipped
    as long as they set ``__wrapped__``, as :func:`functools.wraps` does.
    """
    found: list[Layer] = []
    seen: set[int] = set()
    current: Any = fn
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        layer = layer_of(current)
        # functools.wraps on a foreign decorator copies our attributes onto
        # it; the same layer met twice in a row is that copy, not a new layer.
        if layer is not None and (not found or layer is not found[-1]):
            found.append(layer)
        current = getattr(current, "__wrapped__", None)
    return found


def layer(fn: Callable[..., Any], kind: str) -> Layer:
    """The outermost layer of ``kind`` (``"backoff"``, ``"circuit"``, ...) in ``fn``'s stack.

    ``fn.policy`` and ``fn.stats()`` are the outermost layer's; this reaches
    the others: ``layer(ask, "backoff").policy.max_retries = 3``.
    """
    stack = layers(fn)
    for candidate in stack:
        if candidate.kind == kind:
            return candidate
    raise LookupError(f"no {kind!r} layer in this stack; it has {[c.kind for c in stack] or 'none of ours'}")


def describe(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """Every layer of a decorated stack, outermost first: name, policy and stats."""
    return [
        {"layer": found.kind, "name": found.name, "policy": found.policy.as_dict(), "stats": found.stats()}
        for found in layers(fn)
    ]
