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


# --------------------------------------------------------------------------- redact: more formats

AWS_TEMP_KEY_ID = "AS" + "IA" + "QRSTUVWXYZ234567"
AWS_SECRET = "wJalrXUtnFEMI" + "/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # 40 characters, with /
SESSION_TOKEN = "FwoGZXIvYXdzEJr" + "/" * 10 + "wEaDO+" + "abcdefghijklmnopqrstuvwxyz0123456789+/="
BEDROCK_KEY = "AB" + "SK" + "QmVkcm9ja0FQSUtleS1" + "V" * 40 + "ODk="
BEDROCK_SHORT_KEY = "bedrock-" + "api-key-" + "YmVkcm9jay5hbWF6b25h" + "W" * 40 + "bg=="


def test_redact_masks_aws_temporary_key_ids():
    assert redact(f"id {AWS_TEMP_KEY_ID} denied") == "id ASIA…4567 denied"
    assert redact(json.dumps({"AccessKeyId": AWS_TEMP_KEY_ID})) == '{"AccessKeyId": "ASIA…4567"}'


def test_redact_masks_a_whole_aws_secret_key_after_its_field_name():
    for text in (f"aws_secret_access_key={AWS_SECRET}", f"AWS_SECRET_ACCESS_KEY = {AWS_SECRET}",
                 json.dumps({"SecretAccessKey": AWS_SECRET})):  # fmt: skip
        out = redact(text)
        assert "K7MDENG" not in out and "bPxRfiCY" not in out, out
        assert out.replace(" ", "").endswith(("=…EKEY", ':"…EKEY"}')), out


def test_redact_masks_a_whole_session_token_with_slashes_plus_and_padding():
    out = redact(f"X-Amz-Security-Token: {SESSION_TOKEN}")
    assert out == "X-Amz-Security-Token: …9+/=", out
    out = redact(json.dumps({"SessionToken": SESSION_TOKEN}))
    assert "abcdefghij" not in out and "EJr" not in out


def test_redact_masks_a_bare_aws_secret_key_only_in_a_credential_context():
    assert redact(f"{AWS_KEY_ID} {AWS_SECRET}") == "AKIA…WXYZ …EKEY"
    assert redact(f"secret {AWS_SECRET}") == "secret …EKEY"
    assert redact(f"Credentials: {AWS_SECRET},") == "Credentials: …EKEY,"


def test_redact_leaves_40_character_hashes_and_ids_alone():
    sha1 = "3f786850e387550fdab836ed7e6dc881de23001b"
    for text in (f"commit {sha1}: secret rotated", f"etag {AWS_SECRET} without context", "SECRET " + "A1" * 20):
        assert redact(text) == text


def test_redact_masks_basic_authorization():
    basic = "dXNlcjpzdXBl" + "cnNlY3JldHBhc3N3b3Jk"
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic …b3Jk"
    assert redact(repr({"Proxy-Authorization": f"Basic {basic}"})) == "{'Proxy-Authorization': 'Basic …b3Jk'}"


def test_redact_leaves_the_word_basic_and_a_bare_authorization_alone():
    text = "basic authentication required; Authorization header missing"
    assert redact(text) == text


def test_redact_masks_a_password_in_a_url():
    password = "supersecret" + "password123"
    assert redact(f"cannot reach https://user:{password}@proxy.example/v1") == (
        "cannot reach https://user:…d123@proxy.example/v1"
    )
    assert redact(f"redis://:{password}@cache:6379/0") == "redis://:…d123@cache:6379/0"


def test_redact_leaves_urls_without_a_password_alone():
    text = "see https://user@host/x and http://host:8080/a@b and https://platform.openai.com/account/api-keys"
    assert redact(text) == text


def test_redact_masks_keys_inside_escaped_json():
    inner = json.dumps({"api_key": "p" * 24 + "zz11", "other": AWS_TEMP_KEY_ID})
    out = redact(json.dumps(inner))
    assert json.loads(json.loads(out)) == {"api_key": "…zz11", "other": "ASIA…4567"}


def test_redact_masks_bedrock_api_keys_anywhere():
    assert redact(f"bad key {BEDROCK_KEY}") == "bad key ABSK…ODk="
    assert redact(f"rejected {BEDROCK_SHORT_KEY}.") == "rejected bedrock-api-key-…bg==."


def test_redact_masks_secret_fields_of_any_case():
    assert redact("client_secret=" + "c" * 20 + "0000") == "client_secret=…0000"
    assert redact("DB_PASSWORD: 'hunter22'") == "DB_PASSWORD: '…'"
    assert redact('"Access_Token": "' + "a.b-c_d" * 4 + '"') == '"Access_Token": "…-c_d"'
    assert redact("SESSION_TOKEN=" + "s" * 20 + "/+==") == "SESSION_TOKEN=…/+=="


def test_redact_does_not_take_key_prefixes_inside_words():
    text = "model whisk-large-v3-turbo not found; disk-usage-warning-level; ask-questions-mode"
    assert redact(text) == text


def test_redact_still_masks_a_key_glued_to_the_text_before_it():
    assert redact("prefix" + OPENAI_KEY) == "prefixsk-…a1b2"


def test_redact_keeps_s3_object_keys_readable():
    text = "NoSuchKey: The specified key does not exist. Key: datasets/train/part-00001.parquet"
    assert redact(text) == text


def test_redact_is_idempotent_on_every_new_format():
    text = " ".join([AWS_TEMP_KEY_ID, f"aws_secret_access_key={AWS_SECRET}", f"X-Amz-Security-Token: {SESSION_TOKEN}",
                     "Authorization: Basic " + "Z" * 20, "https://u:" + "p" * 20 + "@h", BEDROCK_KEY,
                     f"{AWS_KEY_ID} {AWS_SECRET}"])  # fmt: skip
    once = redact(text)
    assert redact(once) == once
    for secret in (AWS_SECRET[4:-4], SESSION_TOKEN[4:-4], "Z" * 16, "p" * 16, BEDROCK_KEY[4:-4], AWS_TEMP_KEY_ID[4:-4]):
        assert secret not in once


def test_redact_is_idempotent_on_a_prefixed_fingerprint_after_a_field_name():
    for head in ("api_key=", "key: ", "Bearer ", "Authorization: ", '\\"api_key\\": \\"'):
        for key in (PROJECT_KEY, "bedrock-" + "api-key-" + "W" * 40):
            once = redact(head + key)
            assert redact(once) == once, once


def test_redact_masks_a_key_cut_by_an_ellipsis():
    assert redact("api_key=" + "k" * 16 + "…") == "api_key=…kkkk…"
