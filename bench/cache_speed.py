"""Speed of @semantic_cache and @batched.

* exact hit: the whole decorated call when the normalised text is cached (no embedding);
* semantic lookup at 10k entries: a paraphrased query, embedding included (real MiniLM);
* search alone at 100k entries: the matrix-vector product and arg-max of one partition;
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
from resilient.semantic_cache import SemanticCache  # noqa: E402

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
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p95_ms": times[int(0.95 * len(times))] * 1e3,
        "embed_median_ms": statistics.median(embed_times) * 1e3,
    }


def search_alone(entries: int = 100_000) -> float:
    """Median ms of one partition's search (matrix @ query, arg-max) at ``entries`` rows."""
    from resilient.semantic_cache import _Entry, _Partition

    partition = _Partition(384, capacity=1024)
    vectors = random_rows(entries, 384, 2)
    for i in range(entries):
        partition.add(_Entry(("", str(i)), "", None, False, None, 0.0, (0, 0)), vectors[i])
    query = random_rows(1, 384, 3)[0]
    times = []
    for _ in range(50):
        start = time.perf_counter()
        partition.best(query)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def guard_cost() -> float:
    guard = NearMissGuard()
    pairs = [("Convert 30 degrees Celsius to Fahrenheit", "Convert 30 degrees Fahrenheit to Celsius"),
             ("How do I reverse a list in Python?", "What's the way to reverse a Python list?")] * 500
    start = time.perf_counter()
    for a, b in pairs:
        guard.check(a, b)
    return (time.perf_counter() - start) / len(pairs) * 1e6


def batching(callers: int = 64, timeout: float = 0.05) -> dict[str, float]:
    calls = []

    @batched(max_batch_size=20, batch_timeout=timeout)
    def work(items):
        calls.append(len(items))
        return items

    latencies = [0.0] * callers
    barrier = threading.Barrier(callers)

    def caller(i):
        barrier.wait()
        start = time.perf_counter()
        work(i)
        latencies[i] = time.perf_counter() - start

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"callers": callers, "calls": len(calls), "reduction": callers / len(calls),
            "max_added_ms": max(latencies) * 1e3, "timeout_ms": timeout * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    embedder = default_embedder()
    embedder.load()
    exact, bare = exact_hit_cost()
    semantic = semantic_lookup(embedder)
    search = search_alone()
    guard = guard_cost()
    batch = batching()

    def verdict(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    lines = [
        SECTION,
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores shared with other jobs; "
        "MiniLM on CPU (torch). Medians of repeated runs.",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
        f"| exact hit, whole decorated call (bare call {bare:.2f} µs) | {exact:.2f} µs | <= 5 µs | {verdict(exact <= 5)} |",
        f"| semantic lookup at 10k entries, embedding included | median {semantic['median_ms']:.1f} ms, "
        f"p95 {semantic['p95_ms']:.1f} ms | median <= 10 ms | {verdict(semantic['median_ms'] <= 10)} |",
        f"| of which: embedding one query (MiniLM) | median {semantic['embed_median_ms']:.1f} ms | | |",
        f"| search alone at 100k entries (384-d float32) | {search:.2f} ms | <= 5 ms | {verdict(search <= 5)} |",
        f"| near-miss guard, one check | {guard:.0f} µs | well under the embedding | "
        f"{verdict(guard / 1e3 < semantic['embed_median_ms'] / 10)} |",
        f"| @batched, {batch['callers']} concurrent threads | {batch['calls']} list calls "
        f"({batch['reduction']:.1f}x fewer) | >= 10x fewer | {verdict(batch['reduction'] >= 10)} |",
        f"| @batched, worst added latency | {batch['max_added_ms']:.1f} ms | <= batch_timeout ({batch['timeout_ms']:.0f} ms) "
        f"| {verdict(batch['max_added_ms'] <= batch['timeout_ms'])} |",
        "",
        "Why the search runs on torch when torch is loaded: on these 2 cores a numpy product between two MiniLM "
        "encodings wakes OpenBLAS's thread pool, which then spins against torch's OpenMP pool; measured before "
        "the change, the 10k lookup took a 20-24 ms median (p95 over 100 ms) with the search alone at 4 ms. On "
        "torch's pool, with the matrix stored column-major, the lookup is about the embedding's own time and the "
        "isolated search a little slower. With an embedder that does not use torch, the search stays on numpy. "
        "The lookup is bounded below by the embedding: one MiniLM encoding takes 8-10 ms here.",
        "",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(HERE / "RESULTS.md", SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
