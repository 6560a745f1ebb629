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

# Prefixes that identify a provider without revealing anything secret (longest first where one extends another).
_PREFIXES = (
    "sk-ant-", "sk-proj-", "sk-", "gsk_", "hf_", "AIza", "AKIA", "ASIA", "ABSK", "bedrock-api-key-", "xai-", "pplx-",
)  # fmt: skip

# Things that look like credentials, as one regular expression whose every
# alternative starts with a literal character: the engine then skips, in C,
# every position that cannot start one (this keeps redact within a few
# microseconds per hundred characters). Hence ``_word`` and ``_caseless``
# below instead of ``\b`` and ``(?i)`` at the front. An alternative whose
# match begins with a field name or scheme to keep readable ("api_key=",
# "Bearer ") captures the secret after it in its one group.
_B64 = r"[A-Za-z0-9._~+/=\-]"  # base64, base64url and token characters
_QUOTE = r"""\\?["']?"""  # a quote, possibly escaped (JSON inside a JSON string)
_ASSIGN = rf"{_QUOTE}\s*[:=]\s*{_QUOTE}"
# Not a fingerprint already ("api_key=sk-proj-…a1b2"), so that redact is idempotent.
_MASKED = "(?!(?:" + "|".join(map(re.escape, _PREFIXES)) + ")…)"


def _word(prefix: str, rest: str) -> list[str]:
    """``prefix`` then ``rest``; the prefix at the start of a word (not right after a letter or digit)...

    ...or anywhere if an unbroken run of 20 letters and digits follows: a key
    glued to the text before it has one, ``whisk-large-v3-turbo`` does not.
    """
    first, tail = re.escape(prefix[0]), re.escape(prefix[1:])
    return [
        rf"{first}(?<![A-Za-z0-9]{first}){tail}{rest}",
        rf"{first}{tail}(?=[A-Za-z0-9_\-]*?[A-Za-z0-9]{{20}}){rest}",
    ]


def _caseless(word: str, rest: str) -> list[str]:
    """``word`` in any case, then ``rest``; one alternative per case of its first letter."""
    tail = f"(?i:{word[1:]})" if len(word) > 1 else ""
    return [f"{first}{tail}{rest}" for first in dict.fromkeys((word[0].lower(), word[0].upper()))]


# A value after these (":" or "=") is a secret, base64 characters allowed. Each is also the end of
# longer names, kept readable: x-goog-api-key, aws_secret_access_key, client_secret, X-Amz-Security-Token,
# session_token, access_token, db_password...
_SECRET_FIELDS = ("api[_-]?key", "secret_?access_?key", "secret", "token", "passw(?:or)?d")
_KEY_PATTERNS = re.compile(
    "|".join(
        [
            # Provider key formats: OpenAI, Anthropic, Groq, Hugging Face, xAI, Perplexity, Google, AWS key ids
            # (long-term AKIA, temporary ASIA), Bedrock API keys (long-term ABSK, short-term bedrock-api-key-).
            *_word("sk-", r"(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}"),
            *(p for prefix in ("gsk_", "hf_", "xai-", "pplx-") for p in _word(prefix, r"[A-Za-z0-9_\-]{8,}")),
            r"AIza[0-9A-Za-z_\-]{20,}",  # these formats are strict enough to be found anywhere
            r"A(?:KI|SI)A[0-9A-Z]{16}\b",
            r"ABSK[A-Za-z0-9+/]{20,}=*",
            *_word("bedrock-api-key-", r"[A-Za-z0-9+/]{20,}=*"),
            # Bearer <token>; (Proxy-)Authorization: [Basic|Token|ApiKey] <token> (Bearer: the one before).
            *_caseless("bearer", rf"\s+{_MASKED}({_B64}{{8,}})"),
            *_caseless("authorization", rf"{_ASSIGN}(?i:(?:basic|token|apikey)\s+)?(?!(?i:bearer)\s){_MASKED}({_B64}{{8,}})"),
            # Secret fields, also in JSON and escaped JSON: the value may hold / + = (AWS secret keys, session tokens).
            *(p for name in _SECRET_FIELDS for p in _caseless(name, rf"{_ASSIGN}{_MASKED}({_B64}{{8,}})")),
            # Any other *key field (x-subscription-key, ...): not / (object keys are paths).
            *_caseless("key", rf"{_ASSIGN}{_MASKED}([A-Za-z0-9._\-]{{12,}})"),
            # scheme://user:password@host
            r"://[^\s:/?#@]*:([^\s/?#@…]+)(?=@)",
        ]
    )
)

# A bare AWS secret access key: 40 base64 characters. So many other things
# are 40 base64 characters (hashes, ids) that these are masked only in a text
# that also speaks of credentials (it contains "AKIA" or "ASIA", the start of
# an AWS key id, or "secret" or "credential" in any case), and only if they
# mix upper and lower case (a hex SHA-1 never does).
_AWS_CONTEXT_WORDS = ("secret", "credential")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")


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
    """``text`` with anything that looks like a credential replaced by its fingerprint.

    Masked: the known provider key formats (OpenAI, Anthropic, Groq, Hugging
    Face, Google, xAI, Perplexity, AWS access key ids ``AKIA``/``ASIA``,
    Bedrock API keys), the token of ``Bearer`` and of an ``Authorization``
    header (``Basic`` included), the value after a secret-looking field name
    (``api_key``, ``token``, ``aws_secret_access_key``, ``X-Amz-Security-Token``,
    ``password``, ``client_secret``, ``*key``...) with ``=`` or ``:`` in
    plain, quoted or escaped-JSON form, the password of ``scheme://user:pw@host``,
    and a bare 40-character AWS secret key when the text also speaks of
    credentials (see ``_AWS_CONTEXT_WORDS``). Key prefixes count only at the start of
    a word (``whisk-large-v3`` is left alone). Idempotent.
    """
    if not text:
        return text
    lowered = text.lower()  # the context is looked for before the key ids are masked
    aws_context = "AKIA" in text or "ASIA" in text or any(word in lowered for word in _AWS_CONTEXT_WORDS)
    text = _KEY_PATTERNS.sub(_mask_match, text)
    return _AWS_SECRET.sub(_mask_aws_secret, text) if aws_context else text


def _mask_match(match: re.Match[str]) -> str:
    # Keep the "api_key=" / "Bearer " part readable: mask only the one group, if any, else the whole match.
    if not match.lastindex:
        return fingerprint(match.group(0))
    start = match.start(match.lastindex) - match.start()
    found = match.group(0)
    return found[:start] + fingerprint(found[start:])


def _mask_aws_secret(match: re.Match[str]) -> str:
    found = match.group(0)
    mixed_case = not found.islower() and not found.isupper()
    return fingerprint(found) if mixed_case else found
