"""@semantic_cache: partitions, exact and semantic paths, TTL/LRU, errors, streams, stampedes, persistence.

Semantic behaviour (paraphrase hits, near-miss vetoes) is tested with the real
all-MiniLM-L6-v2 model, loaded once for this module. Storage mechanics (TTL,
LRU, matrix bookkeeping, stampedes, persistence) use ``WordsEmbedder``, a tiny
deterministic bag-of-words embedder, because they do not depend on what the
vectors mean and must stay fast.
"""

from __future__ import annotations

import asyncio
import functools
import threading

import numpy as np
import pytest

from resilient.clock import FakeClock
from resilient.embeddings import default_embedder
from resilient.layer import describe
from resilient.semantic_cache import SemanticCache, default_partition, default_text, semantic_cache
from semantic_helpers import WordsEmbedder, counting
from waiting import await_until, wait_until


@pytest.fixture(scope="module")
def minilm():
    embedder = default_embedder()
    embedder.load()
    return embedder


def check_matrix(cache: SemanticCache) -> None:
    """Every live entry has exactly one row holding its own vector; no other rows."""
    entries = cache._entries.live()
    rows = sum(p.count for p in cache._partitions.values())
    assert rows == len(entries)
    for entry in entries:
        partition = cache._partitions[entry.key[0]]
        assert partition.items[entry.row] is entry
        np.testing.assert_allclose(partition.vector(entry.row), entry.vector, atol=1e-5 if partition.pruning else 0)


# --------------------------------------------------------------------------- keys


def test_default_text_understands_prompt_messages_and_first_string():
    assert default_text("hello") == "hello"
    assert default_text(prompt="hi", model="x") == "hi"
    assert default_text(7, "first", "second") == "first"
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What is Rust?"},
        {"role": "assistant", "content": "A language."},
        {"role": "user", "content": [{"type": "text", "text": "Is it fast?"}]},
    ]
    assert default_text(messages=messages) == "Is it fast?\n\nuser: What is Rust?\nassistant: A language."
    with pytest.raises(TypeError, match="text="):
        default_text(3, x=4)


def test_partition_ignores_the_question_and_api_keys_but_not_parameters():
    base = default_partition("q", ("q",), {"model": "a", "temperature": 0})
    assert base == default_partition("q", ("q",), {"model": "a", "temperature": 0, "api_key": "sk-abc123456789"})
    assert base != default_partition("q", ("q",), {"model": "b", "temperature": 0})
    assert base != default_partition("q", ("q",), {"model": "a", "temperature": 0.7})
    assert default_partition("q", ("q",), {"max_tokens": 5}) != default_partition("q", ("q",), {"max_tokens": 6})


def test_different_partitions_never_share_an_answer():
    ask, calls = counting(SemanticCache(embedder=WordsEmbedder(), guard=False))
    ask("What is the capital of France?", model="a")
    ask("What is the capital of France?", model="b")
    ask("What is the capital of France?", model="a", temperature=1.0)
    assert len(calls) == 3
    ask("What is the capital of France?", model="b")
    assert len(calls) == 3


def test_system_prompt_is_part_of_the_partition():
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    def chat(messages):
        calls.append(messages)
        return "ok"

    user = {"role": "user", "content": "Tell me a joke"}
    chat([{"role": "system", "content": "You are a pirate"}, user])
    chat([{"role": "system", "content": "You are a lawyer"}, user])
    chat([{"role": "system", "content": "You are a pirate"}, user])
    assert len(calls) == 2


def test_partition_holds_a_conversations_non_text_blocks_and_not_its_text_blocks():
    text = {"type": "text", "text": "Describe it", "cache_control": {"type": "ephemeral"}}
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    as_string = [{"role": "user", "content": "Describe it"}]
    as_text_block = [{"role": "user", "content": [text]}]
    with_image = [{"role": "user", "content": [text, image]}]
    assert default_text(as_text_block) == default_text(with_image) == "Describe it"
    assert default_partition("Describe it", (as_text_block,), {}) == default_partition("Describe it", (as_string,), {})
    assert default_partition("Describe it", (as_text_block,), {}) == ""
    assert default_partition("Describe it", (with_image,), {}) != ""


def image_question(block):
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"}, block]}]


@pytest.mark.parametrize("first, second", [
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
     {"type": "image_url", "image_url": {"url": "https://example.com/invoice-4711.png"}}),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "BBBB"}}),
    ({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
     {"type": "input_audio", "input_audio": {"data": "UklGRh==", "format": "wav"}}),
])
def test_calls_differing_only_in_a_non_text_block_never_share_an_answer(first, second):
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    def ask(messages, *, model):
        calls.append(messages)
        return f"answer {len(calls)}"

    assert ask(image_question(first), model="m") == "answer 1"
    assert ask(image_question(second), model="m") == "answer 2"
    assert ask(image_question(first), model="m") == "answer 1"
    assert ask.stats()["exact_hits"] == 1


def test_tool_calls_and_tool_results_are_part_of_the_partition():
    def openai(temperature):
        return [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": f"{temperature} degrees"},
        ]

    def anthropic(temperature):
        return [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {}}]},
            {"role": "user",
             "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"{temperature} degrees"}]},
        ]

    for conversation in (openai, anthropic):
        calls = []

        @SemanticCache(embedder=WordsEmbedder(), guard=False, threshold=0.5)
        def ask(messages):
            calls.append(messages)
            return f"answer {len(calls)}"

        assert ask(conversation(21)) == "answer 1"
        assert ask(conversation(12)) == "answer 2"
        assert ask(conversation(21)) == "answer 1"


def test_api_key_is_neither_in_the_key_nor_stored_nor_shown(tmp_path):
    cache = SemanticCache(embedder=WordsEmbedder())
    ask, calls = counting(cache)
    ask("Who wrote Hamlet?", api_key="sk-live-SECRET0123456789")
    ask("Who wrote Hamlet?", api_key="sk-live-OTHER98765432100")
    assert len(calls) == 1
    path = tmp_path / "cache.pkl"
    cache.save(path)
    blob = path.read_bytes() + repr(cache).encode() + repr(cache.stats()).encode() + repr(describe(ask)).encode()
    assert b"SECRET" not in blob and b"OTHER" not in blob


# --------------------------------------------------------------------------- the embedder's rows


def bad_rows(texts, *, api_key, words=WordsEmbedder()):
    """Bag-of-words rows, except: "??" -> NaN (a naive 0/0 normaliser), "twice" -> length 2, "nothing" -> zero."""
    rows = words(texts).astype(np.float64)  # float64 unit rows are fine: they are taken as float32
    for i, text in enumerate(texts):
        if text == "??":
            rows[i] = np.nan
        elif text.startswith("twice"):
            rows[i] *= 2
        elif text == "nothing":
            rows[i] = 0
    return rows


@pytest.mark.parametrize("text, message", [
    ("??", r"NaN or infinite coordinates for text 0 \(of 1\)"),
    ("twice as long", r"length 2 for text 0 .*L2-normalised"),
    ("nothing", r"length 0 for text 0"),
])
def test_a_row_that_is_not_finite_and_unit_length_is_a_clear_error_and_never_stored(text, message):
    embedder = functools.partial(bad_rows, api_key="sk-SECRET-1234")
    ask, calls = counting(SemanticCache(embedder=embedder, guard=False, threshold=0.8))
    ask("how do I reset my password please")
    with pytest.raises(ValueError, match=message) as info:
        ask(text)
    assert "functools.partial" in str(info.value) and "SECRET" not in str(info.value)  # which embedder, no key
    calls.clear()
    assert ask("please how do I reset my password")["text"] == "answer to how do I reset my password please"
    assert calls == []  # the partition still answers: nothing non-finite or overlong got into it


# --------------------------------------------------------------------------- exact path


def test_exact_match_needs_no_embedding():
    embedder = WordsEmbedder()
    ask, calls = counting(SemanticCache(embedder=embedder))
    ask("How do I sort a dict by value?")
    embedded = embedder.calls
    assert ask("  how do I sort a dict   by value ") == {"text": "answer to How do I sort a dict by value?",
                                                      "usage": {"input_tokens": 10, "output_tokens": 20}}
    assert embedder.calls == embedded
    stats = ask.stats()
    assert (stats["exact_hits"], stats["semantic_hits"], stats["misses"], len(calls)) == (1, 0, 1, 1)
    assert stats["saved_tokens"] == 30


def test_stats_count_saved_cost_when_prices_are_given():
    ask, _ = counting(SemanticCache(embedder=WordsEmbedder(), prices={"input": 3.0, "output": 15.0}))
    ask("q one")
    ask("q one")
    stats = ask.stats()
    assert stats["saved_calls"] == 1
    assert stats["saved_cost"] == pytest.approx((10 * 3.0 + 20 * 15.0) / 1e6)
    assert stats["hit_rate"] == 0.5


# --------------------------------------------------------------------------- TTL and LRU


def test_entries_expire_after_ttl_on_the_toolkit_clock():
    clock = FakeClock()
    cache = SemanticCache(embedder=WordsEmbedder(), ttl=60, clock=clock)
    ask, calls = counting(cache)
    ask("alpha beta gamma")
    clock.advance(59.9)
    ask("alpha beta gamma")
    assert len(calls) == 1
    clock.advance(0.2)
    assert len(cache) == 0
    assert cache.stats()["expirations"] == 1
    check_matrix(cache)
    ask("alpha beta gamma")
    assert len(calls) == 2


def test_lru_eviction_keeps_the_matrix_consistent():
    clock = FakeClock()
    cache = SemanticCache(embedder=WordsEmbedder(), max_size=3, ttl=100, guard=False, threshold=0.99, clock=clock)
    ask, calls = counting(cache)
    for word in ["one", "two", "three"]:
        ask(f"question {word} apple")
    ask("question one apple")  # refresh: "two" is now least recently used
    ask("question four apple")
    assert cache.stats()["evictions"] == 1
    check_matrix(cache)
    ask("question one apple")
    ask("question two apple")  # evicted, so called again
    assert calls.count("question two apple") == 2 and calls.count("question one apple") == 1
    for i in range(40):  # many evictions and expiries interleaved
        ask(f"filler {i} pear", model=f"m{i % 2}")
        if i % 7 == 0:
            clock.advance(30)
        check_matrix(cache)
    assert len(cache) <= 3


def test_a_partition_past_16k_entries_prunes_its_search_and_still_finds_every_hit():
    """From PRUNE_FROM rows a partition's search is pruned; answers, thresholds and evictions work as before."""
    from resilient.vector_index import PRUNE_FROM

    rng = np.random.default_rng(11)
    n = PRUNE_FROM + 500
    scale = 1.0 / np.arange(1, 33) ** 0.7  # anisotropic, like sentence embeddings
    vectors = (rng.standard_normal((n, 32)) * scale).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cache = SemanticCache(embedder=WordsEmbedder(), max_size=n, ttl=None, threshold=0.97, guard=False)
    for i in range(n):
        cache.store("p", f"q{i}", f"q{i}", f"answer {i}", vectors[i], stream=False)
    assert cache._partitions["p"].pruning
    for i in rng.choice(n, 50, replace=False):
        near = vectors[i] + 0.01 * rng.standard_normal(32).astype(np.float32)
        near /= np.linalg.norm(near)
        expected = int(np.argmax(vectors @ near))
        entry = cache.lookup_semantic("p", "a paraphrase", near)
        assert entry is not None and entry.value == f"answer {expected}"
    query = vectors[0] + 0.03 * rng.standard_normal(32).astype(np.float32)
    query /= np.linalg.norm(query)
    best = float(np.max(vectors @ query))
    assert 0.97 <= best < 0.999
    cache.policy.threshold = 0.999  # the policy's threshold is the search's floor, read at each lookup
    assert cache.lookup_semantic("p", "close, not enough", query) is None
    cache.policy.threshold = 0.97
    assert cache.lookup_semantic("p", "close enough", query).value == f"answer {int(np.argmax(vectors @ query))}"
    cache.policy.max_size = n - 300  # evictions move rows in the rotated matrix
    cache.store("p", "one more", "one more", "x", vectors[1], stream=False)
    check_matrix(cache)
    found = cache.lookup_semantic("p", "again", vectors[n - 1])
    assert found is not None and found.value == f"answer {n - 1}"


def test_lowering_max_size_evicts_at_once_least_recently_used_first():
    cache = SemanticCache(embedder=WordsEmbedder())
    ask, calls = counting(cache)
    for i in range(5):
        ask(f"item {i}")
    ask("item 0")  # now the most recently used
    cache.policy.max_size = 3
    assert len(cache) == 3 and cache.stats()["evictions"] == 2
    cache.policy.update(max_size=2)
    assert sorted(norm for _, norm in cache._entries) == ["item 0", "item 4"]  # keys: iterating values reorders
    check_matrix(cache)
    ask("item 1")  # evicted: asked again
    assert calls == [f"item {i}" for i in range(5)] + ["item 1"]


def test_saving_a_cache_does_not_count_as_using_its_entries(tmp_path):
    cache = SemanticCache(embedder=WordsEmbedder(), max_size=3)
    ask, calls = counting(cache)
    for i in range(3):
        ask(f"item {i}")
    ask("item 0")  # least recently used now: item 1
    cache.save(tmp_path / "cache.pkl")
    check_matrix(cache)

    ask("item 3")  # one too many: item 1 goes, as before the save

    assert sorted(norm for _, norm in cache._entries) == ["item 0", "item 2", "item 3"]


def test_lowering_max_size_at_runtime_evicts():
    cache = SemanticCache(embedder=WordsEmbedder())
    ask, _ = counting(cache)
    for i in range(5):
        ask(f"item {i}")
    cache.policy.max_size = 2
    ask("item 5")
    assert len(cache) == 2
    check_matrix(cache)
    with pytest.raises(ValueError, match="max_size"):
        ask.policy.max_size = 0
    with pytest.raises(ValueError, match="threshold"):
        ask.policy.threshold = 1.5


# --------------------------------------------------------------------------- errors and streams


def test_errors_are_never_cached():
    cache = SemanticCache(embedder=WordsEmbedder())
    outcomes = [RuntimeError("boom"), "fine"]

    @cache
    def ask(prompt):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError, match="boom"):
        ask("flaky question")
    assert len(cache) == 0
    assert ask("flaky question") == "fine"
    assert ask("flaky question") == "fine"
    assert outcomes == []


def test_completed_stream_is_replayed_chunk_by_chunk():
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    def stream(prompt):
        calls.append(prompt)
        yield from ["Hel", "lo", "!"]

    assert list(stream("greet me")) == ["Hel", "lo", "!"]
    assert list(stream("greet me")) == ["Hel", "lo", "!"]
    assert calls == ["greet me"]


def test_failed_or_abandoned_stream_is_not_cached():
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    def stream(prompt):
        calls.append(prompt)
        yield "partial"
        if prompt == "fails":
            raise ConnectionError("cut")
        yield "rest"

    with pytest.raises(ConnectionError):
        list(stream("fails"))
    gen = stream("abandoned")
    assert next(gen) == "partial"
    gen.close()
    with pytest.raises(ConnectionError):
        list(stream("fails"))
    assert list(stream("abandoned")) == ["partial", "rest"]
    assert calls == ["fails", "abandoned", "fails", "abandoned"]


async def test_async_stream_is_replayed():
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    async def stream(prompt):
        calls.append(prompt)
        for chunk in ["a", "b", "c"]:
            yield chunk

    assert [c async for c in stream("letters")] == ["a", "b", "c"]
    assert [c async for c in stream("letters")] == ["a", "b", "c"]
    assert calls == ["letters"]


def test_a_call_and_a_stream_sharing_a_cache_never_serve_each_other():
    cache = SemanticCache(embedder=WordsEmbedder())
    calls = []

    @cache
    def chat(prompt, *, model):
        calls.append("chat")
        return {"text": "full answer"}

    @cache
    def stream_chat(prompt, *, model):
        calls.append("stream")
        yield {"text": "full "}
        yield {"text": "answer"}

    assert list(stream_chat("hi", model="m")) == [{"text": "full "}, {"text": "answer"}]
    assert chat("hi", model="m") == {"text": "full answer"}
    assert list(stream_chat("hi", model="m")) == [{"text": "full "}, {"text": "answer"}]
    assert chat("hi", model="m") == {"text": "full answer"}
    assert calls == ["stream", "chat"]
    assert len(cache) == 2  # neither replaced the other


async def test_an_async_call_and_an_async_stream_sharing_a_cache_never_serve_each_other():
    cache = SemanticCache(embedder=WordsEmbedder())
    calls = []

    @cache
    async def chat(prompt):
        calls.append("chat")
        return "full answer"

    @cache
    async def stream_chat(prompt):
        calls.append("stream")
        for chunk in ["full ", "answer"]:
            yield chunk

    assert await chat("hi") == "full answer"
    assert [c async for c in stream_chat("hi")] == ["full ", "answer"]
    assert await chat("hi") == "full answer"
    assert [c async for c in stream_chat("hi")] == ["full ", "answer"]
    assert calls == ["chat", "stream"]


async def test_async_function_is_cached():
    calls = []

    @SemanticCache(embedder=WordsEmbedder())
    async def ask(prompt):
        calls.append(prompt)
        await asyncio.sleep(0)
        return prompt[::-1]

    assert await ask("abc def") == "fed cba"
    assert await ask("abc def") == "fed cba"
    assert calls == ["abc def"]


# --------------------------------------------------------------------------- stampede


def test_concurrent_identical_misses_make_one_call():
    calls = []
    release = threading.Event()

    @SemanticCache(embedder=WordsEmbedder())
    def ask(prompt):
        calls.append(prompt)
        release.wait(2)
        return "answer"

    results = []
    threads = [threading.Thread(target=lambda: results.append(ask("same question"))) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: ask.stats()["coalesced"] == 7)  # every other caller waits on the first one's call
    release.set()
    for t in threads:
        t.join(5)
    assert results == ["answer"] * 8
    assert calls == ["same question"]
    assert ask.stats()["coalesced"] == 7


async def test_concurrent_identical_async_misses_make_one_call():
    calls = []

    release = asyncio.Event()

    @SemanticCache(embedder=WordsEmbedder())
    async def ask(prompt):
        calls.append(prompt)
        await release.wait()
        return "answer"

    async def release_when_all_wait() -> None:
        await await_until(lambda: ask.stats()["coalesced"] == 7)
        release.set()

    *results, _ = await asyncio.gather(*(ask("same question") for _ in range(8)), release_when_all_wait())
    assert results == ["answer"] * 8
    assert calls == ["same question"]


def test_waiters_call_themselves_when_the_leader_fails():
    calls = []
    release = threading.Event()

    @SemanticCache(embedder=WordsEmbedder())
    def ask(prompt):
        calls.append(prompt)
        if len(calls) == 1:
            release.wait(2)
            raise TimeoutError("leader failed")
        return "answer"

    outcomes = []

    def run():
        try:
            outcomes.append(ask("q"))
        except TimeoutError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: ask.stats()["coalesced"] == 3)
    release.set()
    for t in threads:
        t.join(5)
    assert sum(isinstance(o, TimeoutError) for o in outcomes) == 1
    assert outcomes.count("answer") == 3
    assert len(calls) == 2  # the leader's failed call and one retry by a waiter; the rest hit


def test_waiters_get_the_answer_when_storing_it_fails():
    """The answer was paid for: a failure while storing it fails the caller that stores, never its waiters."""
    release = threading.Event()

    class Answer:  # an SDK object whose usage cannot be read: storing the answer raises
        text = "answer"

        @property
        def usage(self):
            raise RuntimeError("usage unavailable")

    cache = SemanticCache(embedder=WordsEmbedder())
    calls = []

    @cache
    def ask(prompt):
        calls.append(prompt)
        release.wait(2)
        return Answer()

    outcomes = []

    def run():
        try:
            outcomes.append(ask("q").text)
        except RuntimeError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]  # daemon: a hung waiter fails the test
    for t in threads:
        t.start()
    wait_until(lambda: cache.stats()["coalesced"] == 3)
    release.set()
    for t in threads:
        t.join(2)
    assert not any(t.is_alive() for t in threads)
    assert sorted(outcomes) == ["answer"] * 3 + ["usage unavailable"]
    assert calls == ["q"] and cache._flights == {}


# --------------------------------------------------------------------------- persistence


def test_save_and_load_round_trip(tmp_path):
    clock = FakeClock()
    embedder = WordsEmbedder()
    cache = SemanticCache(embedder=embedder, ttl=100, clock=clock)
    ask, _ = counting(cache)
    ask("persist me please")
    ask("another entry here", model="x")
    clock.advance(40)
    path = tmp_path / "cache.pkl"
    assert cache.save(path) == 2

    fresh = SemanticCache(embedder=embedder, ttl=100, clock=clock)
    assert fresh.load(path) == 2
    again, calls = counting(fresh)
    assert again("persist me please")["text"] == "answer to persist me please"
    assert again("another entry here", model="x")["text"] == "answer to another entry here"
    assert calls == []
    check_matrix(fresh)
    clock.advance(61)  # the 60 s they had left are over
    assert len(fresh) == 0


def test_load_gives_each_entry_its_own_lifetime_without_touching_the_policy(tmp_path):
    # The policy is shared: threads storing misses read its ttl, and the user may tune it while
    # load() runs. Neither may see a saved entry's lifetime, nor have a change undone.
    clock = FakeClock()
    saved = SemanticCache(embedder=WordsEmbedder(), ttl=100, clock=clock)
    ask, _ = counting(saved)
    ask("persist me please")
    clock.advance(90)  # 10 s left
    path = tmp_path / "cache.pkl"
    saved.save(path)

    seen = []

    class TunedMeanwhile(FakeClock):
        """Each time load() reads the clock, someone reads the ttl, then the user sets a new one."""

        def monotonic(self):
            if loading:
                seen.append(cache.policy.ttl)
                cache.policy.ttl = 1000.0 + len(seen)
            return super().monotonic()

    loading = False
    later = TunedMeanwhile(start=90)
    cache = SemanticCache(embedder=WordsEmbedder(), ttl=3600, clock=later)
    loading = True
    assert cache.load(path) == 1
    loading = False

    assert seen and 10.0 not in seen  # nobody saw the saved entry's lifetime as the policy's
    assert cache.policy.ttl == 1000.0 + len(seen)  # the user's last change stands
    later.advance(9.9)
    assert len(cache) == 1
    later.advance(0.2)  # its own 10 s are over, whatever the policy says
    assert len(cache) == 0


# --------------------------------------------------------------------------- real model


def test_paraphrase_is_a_semantic_hit(minilm):
    ask, calls = counting(SemanticCache(embedder=minilm))
    ask("How do I reverse a list in Python?")
    assert ask("What's the way to reverse a Python list?")["text"] == "answer to How do I reverse a list in Python?"
    assert ask.stats()["semantic_hits"] == 1 and len(calls) == 1


@pytest.mark.parametrize(
    "kind, stored, query",
    [
        ("number", "Summarize the top 5 risks of this plan", "Summarize the top 3 risks of this plan"),
        ("order", "Convert 30 degrees Celsius to Fahrenheit", "Convert 30 degrees Fahrenheit to Celsius"),
        ("negation", "Which fruits can dogs eat?", "Which fruits can dogs not eat?"),
        ("opposite", "How do I enable two-factor authentication on GitHub?",
         "How do I disable two-factor authentication on GitHub?"),
        ("entity", "Best restaurants in Brooklyn.", "Best restaurants in Manhattan."),
        ("qualifier", "What are good names for a cat?", "What are good names for a black cat?"),
    ],
)
def test_guard_vetoes_near_misses_that_plain_cosine_would_serve(minilm, kind, stored, query):
    vectors = minilm([stored, query])
    assert float(vectors[0] @ vectors[1]) >= 0.85  # the near miss the guard exists for

    plain, plain_calls = counting(SemanticCache(embedder=minilm, guard=False, threshold=0.85))
    plain(stored)
    plain(query)
    assert len(plain_calls) == 1  # served the wrong answer

    guarded, calls = counting(SemanticCache(embedder=minilm, threshold=0.85))
    guarded(stored)
    guarded(query)
    assert calls == [stored, query]
    assert guarded.stats()["veto_reasons"] == {kind: 1}


def test_custom_guard_callable(minilm):
    seen = []

    def guard(query, candidate):
        seen.append((query, candidate))
        return False

    ask, calls = counting(SemanticCache(embedder=minilm, guard=guard))
    ask("How do I reverse a list in Python?")
    ask("What's the way to reverse a Python list?")
    assert len(calls) == 2
    assert seen == [("What's the way to reverse a Python list?", "How do I reverse a list in Python?")]
    assert ask.stats()["guard_vetoes"] == 1


def test_decorator_forms_and_describe(minilm):
    @semantic_cache
    def bare(prompt):
        return prompt

    @semantic_cache(threshold=0.9, ttl=None)
    def configured(prompt):
        return prompt

    assert bare("hi") == "hi" and configured("hi") == "hi"
    layer = describe(configured)[0]
    assert layer["layer"] == "semantic_cache"
    assert layer["policy"]["threshold"] == 0.9 and layer["policy"]["ttl"] is None
    with pytest.raises(ValueError, match="threshold"):
        semantic_cache(threshold=3)
