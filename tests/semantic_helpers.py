"""Test helpers shared by the semantic cache's test modules (local and shared through Redis)."""

from __future__ import annotations

import hashlib

import numpy as np

from resilient.semantic_cache import SemanticCache


class WordsEmbedder:
    """Deterministic bag-of-words vectors (for storage and sharing mechanics, not meaning)."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace("?", " ").split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def counting(cache: SemanticCache, label: str = ""):
    """A function behind ``cache`` that records each upstream call; answers say who answered (``label``)."""
    calls: list[str] = []

    @cache
    def ask(prompt: str, **kwargs):
        calls.append(prompt)
        return {"text": f"answer{label} to {prompt}", "usage": {"input_tokens": 10, "output_tokens": 20}}

    return ask, calls
