"""A retry budget: retries may be at most a share of recent calls.

Without one, an outage multiplies traffic by ``max_retries + 1`` exactly when
the provider can least take it (a retry storm). A budget shared by many
functions caps retries to ``ratio`` of the calls made in the last ``ttl``
seconds, plus a floor of ``min_per_second`` so that a quiet service can
still retry at all. This is the scheme of Finagle's and Envoy's retry budgets.

Time is kept in one-second buckets over a sliding window, so the cost per
call is an integer increment under a lock, whatever the traffic. Hence
``ttl`` is at least one second (a shorter window would hold no bucket at
all) and counts whole seconds, rounded down, as Finagle's does.
"""

from __future__ import annotations

import threading
from typing import Any

from . import clock as _clock
from .policy import Policy, at_least, non_negative_float

__all__ = ["RetryBudget", "RetryBudgetPolicy"]


class RetryBudgetPolicy(Policy):
    _fields = {
        "ratio": (0.2, non_negative_float),
        "min_per_second": (1.0, non_negative_float),
        "ttl": (10.0, at_least(1.0)),  # the window is kept in whole-second buckets
    }

    ratio: float
    min_per_second: float
    ttl: float


class RetryBudget:
    """Allows ``min_per_second * ttl + ratio * calls`` retries per sliding ``ttl`` window."""

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 1.0,
        *,
        ttl: float = 10.0,
        clock: _clock.Clock | None = None,
    ) -> None:
        self.policy = RetryBudgetPolicy(ratio=ratio, min_per_second=min_per_second, ttl=ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[int, int] = {}
        self._retries: dict[int, int] = {}
        self.refused = 0

    def record_call(self) -> None:
        """Count one call (its first attempt) into the window."""
        second = int(_clock.resolve(self._clock).monotonic())
        with self._lock:
            if second not in self._calls:
                self._expire(second)  # a new second: drop what left the window
            self._calls[second] = self._calls.get(second, 0) + 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` means the retry must not happen."""
        return self.spend() is not None

    def spend(self) -> int | None:
        """Take one retry from the budget: the second it was counted in, for :meth:`refund`; ``None``: refused."""
        second = int(_clock.resolve(self._clock).monotonic())
        with self._lock:
            self._expire(second)
            calls = sum(self._calls.values())
            retries = sum(self._retries.values())
            allowed = self.policy.min_per_second * self.policy.ttl + self.policy.ratio * calls
            if retries + 1 > allowed:
                self.refused += 1
                return None
            self._retries[second] = self._retries.get(second, 0) + 1
            return second

    def refund(self, second: int) -> None:
        """Give back the unit :meth:`spend` took in ``second`` for a retry that was never sent.

        (Its caller was cancelled while waiting to make it.) Only that second's
        count goes down: a unit that has already left the window is not
        given back twice by taking another caller's retry off a newer second,
        which would let the window hold more retries than the budget allows.
        """
        with self._lock:
            n = self._retries.get(second, 0)
            if n > 1:
                self._retries[second] = n - 1
            elif n:
                del self._retries[second]

    def _expire(self, second: int) -> None:
        oldest = second - int(self.policy.ttl) + 1
        for buckets in (self._calls, self._retries):
            for stale in [s for s in buckets if s < oldest]:
                del buckets[stale]

    def stats(self) -> dict[str, Any]:
        now = int(_clock.resolve(self._clock).monotonic())
        with self._lock:
            self._expire(now)
            return {
                "calls_in_window": sum(self._calls.values()),
                "retries_in_window": sum(self._retries.values()),
                "refused": self.refused,
            }

    def __repr__(self) -> str:
        p = self.policy
        return f"RetryBudget(ratio={p.ratio:g}, min_per_second={p.min_per_second:g}, ttl={p.ttl:g})"
