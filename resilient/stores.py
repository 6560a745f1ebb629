"""Shared state: what several processes must agree on lives in Redis.

In one process, each layer keeps its state in memory. When several processes
(gateway workers, a fleet of batch jobs) must share it, the layer takes
``store=``: a :class:`RedisStore`, one connection and one key prefix. Two rules
hold for everything built on it:

* **Every state change is one atomic round trip**: a Lua script, which Redis
  runs alone, so no other client ever sees half a change and a slow network
  costs one round trip, not several.
* **Redis down or slow degrades to local state, loudly, never to failed
  calls.** The first failed round trip of an outage logs one warning; the
  store then refuses operations at once (:class:`StoreUnavailable`) for
  ``retry_interval`` seconds, so that an outage does not cost every call a
  connect timeout; after that, the next operation probes, and the first
  success logs that the store is back. Nothing retries in a loop.

:class:`RecordLog` is the structure the semantic cache shares its entries
through; it is generic (a bounded, ordered log of expiring records that each
reader pulls from incrementally) and lives here with the other shared state.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import clock as _clock

__all__ = ["RedisStore", "RecordLog", "Record", "StoreUnavailable"]

logger = logging.getLogger("resilient.stores")

T = TypeVar("T")

_SCHEMES = ("redis://", "rediss://", "unix://")


class StoreUnavailable(Exception):
    """The shared store could not be used; the caller falls back to local state.

    ``failed`` is true when a round trip was attempted and failed now, false
    when the store is still cooling down after an earlier failure and nothing
    was attempted.
    """

    def __init__(self, message: str, *, failed: bool) -> None:
        super().__init__(message)
        self.failed = failed


class RedisStore:
    """One Redis connection and key prefix that layers keep shared state under.

    ``connection`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (a client
    is built with ``timeout`` seconds for connecting and for each reply, and no
    retries of its own: the store decides when to try again), or an existing
    ``redis.Redis`` client, used as configured (it must return bytes, i.e. not
    ``decode_responses=True``). ``prefix`` namespaces every key, so several
    applications can share one Redis; stores with the same prefix on the same
    Redis see the same state.
    """

    def __init__(self, connection: Any, *, prefix: str = "resilient", timeout: float = 0.5,
                 retry_interval: float = 2.0, clock: _clock.Clock | None = None) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("a Redis store needs the redis package: pip install 'resilient[redis]'") from exc
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty str, got {prefix!r}")
        for name, value in (("timeout", timeout), ("retry_interval", retry_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(connection, str):
            if not connection.startswith(_SCHEMES):
                # The value itself is not shown: a URL may carry a password.
                raise ValueError(
                    "store must be a redis://, rediss:// or unix:// URL, a redis.Redis client or a RedisStore"
                )
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(connection, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0))
        elif isinstance(connection, redis.Redis):
            client = connection
        else:
            raise ValueError(
                f"store must be a redis://, rediss:// or unix:// URL, a redis.Redis client or a RedisStore; "
                f"got {type(connection).__name__}"
            )
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("store: the redis.Redis client must return bytes (decode_responses=False)")
        self.client = client
        self.prefix = prefix
        self.retry_interval = float(retry_interval)
        self._clock = clock
        self._errors_caught = (redis.RedisError, OSError)
        self._lock = threading.Lock()
        self._down_until: float | None = None
        self.errors = 0

    def key(self, *parts: str) -> str:
        """The full Redis key for ``parts`` under this store's prefix."""
        return ":".join((self.prefix, *parts))

    def log(self, name: str) -> RecordLog:
        """A :class:`RecordLog` named ``name``; each call returns a new reader of the same log."""
        return RecordLog(self, name)

    @property
    def available(self) -> bool:
        """False while the store cools down after a failed round trip."""
        return self._down_until is None or self._now() >= self._down_until

    def run(self, operation: Callable[[Any], T]) -> T:
        """``operation(client)``: one round trip, or :class:`StoreUnavailable` (logged once per outage)."""
        down_until = self._down_until
        if down_until is not None and self._now() < down_until:
            raise StoreUnavailable(f"{self!r} is unavailable; next attempt in {down_until - self._now():.1f} s",
                                   failed=False)
        try:
            result = operation(self.client)
        except self._errors_caught as exc:
            with self._lock:
                first = self._down_until is None
                self._down_until = self._now() + self.retry_interval
                self.errors += 1
            if first:
                logger.warning("%r unreachable (%s: %s); using local state, next attempt in %g s",
                               self, type(exc).__name__, exc, self.retry_interval)
            raise StoreUnavailable(f"{self!r}: {type(exc).__name__}: {exc}", failed=True) from exc
        if self._down_until is not None:
            with self._lock:
                was_down, self._down_until = self._down_until is not None, None
            if was_down:
                logger.warning("%r answers again; shared state resumed", self)
        return result

    def _now(self) -> float:
        return _clock.resolve(self._clock).monotonic()

    def __repr__(self) -> str:
        # Where, never who: a password in the URL or the client stays out of logs.
        kwargs = self.client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        return f"RedisStore({where!r}, prefix={self.prefix!r})"


@dataclass(frozen=True)
class Record:
    """One record read from a :class:`RecordLog`: its sequence number, time left (None: no expiry), fields.

    ``error`` is set (and ``fields`` empty) for a record that is not one at all (a key of another type
    where a record should be, a field name that is not UTF-8): the reader reports it rather than
    dropping it silently, and the consumer counts it as rejected.
    """

    seq: int
    ttl: float | None
    fields: dict[str, bytes]
    error: str | None = None


# Lua: Redis runs a script alone, so each is one atomic round trip. Record keys
# are read from the index inside the scripts: a single Redis (or a Redis
# Cluster prefix with a hash tag, "{app}") is assumed.

_APPEND = """
-- KEYS: index, sequence, generation, record.
-- ARGV: ttl ms (0: none), keep, fresh generation, the highest sequence number the caller has seen and
-- in which generation, field, value, ...
if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 5: TIME before writes
local gen = redis.call('GET', KEYS[3])
if not gen then
  gen = ARGV[3]
  redis.call('SET', KEYS[3], gen)
end
local seq = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if seq < floor then
  seq = floor
  redis.call('SET', KEYS[2], string.format('%.0f', seq))
end
if gen == ARGV[5] and seq <= tonumber(ARGV[4]) then
  -- the caller has seen this number in this generation: the log went back (restored from an older snapshot)
  gen = ARGV[3]
  redis.call('SET', KEYS[3], gen)
end
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], unpack(ARGV, 6))
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[4], ttl) end
redis.call('ZADD', KEYS[1], string.format('%.0f', seq), KEYS[4])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if extra > 0 then
  for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) do redis.call('DEL', key) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
end
return {seq, gen}
"""

_READ = """
-- KEYS: index, generation, sequence. ARGV: after seq, count, reader's generation, fresh generation.
local gen = redis.call('GET', KEYS[2])
if not gen then
  gen = ARGV[4]
  redis.call('SET', KEYS[2], gen)
end
local after = ARGV[1]
if gen ~= ARGV[3] then
  after = '0'
elseif tonumber(redis.call('GET', KEYS[3]) or '0') < tonumber(after) then
  -- the sequence is behind this reader's cursor: the log went back (restored from an older snapshot)
  gen = ARGV[4]
  redis.call('SET', KEYS[2], gen)
  after = '0'
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local last = after
local rows = {}
local odd = {}
for i = 1, #members, 2 do
  last = members[i + 1]
  local kind = redis.call('TYPE', members[i])['ok']
  if kind == 'hash' then
    local row = redis.call('HGETALL', members[i])
    table.insert(row, 1, redis.call('PTTL', members[i]))
    table.insert(row, 1, last)
    rows[#rows + 1] = row
  elseif kind ~= 'none' then  -- 'none': expired, nothing to report
    odd[#odd + 1] = {last, kind}
  end
end
return {gen, last, #members / 2, rows, odd}
"""

_CLEAR = """
-- KEYS: index, generation. ARGV: fresh generation.
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, key in ipairs(members) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1])
return #members
"""


class RecordLog:
    """A bounded, ordered log of expiring records in Redis, pulled incrementally by each reader.

    A record is a Redis hash with the record's own Redis TTL; an index (a
    sorted set by sequence number) orders the records and is trimmed to the
    newest ``keep`` on every append, deleting the trimmed records, so Redis
    holds at most ``keep`` records per log whatever their TTL. Appending a
    record id that exists replaces it and moves it to the end.

    Each reader keeps a cursor (the last sequence number it has seen) and
    pulls only what is newer, one round trip per :meth:`read`. Records its
    own :meth:`append` wrote are not handed back to it. A *generation* token
    changes when the log is cleared (or when Redis lost the log, e.g. restarted
    empty): a reader that sees a new generation is told to reset (drop what it
    pulled) and reads again from the start. A key in the index that is not a
    record (not a hash) or a record whose field names are not UTF-8 comes back
    as a :class:`Record` with ``error`` set, and the rest of the read is kept.

    **A log that went back.** Redis restarted from an older snapshot (or a
    failover to a lagging replica) keeps the generation but rolls the sequence
    back, so new records would get numbers readers have already passed and
    never be pulled. Three checks, all in the scripts, guard against that:

    * sequence numbers are at least Redis's clock in milliseconds
      (``max(previous + 1, TIME)``), so a record written after a restart gets a
      number above any issued before the crash, unless more than one append per
      millisecond had pushed the numbers ahead of the clock by more than the
      restart took;
    * a read whose cursor is above the log's sequence starts a new generation
      (every reader resets and pulls again from the start);
    * an append whose number is one its writer has already seen (read or
      written) in the current generation starts a new generation too.
    """

    def __init__(self, store: RedisStore, name: str) -> None:
        self.store = store
        self.name = name
        base = store.key(name)
        self._index, self._sequence, self._generation_key = f"{base}:index", f"{base}:seq", f"{base}:generation"
        self._record_prefix = f"{base}:record:"
        client = store.client
        self._append, self._read, self._clear = (client.register_script(s) for s in (_APPEND, _READ, _CLEAR))
        self._lock = threading.Lock()
        self.cursor = 0
        self.generation: bytes | None = None
        self._own: set[int] = set()
        self._seen: tuple[bytes, int] = (b"", 0)  # the highest sequence number read or written, in which generation

    def append(self, record_id: str, fields: dict[str, str | bytes], ttl: float | None, keep: int) -> int:
        """Write (or replace) a record expiring after ``ttl`` seconds, trim the log to ``keep``; its sequence number."""
        ttl_ms = 0 if ttl is None else max(1, math.ceil(ttl * 1000))
        with self._lock:
            seen_generation, seen = self._seen
        args: list[Any] = [ttl_ms, max(1, int(keep)), _token(), seen, seen_generation]
        for field, value in fields.items():
            args += (field, value)
        keys = [self._index, self._sequence, self._generation_key, self._record_prefix + record_id]
        seq, generation = self.store.run(lambda client: self._append(keys=keys, args=args, client=client))
        seq = int(seq)
        with self._lock:
            self._own.add(seq)
            self._saw(generation, seq)
        return seq

    def _saw(self, generation: bytes, seq: int) -> None:
        """Note ``seq`` as read or written in ``generation`` (under the lock)."""
        seen_generation, seen = self._seen
        self._seen = (generation, max(seen, seq) if generation == seen_generation else seq)

    def read(self, count: int) -> tuple[bool, list[Record], bool]:
        """(reset, new records in order, more waiting): one round trip for at most ``count`` records.

        A record that is not a valid one comes back with ``error`` set (see :class:`Record`).
        """
        with self._lock:
            after, mine = self.cursor, self.generation
        args: list[Any] = [after, count, mine or b"", _token()]
        gen, last, scanned, rows, odd = self.store.run(
            lambda client: self._read(keys=[self._index, self._generation_key, self._sequence], args=args,
                                      client=client)
        )
        found = [_record(row) for row in rows]
        found += [Record(int(seq), None, {}, f"not a record: a Redis {kind.decode(errors='replace')}, not a hash")
                  for seq, kind in odd]
        found.sort(key=lambda record: record.seq)
        with self._lock:
            reset = mine is not None and gen != mine
            if reset:  # the reader drops what it holds, its own records included: hand them back
                self._own.clear()
            self.generation = gen
            self.cursor = int(last)
            self._saw(gen, self.cursor)
            records = [record for record in found if record.seq not in self._own]
            self._own = {s for s in self._own if s > self.cursor}
        return reset, records, int(scanned) >= count

    def clear(self) -> int:
        """Delete every record and start a new generation (every reader resets); how many were deleted."""
        token = _token()
        deleted = int(self.store.run(
            lambda client: self._clear(keys=[self._index, self._generation_key], args=[token], client=client)
        ))
        with self._lock:
            self.generation = token.encode()
            self._own.clear()
        return deleted

    def __repr__(self) -> str:
        return f"RecordLog({self.name!r}, {self.store!r}, cursor={self.cursor})"


def _record(row: list[Any]) -> Record:
    """A :class:`Record` from a row of the read script: sequence number, PTTL in ms, field, value, ..."""
    seq, ttl_ms = int(row[0]), int(row[1])
    ttl = None if ttl_ms < 0 else ttl_ms / 1000
    try:
        fields = {row[i].decode(): row[i + 1] for i in range(2, len(row) - 1, 2)}
    except UnicodeDecodeError:
        return Record(seq, ttl, {}, "a field name is not UTF-8")
    return Record(seq, ttl, fields)


def _token() -> str:
    return uuid.uuid4().hex
