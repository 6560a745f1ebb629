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
    search = search_alone()
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
        f"| search alone at 100k entries (384-d float32) | {search:.2f} ms | <= 5 ms | {verdict(search <= 5)} |",
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
        "Search at 100k entries is not met, and float32 cannot meet it on this machine: the scan is memory-bound. "
        "The 100k x 384 float32 matrix is 154 MB and this VM streams it at about 25 GB/s whether one or two threads "
        "read it (torch column-major mv: 6.0 ms with 1 thread and with 2; row blocks of 4k-50k rows: no gain; "
        "row-major: 13 ms; numpy/OpenBLAS row-major: 9-13 ms in the same session). Halving the bytes does not "
        "help reliably with the kernels available on AVX2: torch's float16 mv takes 4.6 ms at best with both cores "
        "free but 8.1-8.5 ms on one core (its conversion is compute-bound), so it is slower whenever another job "
        "holds a core; bfloat16 6-9 ms; oneDNN-packed float32 no faster (12 ms, measured under load). FBGEMM int8 (torch's dynamic-quantised "
        "linear) took 2.3 ms at best with one scale for the whole matrix, but 15 ms with the per-row scales an "
        "exact re-score needs (a tight error bound per row), its packed matrix took 0.8 s to build for 100k rows "
        "(rebuilt as rows are added and evicted), and torch 2.13 warns that its quantised tensors are deprecated "
        "and will be removed; not adopted. The search stays float32 column-major on torch's pool "
        "(why torch, not numpy: a numpy product between two MiniLM encodings wakes OpenBLAS's thread pool, which "
        "spins against torch's OpenMP pool; that made the 10k lookup 20-24 ms).",
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
