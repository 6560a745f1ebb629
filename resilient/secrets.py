"""Keeping API keys out of everything the toolkit prints.

Keys must never reach logs, stats, reprs, exception messages or cache keys.
Where a key has to be identified (per-key stats, "key disabled" warnings) the
toolkit shows a :func:`fingerprint`: the key's recognisable prefix and its
last four characters, e.g. ``sk-…a1b2``. :func:`redact` scrubs free text that
came from elsewhere (a provider's error message can echo the key it got).
"""

from __future__ import annotations

import re

__all__ = ["fingerprint", "redact"]

# Prefixes that identify a provider without revealing anything secret.
_PREFIXES = ("sk-ant-", "sk-proj-", "sk-", "gsk_", "hf_", "AIza", "AKIA", "xai-", "pplx-")

# Things that look like credentials: provider key formats, and the value of an
# Authorization / x-api-key style assignment.
_KEY_PATTERNS = re.compile(
    r"""
    (?:sk-(?:ant-|proj-)?|gsk_|hf_|xai-|pplx-)[A-Za-z0-9_\-]{8,}   # OpenAI, Anthropic, Groq, HF, xAI, Perplexity
    | AIza[0-9A-Za-z_\-]{20,}                                     # Google
    | AKIA[0-9A-Z]{16}                                            # AWS access key id
    | (?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*                       # Authorization: Bearer ...
    | (?i:(?:api[_-]?key|x-api-key|x-goog-api-key|key|token)["']?\s*[:=]\s*["']?)[A-Za-z0-9._\-]{12,}
    """,
    re.VERBOSE,
)


def fingerprint(key: str | None) -> str:
    """A short, safe name for ``key``: known prefix + ``…`` + last four characters.

    Keys too short to have a safe tail are shown as ``…`` alone.
    """
    if not key:
        return "<none>"
    prefix = next((p for p in _PREFIXES if key.startswith(p)), "")
    tail = key[-4:] if len(key) >= len(prefix) + 12 else ""
    return f"{prefix}…{tail}"


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by its fingerprint."""
    if not text:
        return text
    return _KEY_PATTERNS.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    # Keep the "api_key=" / "Bearer " part readable, mask only the secret.
    head = re.match(r"(?i)(bearer\s+|(?:api[_-]?key|x-api-key|x-goog-api-key|key|token)[\"']?\s*[:=]\s*[\"']?)", found)
    if head:
        return head.group(0) + fingerprint(found[head.end():])
    return fingerprint(found)
