"""@semantic_cache with store=: several processes share one cache through Redis.

Two ``SemanticCache`` objects on the same store prefix and name stand in for
two processes (each has its own dict, matrices and log cursor, exactly as a
process would); one test runs a real second process. Everything runs against
the real Redis on 127.0.0.1:6379, each test under its own key prefix, deleted
afterwards; the outage tests run a private redis-server they stop and start.
Vectors come from ``WordsEmbedder``, a deterministic bag of words: sharing
does not depend on what vectors mean.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import pickle
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import redis

from resilient.clock import FakeClock
from resilient.semantic_cache import SemanticCache, semantic_cache
from resilient.stores import RedisStore, StoreUnavailable
from semantic_helpers import WordsEmbedder, counting
from waiting import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def prefix():
    """A key prefix of this test's own, and every key under it deleted afterwards."""
    name = f"test-sc-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def client():
    c = redis.Redis.from_url(REDIS_URL)
    yield c
    c.close()


def pair(prefix: str, **kwargs):
    """Two caches sharing one cache in Redis, as two processes would (separate stores, separate connections)."""
    kwargs.setdefault("embedder", WordsEmbedder())
    kwargs.setdefault("guard", False)
    return tuple(SemanticCache(store=RedisStore(REDIS_URL, prefix=prefix), name="answers", **kwargs) for _ in "ab")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- sharing


def test_an_answer_stored_by_one_process_is_an_exact_hit_in_another(prefix):
    a, b = pair(prefix)
    ask_a, calls_a = counting(a, " from a")
    ask_b, calls_b = counting(b, " from b")
    assert ask_a("What is the capital of France?")["text"] == "answer from a to What is the capital of France?"
    assert ask_b("what is the capital of   france")["text"] == "answer from a to What is the capital of France?"
    assert (calls_a, calls_b) == (["What is the capital of France?"], [])
    assert a.stats()["store_pushed"] == 1 and a.stats()["store_pulled"] == 0
    assert b.stats()["store_pulled"] == 1 and b.stats()["exact_hits"] == 1 and b.stats()["saved_tokens"] == 30


def test_an_answer_stored_by_one_process_is_a_semantic_hit_in_another(prefix):
    a, b = pair(prefix, threshold=0.8)
    ask_a, calls_a = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("what is the capital city of France")
    assert ask_b("what is the capital city of France today")["text"] == "answer to what is the capital city of France"
    assert calls_b == []
    assert b.stats()["semantic_hits"] == 1


def test_partitions_stay_apart_across_processes(prefix):
    a, b = pair(prefix)
    ask_a, _ = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("What is the capital of France?", model="a")
    ask_b("What is the capital of France?", model="b")
    ask_b("What is the capital of France?", model="a", temperature=1.0)
    assert len(calls_b) == 2
    ask_b("What is the capital of France?", model="a")
    assert len(calls_b) == 2


def test_a_process_does_not_pull_back_its_own_answers(prefix):
    a, _ = pair(prefix)
    ask_a, _ = counting(a)
    ask_a("Who wrote Hamlet?")
    ask_a("Who painted the Mona Lisa?")
    assert a.sync() == 0
    assert a.stats()["store_pulled"] == 0 and len(a) == 2


def test_sync_pulls_everything_at_once(prefix):
    a, b = pair(prefix)
    ask_a, _ = counting(a)
    for i in range(300):  # more than one pull batch; a partition each, so none is a hit
        ask_a("question", number=i)
    assert b.sync() == 300
    assert len(b) == 300 and b.sync() == 0


def test_concurrent_misses_in_threads_share_every_answer(prefix):
    a, b = pair(prefix)
    ask_a, calls_a = counting(a)
    ask_b, calls_b = counting(b)
    questions = [("question", i) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda q: ask_a(q[0], number=q[1]), questions))
        answers = list(pool.map(lambda q: ask_b(q[0], number=q[1]), questions))
    assert len(calls_a) == 40 and calls_b == []
    assert b.stats()["exact_hits"] == 40
    assert answers == [{"text": "answer to question", "usage": {"input_tokens": 10, "output_tokens": 20}}] * 40


def test_async_functions_share_too(prefix):
    a, b = pair(prefix)
    calls: list[str] = []

    async def ask(prompt):
        calls.append(prompt)
        return {"text": prompt.upper()}

    ask_a, ask_b = a(ask), b(ask)

    async def main():
        first = await ask_a("shout this")
        second = await ask_b("shout this")
        return first, second

    assert asyncio.run(main()) == ({"text": "SHOUT THIS"}, {"text": "SHOUT THIS"})
    assert calls == ["shout this"]


async def test_waiters_get_the_answer_when_the_first_caller_is_cancelled_while_storing_it(prefix):
    """The answer exists once the call returned: its waiters get it even if its caller is gone before it is stored."""
    a, _ = pair(prefix)
    calls: list[str] = []
    release = asyncio.Event()

    @a
    async def ask(prompt):
        calls.append(prompt)
        await release.wait()
        asyncio.get_running_loop().call_soon(leader.cancel)  # runs while the answer is pushed to Redis
        return {"text": "answer"}

    leader = asyncio.create_task(ask("hello"))
    waiter = asyncio.create_task(ask("hello"))
    for _ in range(2000):  # until the waiter has joined the leader's call
        if a.stats()["coalesced"]:
            break
        await asyncio.sleep(0.001)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await asyncio.wait_for(waiter, 2) == {"text": "answer"}
    assert calls == ["hello"] and a._flights == {}


def test_one_cache_object_decorating_two_functions_shares_between_them_and_across(prefix):
    a, b = pair(prefix)
    ask_a, calls_a = counting(a)
    again_a, calls_again = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    again_a("Who wrote Hamlet?")
    ask_b("Who wrote Hamlet?")
    assert (len(calls_a), len(calls_again), len(calls_b)) == (1, 0, 0)


def who_wrote(prompt):  # module-level functions: their qualified names are their own
    return f"who_wrote answers {prompt}"


def who_painted(prompt):
    return f"who_painted answers {prompt}"


class Bot:
    def __init__(self, model):
        self.model = model

    def ask(self, prompt):  # bound, it shares the name "Bot.ask" with every other bot's
        return f"{self.model} answers {prompt}"


def test_decorator_names_the_shared_cache_after_the_function(prefix, client):
    store = RedisStore(REDIS_URL, prefix=prefix)
    decorate = semantic_cache(store=store, embedder=WordsEmbedder(), guard=False)
    first, second_worker, other = decorate(who_wrote), decorate(who_wrote), decorate(who_painted)
    assert first("Who wrote Hamlet?") == "who_wrote answers Who wrote Hamlet?"
    assert second_worker("Who wrote Hamlet?") == "who_wrote answers Who wrote Hamlet?"
    assert second_worker.stats()["store_pulled"] == 1
    assert other("Who wrote Hamlet?") == "who_painted answers Who wrote Hamlet?"
    assert client.exists(f"{prefix}:semantic_cache:{who_wrote.__module__}.who_wrote:index")


def test_decorator_asks_for_a_name_for_a_function_without_one_of_its_own(prefix):
    store = RedisStore(REDIS_URL, prefix=prefix)

    def make_ask(model, **named):
        @semantic_cache(store=store, embedder=WordsEmbedder(), guard=False, **named)
        def ask(prompt):
            return f"{model} says hi"
        return ask

    with pytest.raises(ValueError, match=r"needs name= for .*make_ask.<locals>.ask"):
        make_ask("small-model")
    for unnamed in (lambda prompt: prompt, functools.partial(who_wrote), Bot("small-model").ask):
        with pytest.raises(ValueError, match="needs name="):
            semantic_cache(store=store, embedder=WordsEmbedder())(unnamed)
    small, large = make_ask("small-model", name="ask:small"), make_ask("large-model", name="ask:large")
    assert small("Hello there") == "small-model says hi"
    assert large("Hello there") == "large-model says hi"


def test_a_cache_sharing_a_store_needs_a_name(prefix):
    store = RedisStore(REDIS_URL, prefix=prefix)
    with pytest.raises(ValueError, match="needs name="):
        SemanticCache(store=store, embedder=WordsEmbedder())
    with pytest.raises(ValueError, match="name must be"):
        SemanticCache(store=store, name="", embedder=WordsEmbedder())


# --------------------------------------------------------------------------- what is stored


def test_redis_holds_the_entry_with_its_ttl_and_no_argument(prefix, client):
    a, _ = pair(prefix, ttl=60)
    ask_a, _ = counting(a)
    secret = "sk-live-" + "SECRET0123456789"
    ask_a("Who wrote Hamlet?", api_key=secret, model="m1")
    (record,) = [k for k in client.scan_iter(match=f"{prefix}:*") if b":record:" in k]
    fields = client.hgetall(record)
    assert sorted(fields) == [b"n", b"p", b"r", b"s", b"t", b"v", b"x"]
    assert fields[b"n"] == b"who wrote hamlet" and fields[b"t"] == b"Who wrote Hamlet?" and fields[b"s"] == b"0"
    assert json.loads(fields[b"r"]) == {
        "text": "answer to Who wrote Hamlet?", "usage": {"input_tokens": 10, "output_tokens": 20}
    }
    assert len(fields[b"x"]) == 64 * 4 and len(fields[b"p"]) == 24
    assert 59_000 < client.pttl(record) <= 60_000
    everything = b"".join(k + b"".join(client.hgetall(k).values()) if client.type(k) == b"hash" else k
                          for k in client.scan_iter(match=f"{prefix}:*"))
    assert b"SECRET" not in everything and b"m1" not in everything


def test_a_partition_given_as_a_string_is_stored_as_a_hash(prefix, client):
    a, b = pair(prefix, partition=lambda prompt, **kw: kw["model"])
    ask_a, _ = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?", model="private-model-name")
    ask_b("Who wrote Hamlet?", model="private-model-name")
    assert calls_b == []
    (record,) = [k for k in client.scan_iter(match=f"{prefix}:*") if b":record:" in k]
    assert b"private-model-name" not in b"".join(client.hgetall(record).values())


def test_entries_expire_on_the_toolkit_clock_in_every_process(prefix):
    clock = FakeClock()
    a, b = pair(prefix, ttl=60, clock=clock)
    ask_a, calls_a = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    ask_b("Who wrote Hamlet?")
    clock.advance(59)
    ask_a("Who wrote Hamlet?")
    ask_b("Who wrote Hamlet?")
    assert (len(calls_a), len(calls_b)) == (1, 0)
    clock.advance(2)
    ask_b("Who wrote Hamlet?")
    assert (len(calls_a), len(calls_b)) == (1, 1)


def test_max_size_bounds_what_redis_holds(prefix, client):
    a, b = pair(prefix, max_size=2)
    ask_a, _ = counting(a)
    for question in ("one?", "two?", "three?"):
        ask_a(question)
    records = [k for k in client.scan_iter(match=f"{prefix}:*") if b":record:" in k]
    assert len(records) == 2
    assert b.sync() == 2
    assert sorted(e.text for e in b._entries.live()) == ["three?", "two?"]


def test_streams_are_shared_and_replayed_chunk_by_chunk(prefix):
    a, b = pair(prefix)
    calls: list[str] = []

    def stream(prompt):
        calls.append(prompt)
        yield {"text": "Hel"}
        yield {"text": "lo", "done": True, "usage": {"input_tokens": 3, "output_tokens": 2}}

    stream_a, stream_b = a(stream), b(stream)
    chunks = list(stream_a("Say hello"))
    assert list(stream_b("Say hello")) == chunks
    assert calls == ["Say hello"]
    assert b.stats()["saved_tokens"] == 5


def test_a_stream_cut_short_is_not_shared(prefix):
    a, b = pair(prefix)

    def stream(prompt):
        yield "partial"
        raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        list(a(stream)("Say hello"))
    assert a.stats()["store_pushed"] == 0 and b.sync() == 0


def test_a_result_that_is_not_json_stays_local_and_is_counted(prefix):
    a, b = pair(prefix)
    calls: list[str] = []

    class Answer:  # an SDK object, say
        text = "42"

    def ask(prompt):
        calls.append(prompt)
        return Answer() if "object" in prompt else ("a", "tuple")

    ask_a, ask_b = a(ask), b(ask)
    ask_a("an object please")
    ask_a("a tuple please")
    ask_a("an object please")
    assert len(calls) == 2  # still cached here
    ask_b("an object please")
    ask_b("a tuple please")
    assert len(calls) == 4
    assert a.stats()["store_unshareable"] == 2 and a.stats()["store_pushed"] == 0


def test_errors_are_never_stored(prefix, client):
    a, b = pair(prefix)
    calls: list[str] = []

    def ask(prompt):
        calls.append(prompt)
        raise TimeoutError("provider timed out")

    for fn in (a(ask), b(ask)):
        with pytest.raises(TimeoutError):
            fn("Who wrote Hamlet?")
    assert len(calls) == 2
    assert not [k for k in client.scan_iter(match=f"{prefix}:*") if b":record:" in k]


def test_a_record_that_is_not_a_valid_entry_is_rejected_never_unpickled(prefix):
    a, b = pair(prefix)
    ask_a, _ = counting(a)
    ask_a("Who wrote Hamlet?")

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    writer = RedisStore(REDIS_URL, prefix=prefix).log("semantic_cache:answers")
    good = {"v": "2", "p": "", "n": "q", "t": "q", "s": "0", "r": "{}", "x": b""}
    # "v": "1" is the former format, whose keys did not keep streams apart from plain calls
    for bad in ({"r": pickle.dumps(Boom())}, {"x": b"\x00" * 5}, {"x": np.array([np.nan], np.float32).tobytes()},
                {"v": "1"}, {"s": "1", "r": '"not a list"'},
                {"x": np.full(64, 1.0, np.float32).tobytes()},  # finite, right size, but of length 8: wins every match
                {"r": "[" * 100_000 + "]" * 100_000}):  # JSON too deep for the parser (RecursionError)
        writer.append(uuid.uuid4().hex, {**good, "n": uuid.uuid4().hex, **bad}, 60, 100)
    assert b.sync() == 1
    assert b.stats()["store_rejected"] == 7


def test_a_record_with_a_field_name_that_is_not_utf8_is_rejected_and_the_rest_of_the_pull_kept(prefix, client):
    a, b = pair(prefix)
    ask_a, _ = counting(a)
    ask_b, calls_b = counting(b)
    for question in ("Who wrote Hamlet?", "Who painted the Mona Lisa?", "Who discovered penicillin?"):
        ask_a(question)
    (record,) = [k for k in client.scan_iter(match=f"{prefix}:*:record:*") if client.hget(k, "t") == b"Who painted the Mona Lisa?"]
    client.hset(record, b"\xff\xfe", b"x")  # another version, a bug, a person with redis-cli
    assert ask_b("Something else entirely")["text"] == "answer to Something else entirely"  # the user's call works
    assert (b.stats()["store_pulled"], b.stats()["store_rejected"]) == (2, 1)
    assert ask_b("Who wrote Hamlet?")["text"] == "answer to Who wrote Hamlet?"  # pulled in the same batch: kept
    assert ask_b("Who discovered penicillin?")["text"] == "answer to Who discovered penicillin?"
    assert calls_b == ["Something else entirely"]


def test_a_key_that_is_not_a_record_is_rejected_and_sharing_goes_on(prefix, client, caplog):
    a, b = pair(prefix)
    ask_a, _ = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    (record,) = [k for k in client.scan_iter(match=f"{prefix}:*:record:*")]
    client.delete(record)
    client.set(record, b"not a hash")  # a stray string where a record should be: WRONGTYPE for HGETALL
    ask_a("Who painted the Mona Lisa?")
    with caplog.at_level(logging.WARNING):
        assert ask_b("Who painted the Mona Lisa?")["text"] == "answer to Who painted the Mona Lisa?"
        ask_a("Who discovered penicillin?")
        assert ask_b("Who discovered penicillin?")["text"] == "answer to Who discovered penicillin?"  # pulls go on
    assert calls_b == []
    stats = b.stats()
    assert (stats["store_pulled"], stats["store_rejected"], stats["store_errors"]) == (2, 1, 0)
    assert "unreachable" not in caplog.text and "rejected 1 shared records" in caplog.text


# --------------------------------------------------------------------------- a log restored from an older snapshot


def snapshot(client, prefix):
    """What a Redis snapshot (RDB) would hold of this test's keys now."""
    return {k: client.dump(k) for k in client.scan_iter(match=f"{prefix}:*")}


def restore(client, prefix, saved):
    """Redis restarted from ``saved``: whatever was written after it is lost, generation key included as it was."""
    for k in client.scan_iter(match=f"{prefix}:*"):
        client.delete(k)
    for k, blob in saved.items():
        client.restore(k, 0, blob)


def fields(records):
    return [r.fields["i"].decode() for r in records]


def rolled_back_log(prefix, client, first_seq=None):
    """A writer and two readers that read six records, the log then restored to when it held three."""
    store = RedisStore(REDIS_URL, prefix=prefix)
    if first_seq is not None:
        client.set(f"{prefix}:L:seq", first_seq)
    writer, reader, other = store.log("L"), store.log("L"), store.log("L")
    for i in range(3):
        writer.append(f"r{i}", {"i": f"r{i}"}, ttl=None, keep=100)
    saved = snapshot(client, prefix)
    for i in range(3, 6):
        writer.append(f"r{i}", {"i": f"r{i}"}, ttl=None, keep=100)
    for log in (reader, other):
        reset, records, _ = log.read(100)
        assert not reset and fields(records) == [f"r{i}" for i in range(6)]
    restore(client, prefix, saved)
    return writer, reader, other


def test_a_reader_ahead_of_a_log_gone_back_starts_a_new_generation(prefix, client):
    writer, reader, other = rolled_back_log(prefix, client)
    reset, records, _ = reader.read(100)
    assert reset and fields(records) == ["r0", "r1", "r2"]  # starts over from what the log holds
    writer.append("new", {"i": "new"}, ttl=None, keep=100)
    assert fields(reader.read(100)[1]) == ["new"]
    reset, records, _ = other.read(100)  # every other reader starts over too: the generation changed
    assert reset and fields(records) == ["r0", "r1", "r2", "new"]


def test_records_written_after_a_rollback_by_a_process_that_had_seen_more_are_pulled(prefix, client):
    # Numbers far ahead of Redis's clock, so only the writer's own knowledge can tell the log went back.
    writer, reader, _ = rolled_back_log(prefix, client, first_seq=10**13)
    writer.append("new0", {"i": "new0"}, ttl=None, keep=100)  # a number the writer has seen: new generation
    generation = client.get(f"{prefix}:L:generation")
    for i in range(1, 4):
        writer.append(f"new{i}", {"i": f"new{i}"}, ttl=None, keep=100)
    assert client.get(f"{prefix}:L:generation") == generation  # one new generation, not one per append
    reset, records, _ = reader.read(100)
    assert reset and fields(records) == ["r0", "r1", "r2", "new0", "new1", "new2", "new3"]


def test_records_written_after_a_rollback_by_a_fresh_process_get_numbers_above_the_old_ones(prefix, client):
    writer, reader, _ = rolled_back_log(prefix, client)
    # Sequence numbers are at least Redis's clock in ms: once it has passed the last number handed out
    # (a restart takes far longer than the millisecond this may wait), new numbers are above it.
    wait_until(lambda: int(client.time()[0]) * 1000 + int(client.time()[1]) // 1000 > reader.cursor)
    fresh = RedisStore(REDIS_URL, prefix=prefix).log("L")  # a process started after the restart: knows nothing
    for i in range(4):
        fresh.append(f"new{i}", {"i": f"new{i}"}, ttl=None, keep=100)
    reset, records, _ = reader.read(100)
    assert not reset and fields(records) == ["new0", "new1", "new2", "new3"]


def test_entries_of_another_vector_size_are_dropped_with_a_warning(prefix, caplog):
    a, _ = pair(prefix)
    (b,) = [SemanticCache(store=RedisStore(REDIS_URL, prefix=prefix), name="answers", embedder=WordsEmbedder(32),
                          guard=False)]
    ask_a, _ = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    with caplog.at_level(logging.WARNING, logger="resilient.semantic_cache"):
        ask_b("Who painted the Mona Lisa?")  # pulls a's 64-d entry, then learns its own size: 32
        ask_b("Who discovered penicillin?")  # searches a 32-d matrix: no crash
    assert len(calls_b) == 2
    assert b.stats()["store_rejected"] == 1
    assert "same embedder" in caplog.text


# --------------------------------------------------------------------------- clear


def test_clear_empties_redis_and_every_process_at_its_next_miss(prefix, client):
    a, b = pair(prefix)
    ask_a, calls_a = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    ask_b("Who wrote Hamlet?")
    b.clear()
    assert not [k for k in client.scan_iter(match=f"{prefix}:*") if b":record:" in k]
    ask_a("Something else entirely")  # a miss: a learns of the clear and drops its copy
    ask_a("Who wrote Hamlet?")
    assert len(calls_a) == 3 and calls_b == []


# --------------------------------------------------------------------------- Redis down


def test_unreachable_redis_degrades_to_the_local_cache_loudly_and_once(prefix, caplog):
    clock = FakeClock()
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, clock=clock, retry_interval=5)
    cache = SemanticCache(store=store, name="answers", embedder=WordsEmbedder(), guard=False, clock=clock)
    ask, calls = counting(cache)
    with caplog.at_level(logging.WARNING, logger="resilient.stores"):
        assert ask("Who wrote Hamlet?")["text"] == "answer to Who wrote Hamlet?"  # pull fails; push skipped
        ask("Who wrote Hamlet?")
        ask("Who painted the Mona Lisa?")
        clock.advance(5)
        ask("Who discovered penicillin?")  # one more attempt, fails again: same outage, no new warning
    assert len(calls) == 3 and len(cache) == 3
    assert cache.stats()["store_errors"] == 2 and cache.stats()["store_pushed"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "using local state" in warnings[0]
    with pytest.raises(StoreUnavailable):
        cache.clear()
    assert len(cache) == 0


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, which the test can stop and start again on the same port."""
    port = free_port()
    procs: list[subprocess.Popen] = []

    def start():
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                                 "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        procs.append(proc)
        probe = redis.Redis(port=port)
        for _ in range(200):
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def stop():
        procs[-1].terminate()
        procs[-1].wait(5)

    start()
    yield port, start, stop
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)


def test_the_cache_uses_redis_again_once_it_is_back(prefix, private_redis, caplog):
    port, start, stop = private_redis
    clock = FakeClock()
    a, b = (SemanticCache(store=RedisStore(f"redis://127.0.0.1:{port}/0", prefix=prefix, clock=clock),
                          name="answers", embedder=WordsEmbedder(), guard=False, clock=clock) for _ in "ab")
    ask_a, calls_a = counting(a)
    ask_b, calls_b = counting(b)
    ask_a("Who wrote Hamlet?")
    stop()
    with caplog.at_level(logging.WARNING, logger="resilient.stores"):
        ask_b("Who painted the Mona Lisa?")  # Redis down: answered, kept locally
        start()  # back, empty (as after a restart without persistence)
        ask_b("Who painted the Sistine Chapel?")  # still cooling down: nothing attempted
        clock.advance(2)
        ask_b("Who discovered penicillin?")
        ask_a("Who discovered penicillin?")
    assert b.stats()["store_errors"] == 1 and b.stats()["store_pushed"] == 1
    assert calls_a == ["Who wrote Hamlet?"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1 and sum("answers again" in m for m in messages) == 1


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("value", [42, "memcached://localhost", object()])
def test_a_bad_store_is_a_value_error_naming_the_field(value):
    with pytest.raises(ValueError, match="store"):
        SemanticCache(store=value, embedder=WordsEmbedder())
    with pytest.raises(ValueError, match="store"):
        semantic_cache(store=value, embedder=WordsEmbedder())


def test_the_error_for_a_bad_store_url_does_not_show_its_password():
    password = "hunter" + "2-very-secret"
    with pytest.raises(ValueError) as info:
        SemanticCache(store=f"memcached://:{password}@localhost", embedder=WordsEmbedder())
    assert password not in str(info.value)
    store = RedisStore(f"redis://:{password}@127.0.0.1:1/0")
    assert password not in repr(store)


def test_a_client_decoding_responses_is_refused():
    with pytest.raises(ValueError, match="decode_responses"):
        SemanticCache(store=redis.Redis(decode_responses=True), embedder=WordsEmbedder())


# --------------------------------------------------------------------------- a real second process


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[3])  # this tests folder, for the same embedder as the parent's
from semantic_helpers import WordsEmbedder
from resilient.semantic_cache import SemanticCache
from resilient.stores import RedisStore

calls = []
cache = SemanticCache(store=RedisStore(sys.argv[1], prefix=sys.argv[2]), name="answers", embedder=WordsEmbedder(), guard=False)

@cache
def ask(prompt):
    calls.append(prompt)
    return {"text": "child says " + prompt}

first = ask("Who wrote Hamlet?")
second = ask("Who painted the Mona Lisa?")
print(json.dumps({"first": first, "second": second, "calls": calls, "stats": cache.stats()}))
"""


def test_a_second_process_shares_the_cache(prefix):
    a, _ = pair(prefix)
    ask_a, calls_a = counting(a, " from parent")
    ask_a("Who wrote Hamlet?")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), REDIS_URL, prefix, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.splitlines()[-1])
    assert child["first"]["text"] == "answer from parent to Who wrote Hamlet?"
    assert child["calls"] == ["Who painted the Mona Lisa?"]
    assert child["stats"]["store_pulled"] == 1 and child["stats"]["store_pushed"] == 1
    assert ask_a("Who painted the Mona Lisa?") == {"text": "child says Who painted the Mona Lisa?"}
    assert calls_a == ["Who wrote Hamlet?"]
