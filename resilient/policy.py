"""Validated, runtime-tunable policy objects: the configuration half of every layer.

Following Polly v8 and resilience4j, each decorator separates *what it is told
to do* (a :class:`Policy`: plain fields with named defaults) from *what it has
seen* (its runtime state and stats). A policy is shared by reference: every
function decorated with the same breaker, queue or key pool sees a change at
once, and ``ask.policy.max_retries = 3`` takes effect on the next attempt.

Fields are validated on construction and on every assignment; an invalid value
raises :class:`ValueError` naming the field, and the old value is kept. Reads
are plain attribute reads (validated values live in the instance ``__dict__``),
so consulting a policy on the hot path costs nothing extra.

Most fields are simply read at the next call. A field that the owner must act
on at once (a batch that the new size already fills, a bucket whose rate
changes) is listed in the subclass's ``_watched``: once a change of such a
field is stored, the policy calls every owner that asked through
``_listen``: several owners may share one policy (two queues, two batching
layers), and each must act on the change.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = [
    "Policy",
    "Validator",
    "non_negative_int",
    "positive_int",
    "non_negative_float",
    "positive_float",
    "optional",
    "fraction",
    "one_of",
    "at_least",
]

#: A validator gets the field name and the proposed value, and returns the
#: value to store (possibly normalised) or raises ValueError.
Validator = Callable[[str, Any], Any]


class Policy:
    """Base class: subclasses declare ``_fields = {"name": (default, validator)}``."""

    _fields: ClassVar[dict[str, tuple[Any, Validator]]] = {}
    #: Fields whose change the owners act on at once, through ``_listen`` (see the module docstring).
    _watched: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown field(s): {', '.join(sorted(unknown))}")
        checked = {name: check(name, values.get(name, default)) for name, (default, check) in self._fields.items()}
        self._check_together(checked)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        spec = self._fields.get(name)
        if spec is None:
            if name.startswith("_"):
                object.__setattr__(self, name, value)
                return
            raise AttributeError(f"{type(self).__name__} has no field {name!r}; fields: {', '.join(self._fields)}")
        value = spec[1](name, value)
        self._check_together({**self.__dict__, name: value})
        object.__setattr__(self, name, value)
        if name in self._watched:
            self._notify({name})

    def update(self, **values: Any) -> None:
        """Set several fields at once; if any value is invalid, none is changed."""
        checked = {}
        for name, value in values.items():
            spec = self._fields.get(name)
            if spec is None:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            checked[name] = spec[1](name, value)
        self._check_together({**self.__dict__, **checked})
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        watched = self._watched.intersection(checked)
        if watched:
            self._notify(watched)

    def _listen(self, listener: Callable[[set[str] | frozenset[str]], None]) -> None:
        """Have the bound method ``listener(names)`` called after each change of watched fields.

        Held weakly: a policy outliving one of its owners (a shared policy, a
        layer dropped by a test) neither keeps it alive nor calls it.
        """
        self.__dict__.setdefault("_listeners", []).append(weakref.WeakMethod(listener))

    def _notify(self, names: set[str] | frozenset[str]) -> None:
        """Tell every owner that the watched fields ``names`` changed (they are already stored)."""
        listeners = self.__dict__.get("_listeners")
        if not listeners:
            return
        alive = []
        for ref in listeners:
            listener = ref()
            if listener is not None:
                alive.append(ref)
                listener(names)
        listeners[:] = alive

    def _check_together(self, values: dict[str, Any]) -> None:
        """Raise ``ValueError`` when fields valid one by one are not valid together.

        ``values`` is the state the change would leave (every field). Checked
        before anything is set, so a refused change leaves the policy as it
        was; ``update`` changes related fields together.
        """

    def as_dict(self) -> dict[str, Any]:
        """The current values, for ``describe`` and logging."""
        return {name: _describe_value(getattr(self, name)) for name in self._fields}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({inner})"


def _describe_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return tuple(_describe_value(v) for v in value)
    return getattr(value, "__qualname__", None) or repr(value)


# --------------------------------------------------------------------------- validators


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return value


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def non_negative_float(name: str, value: Any) -> float:
    value = _number(name, value)
    if value < 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def positive_float(name: str, value: Any) -> float:
    value = _number(name, value)
    if value <= 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def at_least(minimum: float) -> Validator:
    def check(name: str, value: Any) -> float:
        value = _number(name, value)
        if value < minimum or math.isinf(value):
            raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
        return float(value)

    return check


def fraction(name: str, value: Any) -> float:
    value = _number(name, value)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def optional(inner: Validator) -> Validator:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def one_of(*choices: Any) -> Validator:
    """Exactly one of ``choices``: same type too, so ``1`` is not taken for ``True`` nor ``0`` for ``False``."""

    def check(name: str, value: Any) -> Any:
        if not any(type(value) is type(choice) and value == choice for choice in choices):
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
        return value

    return check
