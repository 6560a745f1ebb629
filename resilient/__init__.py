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
from .batched import Batched, BatchedPolicy, BatchLengthError, batched
from .circuit import Circuit, CircuitPolicy, circuit
from .clock import FakeClock
from .embeddings import EmbeddingModelError, SentenceTransformerEmbedder
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
from .keys import keys_from_env
from .layer import describe, layer, layers
from .multiplex import KeyPool, MultiplexPolicy, multiplex
from .near_miss import NearMissGuard
from .priorities import Priority, current_priority, priority
from .queue import QueuePolicy, RequestQueue, queued
from .ratelimit import BucketState, MemoryBucketState, RateLimiter, RateLimitExceeded, RateLimitPolicy, rate_limited
from .request_ids import current_request_id, request_id
from .retry_budget import RetryBudget
from .secrets import fingerprint
from .semantic_cache import SemanticCache, SemanticCachePolicy, semantic_cache
from .stores import RedisStore, StoreUnavailable
from .throttle import ThrottleGate

__version__ = "0.1.0"

# A library logs, the application decides where it goes (circuit transitions
# at WARNING would otherwise land on stderr through logging's last resort).
_logging.getLogger("resilient").addHandler(_logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "Backoff",
    "BackoffPolicy",
    "BatchLengthError",
    "Batched",
    "BatchedPolicy",
    "BucketState",
    "Circuit",
    "CircuitOpenError",
    "CircuitPolicy",
    "Classification",
    "EmbeddingModelError",
    "FakeClock",
    "InvalidRequestError",
    "KeyPool",
    "MemoryBucketState",
    "MultiplexPolicy",
    "NearMissGuard",
    "NoKeyAvailableError",
    "NotFoundError",
    "OverloadedError",
    "Priority",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "QueueFullError",
    "QueuePolicy",
    "QueueTimeoutError",
    "RateLimitError",
    "RateLimitExceeded",
    "RateLimitPolicy",
    "RateLimiter",
    "RedisStore",
    "RequestQueue",
    "ResilientError",
    "RetryBudget",
    "SemanticCache",
    "SemanticCachePolicy",
    "SentenceTransformerEmbedder",
    "ServerError",
    "StoreUnavailable",
    "ThrottleGate",
    "backoff",
    "batched",
    "circuit",
    "classify",
    "clock",
    "current_priority",
    "current_request_id",
    "describe",
    "layer",
    "layers",
    "fingerprint",
    "keys_from_env",
    "multiplex",
    "parse_retry_after",
    "priority",
    "queued",
    "rate_limited",
    "request_id",
    "semantic_cache",
]
