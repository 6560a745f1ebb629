"""Semantic cache quality: precision, recall and false hits per threshold, with and without the guard.

Two labelled sets of (a, b) pairs, where a stands for the cached question and b for the new one:

(a) ``../shared/data/qqp_pairs_4k.jsonl``: 2,000 paraphrase and 2,000 non-paraphrase
    Quora question pairs (GPTCache's benchmark sample; read in place, never copied);
(b) ``bench/data/adversarial_pairs.tsv``: our own LLM-style prompts, paraphrases and
    near misses (numbers, negation, opposite terms, order, entities, qualifiers); the
    development set the guard was written against;
(c) ``bench/data/adversarial_heldout.tsv``: a second such set (176 pairs), written before
    the guard's revision for issue #6 and never used to tune it.

``bench/data/qqp_hits_audit.tsv`` re-reads a random sample of the QQP hits at the defaults
by hand (line numbers and verdicts only), to tell the labels' noise from real wrong hits.

QQP is split deterministically with its labels balanced: in file order, the first 1,000
paraphrases and the first 1,000 non-paraphrases are the development half (rules and the
default threshold were tuned on it), the other 2,000 pairs the held-out half.

A pair is a *hit* when cosine(a, b) >= threshold and, with the guard, the guard
approves b against a. Precision = paraphrase hits / all hits; recall = paraphrase
hits / paraphrases; false-hit rate = non-paraphrase hits / non-paraphrases.

Every text is embedded once per run (MiniLM, in batches); ``--cache DIR`` keeps
the embeddings between runs. Run: ``python bench/semantic_quality.py [--write]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import write_section  # noqa: E402

from resilient.embeddings import default_embedder  # noqa: E402
from resilient.near_miss import NearMissGuard  # noqa: E402
from resilient.semantic_cache import DEFAULT_THRESHOLD  # noqa: E402

HERE = Path(__file__).resolve().parent
QQP = HERE.parent.parent / "shared" / "data" / "qqp_pairs_4k.jsonl"
ADVERSARIAL = HERE / "data" / "adversarial_pairs.tsv"
HELDOUT = HERE / "data" / "adversarial_heldout.tsv"
AUDIT = HERE / "data" / "qqp_hits_audit.tsv"
SECTION = "## Semantic cache quality (bench/semantic_quality.py)"
THRESHOLDS = [0.70, 0.75, 0.80, 0.82, 0.83, 0.84, 0.85, 0.86, 0.88, 0.90, 0.92, 0.95]


def load_qqp(path: Path = QQP) -> list[tuple[str, str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["a"], r["b"], "paraphrase" if r["label"] == 1 else "different") for r in rows]


def load_adversarial(path: Path = ADVERSARIAL) -> list[tuple[str, str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        kind, a, b = line.split("\t")
        pairs.append((a, b, kind))
    return pairs


def qqp_dev_half(pairs: list[tuple[str, str, str]]) -> np.ndarray:
    """True for the development half: the first half of each label, in file order."""
    quota = {k: sum(1 for _, _, x in pairs if x == k) // 2 for k in ("paraphrase", "different")}
    seen = {"paraphrase": 0, "different": 0}
    dev = []
    for _, _, kind in pairs:
        dev.append(seen[kind] < quota[kind])
        seen[kind] += 1
    return np.array(dev)


def similarities(pairs: list[tuple[str, str, str]], cache_dir: Path | None) -> tuple[np.ndarray, float]:
    """Cosine per pair, and the embedding time per text (seconds; 0 when read from the cache)."""
    texts = [a for a, _, _ in pairs] + [b for _, b, _ in pairs]
    digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
    cached = cache_dir / f"emb-{digest}.npy" if cache_dir else None
    if cached is not None and cached.exists():
        vectors, per_text = np.load(cached), 0.0
    else:
        embedder = default_embedder()
        embedder.load()
        started = time.perf_counter()
        vectors = embedder(texts)
        per_text = (time.perf_counter() - started) / len(texts)
        if cached is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            np.save(cached, vectors)
    n = len(pairs)
    return (vectors[:n] * vectors[n:]).sum(axis=1), per_text


def verdicts(pairs: list[tuple[str, str, str]]) -> tuple[list[str | None], float]:
    """The guard's reason (or None) for serving a's answer to b; and seconds per check."""
    guard = NearMissGuard()
    started = time.perf_counter()
    reasons = [guard.check(b, a) for a, b, _ in pairs]
    return reasons, (time.perf_counter() - started) / len(pairs)


def scores(sims: np.ndarray, positive: np.ndarray, approved: np.ndarray, threshold: float) -> dict[str, float]:
    hits = (sims >= threshold) & approved
    tp = int((hits & positive).sum())
    fp = int((hits & ~positive).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / max(1, int(positive.sum())),
        "false_hits": fp / max(1, int((~positive).sum())),
    }


def audit(hits: np.ndarray, positive: np.ndarray, path: Path = AUDIT) -> list[str]:
    """What a manual re-reading of sampled QQP hits says about the precision of what is served.

    QQP labels are crowd-sourced; the audit file holds, for a random sample of
    the hits at the defaults of each label, whether the cached answer would
    answer the new question. Audited lines that are no longer hits (the guard
    or threshold changed since) are left out and counted.
    """
    verdicts: dict[int, list[str]] = {1: [], 0: []}
    stale = 0
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        index, label, verdict = line.split("\t")
        if hits[int(index)] and positive[int(index)] == (label == "1"):
            verdicts[int(label)].append(verdict)
        else:
            stale += 1
    served = {1: int((hits & positive).sum()), 0: int((hits & ~positive).sum())}

    def share(label: int, accepted: tuple[str, ...]) -> float:
        return sum(v in accepted for v in verdicts[label]) / max(1, len(verdicts[label]))

    def estimate(accepted: tuple[str, ...]) -> float:
        right = sum(served[label] * share(label, accepted) for label in (1, 0))
        return right / max(1, served[1] + served[0])

    counts = {label: {v: verdicts[label].count(v) for v in ("same", "borderline", "different")} for label in (1, 0)}
    return [
        f"Re-reading the hits ({path.relative_to(HERE.parent)}; {stale} audited pairs are no longer hits): "
        f"of {len(verdicts[0])} sampled hits labelled non-paraphrase, {counts[0]['same']} ask the same question "
        f"as the cached one, {counts[0]['borderline']} are borderline and {counts[0]['different']} really ask "
        f"something else; of {len(verdicts[1])} labelled paraphrase, {counts[1]['same']} / "
        f"{counts[1]['borderline']} / {counts[1]['different']}. Weighted by the served counts, the share of "
        f"served answers that answer the question is about {estimate(('same',)):.2f} counting borderline pairs "
        f"as wrong and {estimate(('same', 'borderline')):.2f} counting them as right, against {served[1] / max(1, served[1] + served[0]):.3f} "
        "by the QQP labels: the labels' noise explains part of the gap to 0.90, not all of it.",
    ]


def table(sims: np.ndarray, positive: np.ndarray, approved: np.ndarray) -> list[str]:
    everything = np.ones_like(approved)
    lines = ["| threshold | precision | recall | false-hit rate | precision (guard) | recall (guard) | false-hit rate (guard) |",
             "|---|---|---|---|---|---|---|"]
    for t in THRESHOLDS:
        plain, guarded = scores(sims, positive, everything, t), scores(sims, positive, approved, t)
        mark = " **(default)**" if abs(t - DEFAULT_THRESHOLD) < 1e-9 else ""
        lines.append(
            f"| {t:.2f}{mark} | {plain['precision']:.3f} | {plain['recall']:.3f} | {plain['false_hits']:.3f} "
            f"| {guarded['precision']:.3f} | {guarded['recall']:.3f} | {guarded['false_hits']:.3f} |"
        )
    return lines


def by_kind(pairs: list[tuple[str, str, str]], sims: np.ndarray, approved: np.ndarray) -> list[str]:
    t = DEFAULT_THRESHOLD
    lines = [f"| kind | pairs | mean cosine | served at {t:.2f} without guard | served at {t:.2f} with guard |",
             "|---|---|---|---|---|"]
    kinds = sorted({k for _, _, k in pairs}, key=lambda k: (k != "paraphrase", k))
    for kind in kinds:
        mask = np.array([k == kind for _, _, k in pairs])
        plain = int((sims[mask] >= t).sum())
        guarded = int(((sims >= t) & approved)[mask].sum())
        n = int(mask.sum())
        lines.append(f"| {kind} | {n} | {sims[mask].mean():.3f} | {plain} ({plain / n:.0%}) | {guarded} ({guarded / n:.0%}) |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--cache", type=Path, default=None, help="keep embeddings in this folder between runs")
    args = parser.parse_args()

    qqp = load_qqp()
    qqp_sims, per_text = similarities(qqp, args.cache)
    qqp_reasons, guard_cost = verdicts(qqp)
    qqp_pos = np.array([k == "paraphrase" for _, _, k in qqp])
    qqp_ok = np.array([r is None for r in qqp_reasons])
    dev = qqp_dev_half(qqp)

    t = DEFAULT_THRESHOLD
    parts = {"development half": dev, "held-out half": ~dev, "whole set": np.ones_like(dev)}
    qqp_scores = {name: scores(qqp_sims[m], qqp_pos[m], qqp_ok[m], t) for name, m in parts.items()}
    adv = {}
    for label, path in (("development", ADVERSARIAL), ("held-out", HELDOUT)):
        pairs = load_adversarial(path)
        sims, _ = similarities(pairs, args.cache)
        reasons, _ = verdicts(pairs)
        pos = np.array([k == "paraphrase" for _, _, k in pairs])
        ok = np.array([r is None for r in reasons])
        adv[label] = (path, pairs, sims, pos, ok, scores(sims, pos, ok, t))

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        SECTION,
        "",
        f"MiniLM (all-MiniLM-L6-v2) cosine, Python {platform.python_version()}, default threshold {t:.2f}, "
        f"guard = `NearMissGuard`. "
        + (f"Embedding: {per_text * 1e3:.2f} ms per text in batches; " if per_text else "")
        + f"guard: {guard_cost * 1e6:.0f} µs per pair (2 shared cores, other jobs running).",
        "",
        "QQP split (deterministic, label-balanced): in file order, the first 1,000 paraphrases and the first "
        "1,000 non-paraphrases form the development half; the remaining 2,000 pairs are held out. The adversarial "
        "development set is bench/data/adversarial_pairs.tsv; bench/data/adversarial_heldout.tsv was written "
        "before the guard's revision and not used to tune it.",
        "",
        f"**At the defaults** (threshold {t:.2f}, guard on):",
        "",
        "| set | pairs | precision | recall | false-hit rate | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in parts.items():
        sc = qqp_scores[name]
        lines.append(
            f"| QQP {name} | {int(m.sum())} | {sc['precision']:.3f} | {sc['recall']:.3f} | {sc['false_hits']:.3f} "
            f"| precision >= 0.90, recall >= 0.50 | **{met(sc['precision'] >= 0.90 and sc['recall'] >= 0.50)}** |"
        )
    for label, (_, pairs, _, pos, _, sc) in adv.items():
        lines.append(
            f"| adversarial {label} | {len(pairs)} ({int(pos.sum())} paraphrases) | {sc['precision']:.3f} "
            f"| {sc['recall']:.3f} | {sc['false_hits']:.3f} | near misses served <= 10%, paraphrases hit >= 80% "
            f"| **{met(sc['false_hits'] <= 0.10 and sc['recall'] >= 0.80)}** |"
        )
    lines += [
        "",
        *NOTES,
        "",
        *audit((qqp_sims >= t) & qqp_ok, qqp_pos),
        "",
        "### (a) Quora question pairs, development half",
        "",
        *table(qqp_sims[dev], qqp_pos[dev], qqp_ok[dev]),
        "",
        "### (a) Quora question pairs, held-out half",
        "",
        *table(qqp_sims[~dev], qqp_pos[~dev], qqp_ok[~dev]),
        "",
        "### (a) Quora question pairs, whole set",
        "",
        *table(qqp_sims, qqp_pos, qqp_ok),
        "",
        "Guard verdicts on QQP pairs at or above the default threshold (reason: paraphrases / non-paraphrases vetoed):",
        "",
        *_reason_lines(qqp_reasons, qqp_pos, qqp_sims >= t),
    ]
    for label, (path, pairs, sims, pos, ok, _) in adv.items():
        lines += [
            "",
            f"### Adversarial LLM prompts, {label} set ({path.relative_to(HERE.parent)})",
            "",
            *table(sims, pos, ok),
            "",
            *by_kind(pairs, sims, ok),
        ]
    lines.append("")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(HERE / "RESULTS.md", SECTION, body)
    return 0


NOTES = [
    "How the default was chosen: 0.80 is the highest-recall threshold that, with the guard, serves no near "
    "miss of the adversarial development set. The held-out adversarial set was written after that choice "
    "and before any later change, and is never tuned on: its numbers are the honest estimate for LLM-style "
    "prompts.",
    "",
    "A revision of the guard was measured and set aside: it vetoed one-sided additions only on a bare topic, "
    "told changed from added numbers and names, and read ordinals, acronyms and a few synonyms. Chosen on "
    "development data (threshold 0.83), it raised QQP recall to 0.530 at the same precision (0.854) but, on "
    "the held-out adversarial set, served 11.5% of near misses and hit 76% of paraphrases (both targets "
    "missed), where the guard kept here serves 9% and hits 82%. A wrong hit serves a wrong answer while a "
    "veto costs one upstream call, so the stricter guard stays the default.",
    "",
    "What is not met, and why: QQP precision >= 0.90 at recall >= 0.50 is out of reach with MiniLM. At "
    "recall 0.50, plain cosine gives precision 0.84 (development half) / 0.89 (held-out half); a logistic "
    "regression or gradient-boosted trees over cosine, a BERTScore-style token alignment from MiniLM's token "
    "embeddings, content-word overlap and the guard's verdicts, fitted on one half, reached only 0.86-0.87 on "
    "the other; cosine adjusted by content-word Jaccard and a guard that tolerates additions above a higher "
    "cosine did not move that frontier either. The guard costs QQP recall: its entity and qualifier rules "
    "veto many Quora paraphrases that add or drop a word. The development-set numbers are optimistic. A "
    "question-word rule (veto when one asks how and the other what, why, where, ...) was measured too: among "
    "the hits at the defaults such pairs are 129 paraphrases to 25 non-paraphrases, so it lowers precision; "
    "not adopted.",
    "",
    "Measured later, as precision at recall 0.50 on the development / held-out halves (plain cosine: 0.84 / "
    "0.885): adding the cosine of MiniLM's mean-pooled earlier layers, 0.82-0.84 / 0.84-0.88; adding the "
    "cosine of a second view of each text (lower-cased without punctuation, or its content words only), "
    "0.83-0.85 / 0.85-0.88; lowering the cosine by how crowded the cache is around the two questions (CSLS, "
    "mean similarity to the k = 1-30 nearest entries), 0.75-0.84 / 0.77-0.86. Raising it by that density "
    "instead reaches 0.89 / 0.91 (k = 10), but only by rewarding questions that have many near neighbours "
    "in the sample: Quora's popular questions were paired with their duplicates more often (the 'magic "
    "features' of the Kaggle competition on this data), and in a real cache the rule would loosen the "
    "threshold exactly where many distinct questions crowd together. Not adopted.",
    "",
    "Measured in a fourth round, as precision at recall 0.50 on the development / held-out halves (plain "
    "cosine 0.84 / 0.885), everything fitted on the development half or unsupervised on its texts: "
    "re-weighting MiniLM's token embeddings before pooling (SIF with general-English word frequencies from "
    "wordfreq, IDF from the questions, dropping special tokens or punctuation, max pooling), 0.78-0.84 / "
    "0.78-0.885; removing the mean and the top 1-15 principal components (all-but-the-top) or whitening, "
    "0.81-0.84 / 0.84-0.885; a threshold that depends on the shorter question's length, 0.85-0.86 / "
    "0.876-0.887; a learned diagonal metric (logistic regression on the elementwise product of the two "
    "vectors, regularisation chosen by cross-validation), 0.885 / 0.893, a gain within the held-out half's "
    "noise (bootstrap 95% interval of the difference -0.014 to +0.031) that, with the guard, gives either "
    "recall 0.545 at precision 0.832 or precision 0.859 at recall 0.489 and then misses the adversarial "
    "paraphrase target (79%). MiniLM was trained with mean pooling on data that includes Quora duplicates; "
    "reshaping its space or its pooling only loses precision. Not adopted.",
]


def _reason_lines(reasons: list[str | None], positive: np.ndarray, considered: np.ndarray) -> list[str]:
    counts: dict[str, list[int]] = {}
    for reason, pos, seen in zip(reasons, positive, considered):
        if reason is not None and seen:
            counts.setdefault(reason, [0, 0])[0 if pos else 1] += 1
    return [f"- {reason}: {p} / {n}" for reason, (p, n) in sorted(counts.items())] or ["- (none)"]


if __name__ == "__main__":
    sys.exit(main())
