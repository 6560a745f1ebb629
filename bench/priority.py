"""Priority queue under saturation, and the per-call cost of @queued, @multiplex and @rate_limited.

Part 1, saturation: ``WORKERS`` threads share one ``RequestQueue`` of
``SLOTS`` slots, each calling in a closed loop (next call as soon as the last
returned) a function that holds its slot for ``WORK`` seconds, so the queue
is always full of waiters. A fifth of the threads call at ``high``, half at
``normal``, the rest at ``low``. Reported: wait for a slot, p50/p95/max per
priority, from the queue's own stats; the target is high p95 at most 0.2x
low p95, with every low call served (aging bounds how long any call waits).

Part 2, overhead: the success-path cost each decorator adds to a call that
needs no waiting, as ``decorated - bare``, median of several repeats of a
tight loop, in the same run, with the ratio to the bare call.

Run: ``python bench/priority.py [--write]``; ``--write`` replaces this
benchmark's section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from resilient.multiplex import KeyPool, multiplex
from resilient.priorities import priority
from resilient.queue import RequestQueue, queued
from resilient.ratelimit import rate_limited

SECTION = "## Priority queue and key pool (bench/priority.py)"

SLOTS = 4
WORKERS = 24
WORK = 0.002  # seconds a call holds its slot
DURATION = 3.0  # seconds of saturation
AGING = 0.25  # seconds per priority level
LOOPS = 100_000
REPEATS = 7


# --------------------------------------------------------------------------- saturation


def saturate() -> tuple[dict, dict[str, int], float]:
    queue = RequestQueue(max_concurrent=SLOTS, queue_size=WORKERS, aging=AGING)
    levels = ["high"] * (WORKERS // 5) + ["low"] * (WORKERS * 3 // 10)
    levels += ["normal"] * (WORKERS - len(levels))
    served = {"high": 0, "normal": 0, "low": 0}
    lock = threading.Lock()
    stop = threading.Event()
    start = threading.Barrier(WORKERS + 1)

    @queued(queue=queue)
    def call() -> None:
        time.sleep(WORK)

    max_wait = {"high": 0.0, "normal": 0.0, "low": 0.0}

    def worker(level: str) -> None:
        done = 0
        worst = 0.0
        start.wait()
        with priority(level):
            while not stop.is_set():
                asked = time.perf_counter()
                call()
                worst = max(worst, time.perf_counter() - asked - WORK)
                done += 1
        with lock:
            served[level] += done
            max_wait[level] = max(max_wait[level], worst)

    threads = [threading.Thread(target=worker, args=(level,)) for level in levels]
    for t in threads:
        t.start()
    start.wait()
    queue.reset_stats()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join()
    stats = queue.stats()
    stats["max_wait"] = max_wait
    return stats, served, DURATION


# --------------------------------------------------------------------------- overhead


def per_call(fn: Callable[[int], int]) -> float:
    """Median seconds per call over REPEATS runs of LOOPS calls."""
    samples = []
    for _ in range(REPEATS):
        begin = time.perf_counter()
        for i in range(LOOPS):
            fn(i)
        samples.append((time.perf_counter() - begin) / LOOPS)
    return statistics.median(samples)


def target(x: int) -> int:
    return x


def keyed(x: int, *, api_key: str) -> int:
    return x


KEYS = [f"sk-bench-{n}-0123456789abcdef" for n in range(4)]


def overhead() -> tuple[float, float, list[tuple[str, float, float]]]:
    bare = per_call(target)
    bare_keyed = per_call(lambda x: keyed(x, api_key=KEYS[0]))
    shared_queue = RequestQueue(max_concurrent=1_000)
    rows = {
        "@queued": (queued(max_concurrent=1_000)(target), bare),
        "@queued, with priority('high') block around the call": (_in_priority(queued(queue=shared_queue)(target)), bare),
        "@rate_limited (never waits)": (rate_limited(1e12, 1)(target), bare),
        "@multiplex, 1 key": (multiplex(KEYS[:1])(keyed), bare_keyed),
        "@multiplex, 4 keys round-robin": (multiplex(KEYS)(keyed), bare_keyed),
        "@multiplex, 4 keys least-loaded": (multiplex(KEYS, strategy="least-loaded")(keyed), bare_keyed),
        "@queued + @multiplex(4 keys)": (queued(max_concurrent=1_000)(KeyPool(KEYS)(keyed)), bare_keyed),
    }
    out = []
    for name, (fn, base) in rows.items():
        assert fn(7) == 7
        cost = max(0.0, per_call(fn) - base)
        out.append((name, cost, cost / base))
    return bare, bare_keyed, out


def _in_priority(fn: Callable[[int], int]) -> Callable[[int], int]:
    def call(x: int) -> int:
        with priority("high"):
            return fn(x)

    call.__name__ = fn.__name__
    return call


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    stats, served, seconds = saturate()
    bare, bare_keyed, rows = overhead()

    ms = lambda s: "-" if s is None else f"{s * 1e3:.2f} ms"  # noqa: E731
    p95 = stats["wait_p95"]
    ratio = p95["high"] / p95["low"] if p95["low"] else float("nan")
    lines = [
        SECTION,
        "",
        f"Python {platform.python_version()} on {platform.machine()}.",
        "",
        f"**Saturation**: {WORKERS} threads in a closed loop on {SLOTS} slots, each call holding its slot "
        f"{WORK * 1e3:g} ms, for {seconds:g} s; {WORKERS // 5} threads high, {WORKERS * 3 // 10} low, the rest "
        f"normal; aging {AGING:g} s per level. Wait for a slot (p50/p95 from the queue's stats, max measured "
        "by the callers, minus the work):",
        "",
        "| priority | calls served | wait p50 | wait p95 | wait max |",
        "|---|---:|---:|---:|---:|",
    ]
    for level in ("high", "normal", "low"):
        lines.append(
            f"| {level} | {served[level]:,} | {ms(stats['wait_p50'][level])} | {ms(p95[level])} | "
            f"{ms(stats['max_wait'][level])} |"
        )
    lines += [
        "",
        f"high p95 / low p95 = **{ratio:.3f}** (target: at most 0.2); every low thread was served "
        f"({served['low']:,} low calls; none starved). Rejected: {stats['rejected']}, timed out: {stats['timed_out']}.",
        "",
        f"**Overhead** on the success path, {LOOPS:,} calls x {REPEATS} repeats, median, same run; "
        f"bare call {bare * 1e9:.0f} ns (with the key keyword: {bare_keyed * 1e9:.0f} ns). "
        "Overhead = decorated - bare:",
        "",
        "| decorator | overhead per call | overhead / bare call |",
        "|---|---:|---:|",
    ]
    for name, cost, rel in rows:
        lines.append(f"| {name} | {cost * 1e6:.2f} µs | {rel:.1f}x |")
    lines += ["", "Target (issue 3): about 2 µs or less per decorator."]
    report = "\n".join(lines)
    print(report)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), SECTION, report)


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) the section starting at ``heading`` in ``path``; other sections stay."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + body + "\n" + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
