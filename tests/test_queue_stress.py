"""64 threads x 2,000 calls through @queued + @multiplex: every call accounted for, every counter adds up."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

from resilient import QueueFullError, RateLimitError, ServerError
from resilient.multiplex import KeyPool
from resilient.queue import RequestQueue, queued
from resilient.priorities import priority

THREADS = 64
CALLS = 2_000
KEYS = [f"sk-stress-{n:02d}-0123456789abcdef{n:04d}" for n in range(4)]


def test_every_call_ends_with_a_result_or_a_named_error_and_counters_add_up() -> None:
    queue = RequestQueue(max_concurrent=8, queue_size=40)
    pool = KeyPool(KEYS, strategy="least-loaded")
    sequence = itertools.count()
    provider_errors = Counter()
    errors_lock = threading.Lock()

    @queued(queue=queue)
    @pool
    def ask(n: int, *, api_key: str) -> int:
        k = next(sequence)
        if k % 13 == 0:
            with errors_lock:
                provider_errors["server"] += 1
            raise ServerError("boom", status=500)
        if k % 7 == 0:
            with errors_lock:
                provider_errors["rate_limit"] += 1
            raise RateLimitError("slow", status=429, retry_after=0.0)
        return n

    start = threading.Barrier(THREADS)
    outcomes: list[Counter] = []

    def worker(index: int) -> None:
        tally = Counter()
        start.wait()
        with priority(("high", "normal", "low")[index % 3]):
            for n in range(CALLS):
                try:
                    assert ask(n) == n
                    tally["result"] += 1
                except QueueFullError:
                    tally["queue_full"] += 1
                except RateLimitError:
                    tally["rate_limit"] += 1
                except ServerError:
                    tally["server"] += 1
        outcomes.append(tally)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)

    total = sum(outcomes, Counter())
    assert sum(total.values()) == THREADS * CALLS

    q = queue.stats()
    assert (q["active"], q["size"], sum(q["waiting"].values())) == (0, 0, 0)
    assert q["admitted"] + q["rejected"] == THREADS * CALLS
    assert q["rejected"] == total["queue_full"]
    assert q["completed"] == q["admitted"]
    assert q["timed_out"] == q["cancelled"] == 0

    p = pool.stats()
    keys = p["keys"].values()
    assert p["in_flight"] == 0
    assert sum(k["requests"] for k in keys) == p["attempts"] == next(sequence)
    assert sum(k["successes"] for k in keys) == total["result"]
    assert sum(k["failures"] for k in keys) == provider_errors["server"] + provider_errors["rate_limit"]
    assert total["server"] == provider_errors["server"]
    assert p["failovers"] == provider_errors["rate_limit"]
    assert total["result"] + total["server"] + total["rate_limit"] == q["admitted"]
