"""Scripted faults: what can go wrong, where, and when.

A fault has a *kind* (what it does) and a *scope* (which requests it
touches: provider, path prefix, API key, and a time window counted from the
moment the fault was added). For each request the :class:`FaultSet` builds
a :class:`Plan`: an error to answer instead of the real reply, a delay, or
damage to the reply (slow or cut streams, broken JSON). The server carries
the plan out; faults never touch sockets.

Gate faults (``bad_key``, ``outage``, ``rate_limit``, ``error_rate``) are
consulted in that order and the first one that fails the request wins, so a
rejected key does not spend rate-limit tokens. Shaping faults (``latency``,
``slow_stream``, ``truncate_stream``, ``malformed``) then add to the plan.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...secrets import fingerprint
from .framing import WRONG_SHAPE
from .protocols import Quota, format_seconds

__all__ = ["Call", "Plan", "Failure", "RefusedKey", "Fault", "FaultSet", "KINDS", "make_fault"]


@dataclass(frozen=True)
class Call:
    """The facts about one request that faults decide on."""

    provider: str
    path: str
    key: str | None
    now: float  # emulator clock, monotonic seconds
    tokens: int = 0  # the request's prompt size in emulated tokens, for token-per-minute limits


@dataclass(frozen=True)
class Failure:
    status: int
    message: str
    retry_after: float | None = None
    quota: Quota | None = None
    retry_header: bool | None = None  # send Retry-After: None as the provider does, True/False to force it


@dataclass(frozen=True)
class RefusedKey:
    """A key the ``bad_key`` fault refuses: the protocol answers with its provider's own bad-key body.

    Each provider refuses an unknown key differently (OpenAI 401, Gemini 400
    ``API_KEY_INVALID``, Bedrock 403 ``UnrecognizedClientException``), so the
    fault only says that it happened; ``status`` is set when the fault's
    script asked for a status of its own.
    """

    status: int | None = None


@dataclass
class Plan:
    """Everything the faults want done to one request."""

    failure: Failure | RefusedKey | None = None
    refuse: bool = False  # drop the connection without answering
    delay: float = 0.0
    chunk_delay: float = 0.0
    truncate_after: int | None = None
    truncate_error: Failure | None = None  # the in-stream error to send at the cut, if any
    malformed: str | None = None
    wrong_shape: Any = field(default_factory=lambda: WRONG_SHAPE)  # what ``wrong_shape`` sends instead
    quota: Quota | None = None  # rate-limit headers to send on success too
    fired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scope:
    """Which requests a fault touches; ``None`` means any."""

    providers: frozenset[str] | None = None
    path: str | None = None
    keys: frozenset[str] | None = None
    start: float = 0.0
    duration: float | None = None

    def covers(self, call: Call, age: float) -> bool:
        if age < self.start or (self.duration is not None and age >= self.start + self.duration):
            return False
        if self.providers is not None and call.provider not in self.providers:
            return False
        if self.path is not None and not call.path.startswith(self.path):
            return False
        return self.keys is None or call.key in self.keys


class Fault:
    """One scripted fault; also the handle ``add_fault`` returns (``.remove()`` takes it out)."""

    kind: ClassVar[str]
    gate: ClassVar[bool] = False

    def __init__(self, scope: Scope, added_at: float) -> None:
        self.scope = scope
        self.added_at = added_at
        self.hits = 0  # requests this fault acted on
        self._owner: FaultSet | None = None

    def remove(self) -> None:
        """Stop this fault; later requests no longer see it."""
        if self._owner is not None:
            self._owner.remove(self)

    def apply(self, call: Call, plan: Plan) -> bool:
        """Change ``plan`` for ``call``; return whether the fault acted."""
        raise NotImplementedError

    def __repr__(self) -> str:
        keys = sorted(fingerprint(k) for k in self.scope.keys) if self.scope.keys else None
        return f"<{type(self).__name__} kind={self.kind!r} keys={keys} hits={self.hits}>"


class BadKey(Fault):
    """Listed API keys are refused as a revoked key would be: with the provider's own answer, or ``status``.

    ``None`` among the keys refuses requests that carry no key, as a local
    server put behind a key does (hosted providers refuse those already).
    """

    kind, gate = "bad_key", True

    def __init__(
        self, scope: Scope, added_at: float, *, keys: Iterable[str | None], status: int | None = None
    ) -> None:
        super().__init__(scope, added_at)
        self.keys = frozenset([keys] if isinstance(keys, str) else keys)
        self.status = None if status is None else _status(status, (400, 401, 403))

    def apply(self, call: Call, plan: Plan) -> bool:
        if call.key not in self.keys:
            return False
        plan.failure = RefusedKey(self.status)
        return True


class Outage(Fault):
    """Inside its window the provider answers ``status`` to everything, or drops connections (``refuse``)."""

    kind, gate = "outage", True

    def __init__(self, scope: Scope, added_at: float, *, status: int = 503, refuse: bool = False) -> None:
        super().__init__(scope, added_at)
        self.status = _status(status, (500, 502, 503, 504, 529))
        self.refuse = bool(refuse)

    def apply(self, call: Call, plan: Plan) -> bool:
        if self.refuse:
            plan.refuse = True
        else:
            plan.failure = Failure(self.status, _OUTAGE_MESSAGES.get(self.status, "The server is unavailable."))
        return True


class ErrorRate(Fault):
    """A seeded share of requests fail with ``status``: reproducible flakiness."""

    kind, gate = "error_rate", True

    def __init__(self, scope: Scope, added_at: float, *, rate: float, status: int = 500, seed: int = 0) -> None:
        super().__init__(scope, added_at)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate!r}")
        self.rate = float(rate)
        self.status = _status(status, range(400, 600))
        self._random = random.Random(seed)

    def apply(self, call: Call, plan: Plan) -> bool:
        if self._random.random() >= self.rate:
            return False
        plan.failure = Failure(self.status, _OUTAGE_MESSAGES.get(self.status, "The server had an error processing your request."))
        return True


class RateLimit(Fault):
    """A token bucket per API key: ``rps`` refill, ``burst`` capacity, optional ``tpm`` prompt tokens per minute.

    A request takes one request token (and its prompt tokens); when either
    bucket is short it gets 429 with the exact wait until it would pass.
    Both answers carry the bucket's true state for the rate-limit headers.

    The 429 carries a ``Retry-After`` header where the provider sends one
    (OpenAI, Groq, Anthropic); TGI, TEI, Ollama, OVMS, OPEA, Gemini and
    Bedrock send none. ``retry_after=True`` adds it anyway, as a gateway in
    front of a local server may; ``False`` leaves it out everywhere.
    """

    kind, gate = "rate_limit", True

    def __init__(
        self, scope: Scope, added_at: float, *, rps: float, burst: int | None = None, tpm: int | None = None,
        retry_after: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__(scope, added_at)
        if retry_after is not None and not isinstance(retry_after, bool):
            raise ValueError(f"retry_after must be True, False or None, got {retry_after!r}")
        self.retry_header = retry_after
        if rps <= 0:
            raise ValueError(f"rps must be > 0, got {rps!r}")
        self.rps = float(rps)
        self.burst = int(burst) if burst is not None else max(1, math.ceil(rps))
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if tpm is not None and tpm < 1:
            raise ValueError(f"tpm must be >= 1, got {tpm!r}")
        self.tpm = tpm
        self._buckets: dict[str | None, tuple[_Bucket, _Bucket | None]] = {}

    def apply(self, call: Call, plan: Plan) -> bool:
        requests, tokens = self._buckets.setdefault(call.key, self._new_buckets(call.now))
        cost = min(call.tokens, tokens.capacity) if tokens else 0
        wait = max(requests.wait(call.now, 1), tokens.wait(call.now, cost) if tokens else 0.0)
        if wait <= 0:
            requests.take(1)
            if tokens:
                tokens.take(cost)
        quota = Quota(
            requests_limit=self.burst,
            requests_remaining=int(requests.level),
            requests_reset=requests.until_full(),
            tokens_limit=self.tpm,
            tokens_remaining=int(tokens.level) if tokens else None,
            tokens_reset=tokens.until_full() if tokens else None,
            retry_after=wait if wait > 0 else None,
        )
        plan.quota = quota
        if wait <= 0:
            return False
        plan.failure = Failure(
            429,
            f"Rate limit reached for {fingerprint(call.key)}: {self.rps:g} requests per second, burst {self.burst}."
            f" Please try again in {format_seconds(wait)}s.",
            retry_after=wait,
            quota=quota,
            retry_header=self.retry_header,
        )
        return True

    def _new_buckets(self, now: float) -> tuple[_Bucket, _Bucket | None]:
        tokens = _Bucket(self.tpm, self.tpm / 60.0, now) if self.tpm else None
        return _Bucket(self.burst, self.rps, now), tokens


class Latency(Fault):
    """A delay before answering: ``seconds``, or uniform in [``seconds``, ``max_seconds``] (seeded)."""

    kind = "latency"

    def __init__(
        self, scope: Scope, added_at: float, *, seconds: float, max_seconds: float | None = None, seed: int = 0
    ) -> None:
        super().__init__(scope, added_at)
        if seconds < 0 or (max_seconds is not None and max_seconds < seconds):
            raise ValueError("need 0 <= seconds <= max_seconds")
        self.seconds, self.max_seconds = float(seconds), max_seconds
        self._random = random.Random(seed)

    def apply(self, call: Call, plan: Plan) -> bool:
        extra = self._random.uniform(self.seconds, self.max_seconds) if self.max_seconds is not None else self.seconds
        plan.delay += extra
        return True


class SlowStream(Fault):
    """A delay of ``seconds`` before every streamed chunk."""

    kind = "slow_stream"

    def __init__(self, scope: Scope, added_at: float, *, seconds: float) -> None:
        super().__init__(scope, added_at)
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self.seconds = float(seconds)

    def apply(self, call: Call, plan: Plan) -> bool:
        plan.chunk_delay += self.seconds
        return True


class TruncateStream(Fault):
    """Cut a stream after ``after`` chunks: drop the connection, or (``error=True``) send the provider's in-stream error.

    The in-stream error is a 500 unless ``status`` says otherwise (a 429 that
    arrives after the first tokens, as on Gemini); ``retry_after`` is the hint
    it carries where the provider puts one inside the error (Gemini's
    ``RetryInfo``).
    """

    kind = "truncate_stream"

    def __init__(
        self, scope: Scope, added_at: float, *, after: int = 1, error: bool = False, status: int = 500,
        retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(scope, added_at)
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after!r}")
        if retry_after is not None and not retry_after >= 0:
            raise ValueError(f"retry_after must be >= 0, got {retry_after!r}")
        self.after, self.error = int(after), bool(error)
        self.failure = Failure(
            _status(status, range(400, 600)), _STREAM_MESSAGES.get(int(status), "The stream was interrupted."),
            None if retry_after is None else float(retry_after),
        )  # fmt: skip

    def apply(self, call: Call, plan: Plan) -> bool:
        plan.truncate_after, plan.truncate_error = self.after, self.failure if self.error else None
        return True


class Malformed(Fault):
    """Break the reply body: ``invalid_json`` (cut in half) or ``wrong_shape`` (valid JSON, wrong fields).

    ``body`` is the valid JSON that ``wrong_shape`` sends instead of the reply,
    or of each streamed event (framing kept): a string where an object
    belongs, ``null`` choices, a count that is not a number; or a server's
    own in-stream error chunk that the emulated protocols do not send (TGI's
    Messages-API error, Groq's ``x_groq.error``). The default is an object
    with none of the protocol's fields.
    """

    kind = "malformed"
    MODES: ClassVar[tuple[str, ...]] = ("invalid_json", "wrong_shape")

    def __init__(self, scope: Scope, added_at: float, *, mode: str = "invalid_json", body: Any = WRONG_SHAPE) -> None:
        super().__init__(scope, added_at)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if body is not WRONG_SHAPE and mode != "wrong_shape":
            raise ValueError("body is what mode='wrong_shape' sends; it does not go with mode='invalid_json'")
        self.mode, self.body = mode, body

    def apply(self, call: Call, plan: Plan) -> bool:
        plan.malformed, plan.wrong_shape = self.mode, self.body
        return True


_GATE_ORDER = ("bad_key", "outage", "rate_limit", "error_rate")
KINDS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (BadKey, Outage, RateLimit, ErrorRate, Latency, SlowStream, TruncateStream, Malformed)
}
_STREAM_MESSAGES = {
    400: "The request is invalid.",
    403: "Permission denied.",
    429: "Rate limit exceeded mid-stream.",
}
_OUTAGE_MESSAGES = {
    500: "The server had an error while processing your request.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable.",
    504: "The server did not answer in time.",
    529: "Overloaded",
}


def make_fault(kind: str, added_at: float, params: dict[str, Any]) -> Fault:
    """Build a fault of ``kind`` from keyword parameters (scope ones and the kind's own)."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(KINDS)}") from None
    params = dict(params)
    duration = params.pop("duration", None)
    scope = Scope(
        providers=_as_set(params.pop("provider", None)),
        path=params.pop("path", None),
        keys=_as_set(params.pop("key", None)),
        start=float(params.pop("start", 0.0)),
        duration=None if duration is None else float(duration),
    )
    return cls(scope, added_at, **params)


class FaultSet:
    """The active faults, consulted for every request under one short lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault._owner = self
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
            fault._owner = None

    def clear(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault._owner = None
            self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)

    def plan(self, call: Call) -> Plan:
        plan = Plan()
        with self._lock:
            active = [f for f in self._faults if f.scope.covers(call, call.now - f.added_at)]
            gates = sorted((f for f in active if f.gate), key=lambda f: _GATE_ORDER.index(f.kind))
            for fault in gates:
                if fault.apply(call, plan):
                    self._fired(fault, plan)
                if plan.failure or plan.refuse:
                    break
            for fault in active:
                if not fault.gate and fault.apply(call, plan):
                    self._fired(fault, plan)
        return plan

    @staticmethod
    def _fired(fault: Fault, plan: Plan) -> None:
        fault.hits += 1
        plan.fired.append(fault.kind)


class _Bucket:
    """A token bucket read at explicit times, so a fake clock drives it exactly.

    A request is admitted when the level is short of ``amount`` by no more than
    :data:`_SLACK` tokens: the refill is float arithmetic (``(now - at) * rate``),
    so a client that waits exactly the advertised wait (rounded up to the
    millisecond, never down) may find the level a few ulps below the whole token
    it was promised, and must still get through.
    """

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.level, self._at = float(capacity), now

    def wait(self, now: float, amount: float) -> float:
        """Refill up to ``now``; seconds until ``amount`` tokens are there (0 if they are)."""
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = max(self._at, now)
        return 0.0 if self.level >= amount - _SLACK else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def until_full(self) -> float:
        return (self.capacity - self.level) / self.rate


#: Tokens a bucket may be short of a request and still admit it: float noise, far below any real shortfall.
_SLACK = 1e-9


def _as_set(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _status(value: int, allowed: Iterable[int]) -> int:
    if int(value) not in allowed:
        raise ValueError(f"status {value!r} is not allowed for this fault")
    return int(value)
