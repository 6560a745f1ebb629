"""Success-path overhead per call: our @backoff and @circuit against the peers, in one run.

What is measured: the cost a decorator adds to a call that succeeds at once
(the common case), as ``decorated call time - bare call time``, median of
several repeats of a tight loop. The peers are configured to the same job
(retry on exception, or break a circuit) with their defaults otherwise.

Run: ``python bench/overhead.py [--write]``; ``--write`` replaces this
benchmark's section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import backoff as backoff_lib
import pybreaker
import stamina
import tenacity

import resilient

LOOPS = 100_000
REPEATS = 7
SECTION = "## Decorator overhead (bench/overhead.py)"


def target(x: int) -> int:
    return x


def per_call(fn: Callable[[int], int]) -> float:
    """Median seconds per call over REPEATS runs of LOOPS calls."""
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(LOOPS):
            fn(i)
        samples.append((time.perf_counter() - start) / LOOPS)
    return statistics.median(samples)


def contenders() -> dict[str, Callable[[int], int]]:
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    return {
        "resilient @backoff": resilient.backoff(max_retries=5)(target),
        "resilient @circuit": resilient.circuit(fail_max=5)(target),
        "resilient @circuit + @backoff": resilient.circuit(resilient.backoff(target)),
        "backoff.on_exception": backoff_lib.on_exception(backoff_lib.expo, Exception, max_tries=6)(target),
        "stamina.retry": stamina.retry(on=Exception, attempts=6)(target),
        "tenacity.retry": tenacity.retry(stop=tenacity.stop_after_attempt(6), wait=tenacity.wait_exponential())(
            target
        ),
        "pybreaker": breaker(target),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    bare = per_call(target)
    rows = []
    for name, fn in contenders().items():
        assert fn(7) == 7
        rows.append((name, max(0.0, per_call(fn) - bare)))

    backoff_lib_cost = dict(rows)["backoff.on_exception"]
    tenacity_cost = dict(rows)["tenacity.retry"]
    lines = [
        SECTION,
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {LOOPS:,} calls x {REPEATS} repeats, "
        f"median; bare call {bare * 1e9:.0f} ns. Overhead = decorated - bare.",
        "",
        "| decorator | overhead per call | vs backoff lib | tenacity / this |",
        "|---|---:|---:|---:|",
    ]
    for name, cost in rows:
        lines.append(
            f"| {name} | {cost * 1e6:.2f} µs | {cost / backoff_lib_cost:.2f}x | "
            f"{tenacity_cost / cost if cost else float('inf'):.1f}x |"
        )
    lines += [
        "",
        "Targets (issue 2): each of our decorators costs no more than the `backoff` library's "
        "decorator and at least 5x less than tenacity.",
    ]
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
