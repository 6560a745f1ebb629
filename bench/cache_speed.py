"""Speed of @semantic_cache and @batched.

* exact hit: the whole decorated call when the normalised text is cached (no embedding);
* semantic lookup at 10k entries: a paraphrased query, embedding included (real MiniLM);
* search alone at 100k entries: one partition's best row at the default threshold, pruned and full scan;
* guard: one NearMissGuard check;
* @batched with 64 concurrent threads: underlying calls and added latency.

Run: ``python bench/cache_speed.py [--write]``; ``--write`` replaces this section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import write_section  # noqa: E402

from resilient.batched import batched  # noqa: E402
from resilient.embeddings import default_embedder  # noqa: E402
from resilient.near_miss import NearMissGuard  # noqa: E402
from resilient.semantic_cache import DEFAULT_THRESHOLD, SemanticCache  # noqa: E402

HERE = Path(__file__).resolve().parent
SECTION = "## Cache and batching speed (bench/cache_speed.py)"


def exact_hit_cost() -> tuple[float, float]:
    """(µs per exact hit through the decorator, µs per call of the bare function)."""
    cache = SemanticCache(embedder=lambda texts: np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8))

    def answer(prompt):
        return prompt

    ask = cache(answer)
    ask("How do I reverse a list in Python?")
    loops, samples, bare = 50_000, [], []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            ask("How do I reverse a list in Python?")
        samples.append((time.perf_counter() - start) / loops)
        start = time.perf_counter()
        for _ in range(loops):
            answer("How do I reverse a list in Python?")
        bare.append((time.perf_counter() - start) / loops)
    return statistics.median(samples) * 1e6, statistics.median(bare) * 1e6


def random_rows(n: int, d: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def semantic_lookup(embedder, entries: int = 10_000, queries: int = 40) -> dict[str, float]:
    """Median and p95 ms of a semantic lookup (embedding + search + guard) at ``entries`` entries."""
    cache = SemanticCache(embedder=embedder, max_size=entries + 10, ttl=None)
    vectors = random_rows(entries, 384, 1)
    for i in range(entries):  # filler entries; stored directly so the bench does not embed 10k texts
        cache.store("", f"filler {i}", f"filler {i}", i, vectors[i], stream=False)
    calls = []

    @cache
    def ask(prompt):
        calls.append(prompt)
        return prompt

    ask("How do I reverse a list in Python?")
    times = []
    for i in range(queries):
        query = f"What's the way to reverse a Python list? ({i})" if i % 2 else "What is the way to reverse a Python list?"
        cache._entries.pop(("", query.casefold().rstrip(" ?!.")), None)  # keep it off the exact path
        start = time.perf_counter()
        ask(query)
        times.append(time.perf_counter() - start)
    embed_times = []
    for i in range(queries):
        start = time.perf_counter()
        embedder([f"What's the way to reverse a Python list? ({i})"])
        embed_times.append(time.perf_counter() - start)
    encode_times = []  # the same query through SentenceTransformer.encode, for comparison
    model = getattr(embedder, "_model", None)
    for i in range(queries if model is not None else 0):
        start = time.perf_counter()
        model.encode([f"What's the way to reverse a Python list? ({i})"], convert_to_numpy=True,
                     normalize_embeddings=True, show_progress_bar=False)
        encode_times.append(time.perf_counter() - start)
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p95_ms": times[int(0.95 * len(times))] * 1e3,
        "embed_median_ms": statistics.median(embed_times) * 1e3,
        "encode_median_ms": statistics.median(encode_times) * 1e3 if encode_times else float("nan"),
    }


QQP = HERE.parent.parent / "shared" / "data" / "qqp_pairs_4k.jsonl"


def minilm_like_rows(embedder, n: int, pairs: int = 1_000) -> tuple[np.ndarray, np.ndarray]:
    """(``n`` rows, ``pairs`` queries) shaped like a real cache of MiniLM question embeddings.

    Embedding 100k texts would take minutes, so: the first question of
    ``pairs`` labelled paraphrase pairs of ../shared/data/qqp_pairs_4k.jsonl is
    embedded for real and stored; the rest of the rows are drawn from a Gaussian
    with those embeddings' mean and covariance (the same anisotropy, so the
    fitted axes and the bound face what they would in practice); the queries
    are the pairs' second questions, real embeddings, hits at many similarities.
    """
    import json

    with QQP.open() as lines:
        rows = [json.loads(line) for line in lines]
    chosen = [r for r in rows if r["label"] == 1][:pairs]
    stored = np.vstack([embedder([r["a"] for r in chosen[i:i + 64]]) for i in range(0, pairs, 64)])
    queries = np.vstack([embedder([r["b"] for r in chosen[i:i + 64]]) for i in range(0, pairs, 64)])
    rng = np.random.default_rng(4)
    drawn = rng.multivariate_normal(stored.mean(axis=0), np.cov(stored, rowvar=False), n - pairs).astype(np.float32)
    drawn /= np.linalg.norm(drawn, axis=1, keepdims=True)
    mixed = np.vstack([stored, drawn])
    return mixed[rng.permutation(n)], queries.astype(np.float32)


def search_alone(rows: np.ndarray, queries: np.ndarray, floor: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Median ms of one partition's search, pruned (as the cache runs it) and full scan; same answers?"""
    from resilient.vector_index import VectorIndex

    class Row:
        __slots__ = ("i", "row")

        def __init__(self, i: int) -> None:
            self.i, self.row = i, -1

    pruned: VectorIndex[Row] = VectorIndex(rows.shape[1], capacity=1024)
    full: VectorIndex[Row] = VectorIndex(rows.shape[1], capacity=1024, prune_from=len(rows) + 1)
    fit_ms = 0.0
    for i, row in enumerate(rows):
        full.add(Row(i), row)
        fitted = pruned.pruning
        start = time.perf_counter()
        pruned.add(Row(i), row)
        if pruned.pruning and not fitted:  # the add that fits the axes
            fit_ms = (time.perf_counter() - start) * 1e3
    assert pruned.pruning and not full.pruning

    def timed(index: VectorIndex[Row]) -> tuple[float, list]:
        times, answers = [], []
        for _ in range(3):
            for query in queries:
                start = time.perf_counter()
                found = index.best(query, floor)
                times.append(time.perf_counter() - start)
                answers.append(None if found is None else found[0])
        return statistics.median(times) * 1e3, answers

    pruned_ms, pruned_answers = timed(pruned)
    full_ms, full_answers = timed(full)
    return {
        "pruned_ms": pruned_ms, "full_ms": full_ms, "fit_ms": fit_ms, "queries": len(queries),
        "hits": sum(a is not None for a in full_answers[: len(queries)]),
        # the same similarity: rows stored twice (repeated questions) tie, and either may be returned
        "same": sum(a == b or (a is not None and b is not None and abs(a - b) < 1e-5)
                    for a, b in zip(pruned_answers, full_answers)) // 3,
    }


def guard_cost() -> float:
    guard = NearMissGuard()
    pairs = [("Convert 30 degrees Celsius to Fahrenheit", "Convert 30 degrees Fahrenheit to Celsius"),
             ("How do I reverse a list in Python?", "What's the way to reverse a Python list?")] * 500
    start = time.perf_counter()
    for a, b in pairs:
        guard.check(a, b)
    return (time.perf_counter() - start) / len(pairs) * 1e6


def batching(callers: int = 64, timeout: float = 0.05, runs: int = 15) -> dict[str, float]:
    """List calls for ``callers`` concurrent threads, and the added latency.

    Added latency of one call: from the call until the list call holding its
    item starts (what the batching itself costs the caller; the list call's own
    duration is the caller's function). The worst over the callers of one run
    is compared with ``batch_timeout``; repeated over ``runs`` fresh layers,
    median and maximum reported. The round trip (call to return) is shown too.
    """
    worst, trips, counts = [], [], []
    for _ in range(runs):
        calls, began = [], {}

        @batched(max_batch_size=20, batch_timeout=timeout)
        def work(items):
            now = time.perf_counter()
            for item in items:
                began[item] = now
            calls.append(len(items))
            return items

        called = [0.0] * callers
        returned = [0.0] * callers
        barrier = threading.Barrier(callers)

        def caller(i):
            barrier.wait()
            called[i] = time.perf_counter()
            work(i)
            returned[i] = time.perf_counter()

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        worst.append(max(began[i] - called[i] for i in range(callers)))
        trips.append(max(returned[i] - called[i] for i in range(callers)))
        counts.append(len(calls))
    calls_median = statistics.median(counts)
    return {"callers": callers, "calls": calls_median, "reduction": callers / calls_median, "runs": runs,
            "added_median_ms": statistics.median(worst) * 1e3, "added_max_ms": max(worst) * 1e3,
            "trip_median_ms": statistics.median(trips) * 1e3, "timeout_ms": timeout * 1e3}


def torch_version() -> str:
    import torch

    return torch.__version__


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    embedder = default_embedder()
    embedder.load()
    exact, bare = exact_hit_cost()
    semantic = semantic_lookup(embedder)
    search_random = search_alone(random_rows(100_000, 384, 2), random_rows(200, 384, 3))
    search_real = search_alone(*minilm_like_rows(embedder, 100_000))
    guard = guard_cost()
    batch = batching()

    def verdict(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    lines = [
        SECTION,
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after); MiniLM on CPU (torch "
        f"{torch_version()}, {torch_threads()} threads). Medians of repeated runs.",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
        f"| exact hit, whole decorated call (bare call {bare:.2f} µs) | {exact:.2f} µs | <= 5 µs | {verdict(exact <= 5)} |",
        f"| semantic lookup at 10k entries, embedding included | median {semantic['median_ms']:.1f} ms, "
        f"p95 {semantic['p95_ms']:.1f} ms | median <= 10 ms | {verdict(semantic['median_ms'] <= 10)} |",
        f"| of which: embedding one query (MiniLM, direct torch path) | median {semantic['embed_median_ms']:.1f} ms "
        f"(SentenceTransformer.encode: {semantic['encode_median_ms']:.1f} ms) | | |",
        *(f"| search alone at 100k entries, {name} (384-d float32) | {r['pruned_ms']:.2f} ms (full scan "
          f"{r['full_ms']:.2f} ms, {r['full_ms'] / r['pruned_ms']:.1f}x; same answers {r['same']}/{r['queries']}, "
          f"{r['hits']} hits; fit {r['fit_ms']:.0f} ms once) | <= 5 ms | {verdict(r['pruned_ms'] <= 5)} |"
          for name, r in (("random unit rows", search_random), ("MiniLM-like rows", search_real))),
        f"| near-miss guard, one check | {guard:.0f} µs | well under the embedding | "
        f"{verdict(guard / 1e3 < semantic['embed_median_ms'] / 10)} |",
        f"| @batched, {batch['callers']} concurrent threads | {batch['calls']:.0f} list calls "
        f"({batch['reduction']:.1f}x fewer) | >= 10x fewer | {verdict(batch['reduction'] >= 10)} |",
        f"| @batched, worst added latency (call until its list call starts), {batch['runs']} runs "
        f"| median {batch['added_median_ms']:.2f} ms, max {batch['added_max_ms']:.2f} ms "
        f"| <= batch_timeout ({batch['timeout_ms']:.0f} ms) | {verdict(batch['added_median_ms'] <= batch['timeout_ms'])} |",
        f"| of which: @batched, worst call-to-return (list call and wake-up included) | median {batch['trip_median_ms']:.2f} ms | | |",
        "",
        "Exact hit: the normalised text is one `str.split` join (a regex substitution cost 1.2 µs of it), the "
        "TLRU entry is read with one lookup and one clock read, and the expiry sweep is left to stores and "
        "semantic lookups (the cache never returns an expired entry). This machine runs a bare call at "
        "0.04-0.05 µs, about 1.5x slower than where the earlier 4.95 µs was measured.",
        "",
        "Embedding: `SentenceTransformerEmbedder` runs MiniLM directly on torch ops (tokenizer call, fused QKV, "
        "oneDNN-packed linear weights, no padding for one text; see resilient/embeddings.py) instead of "
        "`SentenceTransformer.encode`; same vectors within 3e-7 (tests/test_embeddings.py). That is what brings "
        "the 10k lookup under 10 ms: the lookup is the embedding plus well under 1 ms of search and guard.",
        "",
        "Search at 100k entries: the full float32 scan is memory-bound (the 100k x 384 matrix is 154 MB; this VM "
        "streams it at about 25 GB/s with one thread or two, 5-6 ms whatever the kernel; 2-byte and int8 kernels on "
        "this AVX2 CPU were not reliably faster, see the earlier runs in git history). The cache needs only the best "
        "row at or above its threshold, and that admits an exact search that reads a fraction of the bytes "
        "(resilient/vector_index.py): from 16k rows a partition keeps its rows rotated to their own principal axes "
        "(dot products unchanged), scans the leading coordinates only, adds each row's Cauchy-Schwarz bound "
        "for the rest (|q_tail| |x_tail|, the row's tail norm is kept) and re-scores exactly the rows whose bound "
        "reaches the threshold. No qualifying row can be missed; the 'same answers' column checks it against the "
        "full scan on every query. The head is the fewest leading axes holding 2/3 of the rows' energy: about a "
        "quarter of the coordinates for MiniLM embeddings, two thirds for isotropic random rows. The axes are fitted "
        "once, when a partition reaches 16k rows; the add that fits pays for it (fit column). MiniLM-like rows: "
        f"{search_real['queries']} real MiniLM embeddings of Quora questions among 100k rows drawn from a Gaussian "
        "with their mean and covariance; the queries are those questions' labelled paraphrases.",
        "",
        "@batched: the deadline is fixed at the first item's arrival (read before the layer's lock), and the "
        "first thread waits on a condition for the time left. The 0.1-0.5 ms (more under load) the old version ran over came from "
        "the timed wait itself: on this VM a condition wait returns a median 0.11 ms (p99 0.55 ms) after its "
        "timeout (timer slack, wake-up, GIL). The wait now aims early by the lateness observed so far (a decaying "
        "maximum, at most 2 ms and a tenth of batch_timeout), so the list call starts by the deadline; the flush "
        "is that much (under 0.5 ms) early instead of late. Under a FakeClock the wait is a sleep on that clock "
        "and tests check the flush at exactly arrival + batch_timeout.",
        "",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(HERE / "RESULTS.md", SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
