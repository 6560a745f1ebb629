"""Keys never reach printed text; where one must be named, a masked fingerprint does.

Fake keys are built by concatenation so that this file holds nothing a secret
scanner would flag.
"""

from __future__ import annotations

import json

from resilient.secrets import fingerprint, redact

OPENAI_KEY = "sk-" + "Q" * 26 + "a1b2"
PROJECT_KEY = "sk-" + "proj-" + "R" * 30 + "c3d4"
ANTHROPIC_KEY = "sk-" + "ant-" + "api03-" + "S" * 30 + "e5f6"
GROQ_KEY = "gsk" + "_" + "T" * 30 + "g7h8"
GOOGLE_KEY = "AI" + "za" + "U" * 30 + "i9j0"
AWS_KEY_ID = "AK" + "IA" + "ABCDEFGHIJKLWXYZ"


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_of_an_openai_key_is_prefix_ellipsis_last_four():
    assert fingerprint(OPENAI_KEY) == "sk-…a1b2"


def test_fingerprint_keeps_the_longest_known_prefix():
    assert fingerprint(PROJECT_KEY) == "sk-proj-…c3d4"
    assert fingerprint(ANTHROPIC_KEY) == "sk-ant-…e5f6"
    assert fingerprint(GROQ_KEY) == "gsk_…g7h8"
    assert fingerprint(GOOGLE_KEY) == "AIza…i9j0"


def test_fingerprint_of_a_key_without_known_prefix_shows_only_the_tail():
    assert fingerprint("Z" * 28 + "wxyz") == "…wxyz"


def test_fingerprint_of_a_short_key_shows_no_tail():
    assert fingerprint("sk-" + "abcd") == "sk-…"
    assert fingerprint("sk-" + "a" * 11) == "sk-…"
    assert fingerprint("short") == "…"


def test_fingerprint_shows_the_tail_from_twelve_characters_after_the_prefix():
    assert fingerprint("sk-" + "a" * 8 + "1234") == "sk-…1234"


def test_fingerprint_of_no_key():
    assert fingerprint(None) == "<none>"
    assert fingerprint("") == "<none>"


def test_fingerprint_never_contains_the_secret_part():
    for key in (OPENAI_KEY, PROJECT_KEY, ANTHROPIC_KEY, GROQ_KEY, GOOGLE_KEY):
        assert key not in fingerprint(key)
        assert len(fingerprint(key)) <= len("sk-proj-…") + 4


# --------------------------------------------------------------------------- redact


def test_redact_masks_a_bare_key_in_free_text():
    assert redact(f"Incorrect API key provided: {OPENAI_KEY}.") == "Incorrect API key provided: sk-…a1b2."


def test_redact_masks_every_provider_key_format():
    text = " ".join([OPENAI_KEY, PROJECT_KEY, ANTHROPIC_KEY, GROQ_KEY, GOOGLE_KEY, AWS_KEY_ID])
    assert redact(text) == "sk-…a1b2 sk-proj-…c3d4 sk-ant-…e5f6 gsk_…g7h8 AIza…i9j0 AKIA…WXYZ"


def test_redact_keeps_bearer_and_masks_the_token():
    assert redact(f"Authorization: Bearer {OPENAI_KEY}") == "Authorization: Bearer sk-…a1b2"


def test_redact_masks_a_bearer_token_of_unknown_format():
    token = "eyJhbGciOi" + "J" * 20 + "tail"
    assert redact(f"authorization: bearer {token}") == "authorization: bearer …tail"


def test_redact_masks_api_key_assignments():
    assert redact(f"api_key={OPENAI_KEY}") == "api_key=sk-…a1b2"
    assert redact("called with api-key: " + "m" * 20 + "9876") == "called with api-key: …9876"
    assert redact("x-api-key=" + "n" * 20 + "5432") == "x-api-key=…5432"


def test_redact_masks_keys_inside_a_json_body():
    body = json.dumps({"error": {"message": f"bad key {ANTHROPIC_KEY}"}, "api_key": "p" * 20 + "zz11"})
    out = redact(body)
    assert json.loads(out) == {"error": {"message": "bad key sk-ant-…e5f6"}, "api_key": "…zz11"}


def test_redact_masks_keys_in_a_headers_repr():
    headers = {"x-api-key": ANTHROPIC_KEY, "Authorization": f"Bearer {OPENAI_KEY}"}
    assert redact(repr(headers)) == "{'x-api-key': 'sk-ant-…e5f6', 'Authorization': 'Bearer sk-…a1b2'}"


def test_redact_leaves_ordinary_text_alone():
    text = "429 Too Many Requests: rate limit reached for gpt-4o-mini, retry in 20s"
    assert redact(text) == text


def test_redact_of_empty_text():
    assert redact("") == ""


def test_redact_is_idempotent():
    once = redact(f"Bearer {OPENAI_KEY} and api_key={ANTHROPIC_KEY}")
    assert redact(once) == once
