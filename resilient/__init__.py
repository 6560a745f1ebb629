"""resilient: composable decorators that make calls to LLM provider APIs survive the real world.

Stack them over any callable (plain, method, ``async``, generator, async
generator), outermost first::

    @circuit(fail_max=5, reset_timeout=30)
    @backoff(max_retries=5)
    def ask(messages): ...

Every decorated function exposes ``.policy`` (validated, tunable at runtime),
``.stats()`` and ``.reset_stats()``; :func:`describe` walks a whole stack.
"""

import logging as _logging

from . import clock
from .backoff import Backoff, BackoffPolicy, backoff
from .circuit import Circuit, CircuitPolicy, circuit
from .clock import FakeClock
from .errors import (
    AuthenticationError,
    CircuitOpenError,
    Classification,
    InvalidRequestError,
    NoKeyAvailableError,
    NotFoundError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    QueueFullError,
    QueueTimeoutError,
    RateLimitError,
    ResilientError,
    ServerError,
    classify,
    parse_retry_after,
)
from .layer import describe
from .retry_budget import RetryBudget
from .secrets import fingerprint
from .throttle import ThrottleGate

__version__ = "0.1.0"

# A library logs, the application decides where it goes (circuit transitions
# at WARNING would otherwise land on stderr through logging's last resort).
_logging.getLogger("resilient").addHandler(_logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "Backoff",
    "BackoffPolicy",
    "Circuit",
    "CircuitOpenError",
    "CircuitPolicy",
    "Classification",
    "FakeClock",
    "InvalidRequestError",
    "NoKeyAvailableError",
    "NotFoundError",
    "OverloadedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "QueueFullError",
    "QueueTimeoutError",
    "RateLimitError",
    "ResilientError",
    "RetryBudget",
    "ServerError",
    "ThrottleGate",
    "backoff",
    "circuit",
    "classify",
    "clock",
    "describe",
    "fingerprint",
    "parse_retry_after",
]
