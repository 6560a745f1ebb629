"""Fault scripts, asserted exactly on a FakeClock."""

from __future__ import annotations

import json

import httpx
import pytest

from resilient.testing.emulator import Emulator

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def http():
    # One client for the module: creating one per request costs ~30 ms of TLS setup.
    with httpx.Client() as client:
        yield client


KEY = "sk-" + "test-aaaaaaaaaaaaaaaa1111"
AUTH = {"authorization": "Bearer " + KEY}


def chat(http, emu, key=KEY):
    return http.post(emu.url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"})


def test_rate_limit_20_immediate_requests_give_5_successes_and_15_exact_429s(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=5, burst=5)
    replies = [chat(http, emulator) for _ in range(20)]
    assert [r.status_code for r in replies] == [200] * 5 + [429] * 15
    for reply in replies[5:]:
        assert float(reply.headers["retry-after"]) == pytest.approx(0.2, abs=0.05)
        assert reply.headers["retry-after-ms"] == "200"
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies[:5]] == ["4", "3", "2", "1", "0"]


def test_rate_limit_refills_at_rps(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=5, burst=5)
    assert [chat(http, emulator).status_code for _ in range(6)] == [200] * 5 + [429]
    fake_clock.advance(0.2)
    assert [chat(http, emulator).status_code for _ in range(2)] == [200, 429]
    fake_clock.advance(1.0)
    assert [chat(http, emulator).status_code for _ in range(6)] == [200] * 5 + [429]


def test_rate_limit_bucket_is_per_key(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1)
    assert chat(http, emulator, key="sk-one-aaaaaaaaaaaaaaaaa").status_code == 200
    assert chat(http, emulator, key="sk-two-bbbbbbbbbbbbbbbbb").status_code == 200
    assert chat(http, emulator, key="sk-one-aaaaaaaaaaaaaaaaa").status_code == 429


def test_tokens_per_minute_limit(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=100, burst=100, tpm=30)  # refills one token every 2 s
    first = chat(http, emulator)
    assert first.status_code == 200
    used = 30 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert first.headers["x-ratelimit-reset-tokens"] == f"{2 * used}s"  # time to refill what it used
    statuses = [chat(http, emulator).status_code for _ in range(30 // used)]
    assert statuses[-1] == 429 and statuses.count(200) == 30 // used - 1
    refused = chat(http, emulator)
    assert (refused.status_code, refused.headers["retry-after-ms"]) == (429, str(2000 * used))
    fake_clock.advance(2 * used - 0.001)
    assert chat(http, emulator).status_code == 429
    fake_clock.advance(0.001)
    assert chat(http, emulator).status_code == 200


def test_retry_after_is_rounded_up_to_the_millisecond_never_down_nor_to_zero(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=3, burst=1)  # the true wait is 1/3 s: 333.33... ms
    assert chat(http, emulator).status_code == 200
    refused = chat(http, emulator)
    assert (refused.headers["retry-after-ms"], refused.headers["retry-after"]) == ("334", "0.334")
    assert "try again in 0.334s" in refused.json()["error"]["message"]
    fake_clock.advance(0.333)  # the old, rounded-down hint: still 1/3000 s short
    early = chat(http, emulator)
    assert early.status_code == 429
    assert (early.headers["retry-after-ms"], early.headers["retry-after"]) == ("1", "0.001")  # not "0"


@pytest.mark.parametrize(("rps", "reset"), [(3, "334ms"), (0.75, "1.334s"), (1 / 90, "1m30s"), (1 / 61.5, "1m1.5s")])
def test_openai_reset_headers_are_rounded_up_to_the_millisecond(http, emulator, fake_clock, rps, reset):
    emulator.add_fault("rate_limit", rps=rps, burst=1)
    assert chat(http, emulator).headers["x-ratelimit-reset-requests"] == reset


@pytest.mark.parametrize("header", ["retry-after-ms", "retry-after"])
@pytest.mark.parametrize("rps", [3, 9, 7, 2.5, 10, 20])
def test_a_client_waiting_exactly_the_retry_after_is_admitted(http, emulator, fake_clock, rps, header):
    emulator.add_fault("rate_limit", rps=rps, burst=1)
    assert chat(http, emulator).status_code == 200
    for _ in range(5):  # several refills, so float noise in the bucket's level has a chance to build up
        refused = chat(http, emulator)
        assert refused.status_code == 429
        wait = float(refused.headers[header]) / (1000 if header == "retry-after-ms" else 1)
        assert wait >= 1 / rps
        fake_clock.advance(wait)
        assert chat(http, emulator).status_code == 200


def test_outage_answers_its_status_only_inside_its_window(http, emulator, fake_clock):
    emulator.add_fault("outage", start=5, duration=10, status=503)
    seen = {}
    for t in (0, 4.999, 5, 10, 14.999, 15, 20):
        fake_clock.advance(t - fake_clock.monotonic())
        seen[t] = chat(http, emulator).status_code
    assert seen == {0: 200, 4.999: 200, 5: 503, 10: 503, 14.999: 503, 15: 200, 20: 200}


def test_outage_can_refuse_connections(http, emulator):
    emulator.add_fault("outage", refuse=True)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(http, emulator)
    assert emulator.requests[-1].status is None


def test_error_rate_is_seeded_and_reproducible(http, fake_clock):
    def run():
        with Emulator(clock=fake_clock) as emu:
            emu.add_fault("error_rate", rate=0.3, status=502, seed=7)
            return [chat(http, emu).status_code for _ in range(40)]

    first = run()
    assert first == run()
    assert set(first) == {200, 502} and 5 <= first.count(502) <= 20


def test_latency_waits_on_the_emulator_clock(http, emulator, fake_clock):
    emulator.add_fault("latency", seconds=2.5)
    chat(http, emulator)
    assert fake_clock.sleeps == [2.5]


def test_distributed_latency_stays_in_range(http, emulator, fake_clock):
    emulator.add_fault("latency", seconds=1, max_seconds=3, seed=1)
    for _ in range(10):
        chat(http, emulator)
    assert len(fake_clock.sleeps) == 10 and all(1 <= s <= 3 for s in fake_clock.sleeps)
    assert len(set(fake_clock.sleeps)) > 1


def test_slow_stream_delays_every_chunk(http, emulator, fake_clock):
    emulator.add_fault("slow_stream", seconds=0.5)
    body = http.post(emulator.url + "/v1/chat/completions", json=CHAT | {"stream": True}).text
    assert fake_clock.sleeps == [0.5] * body.count("data: ")


def test_malformed_invalid_json_and_wrong_shape(http, emulator):
    handle = emulator.add_fault("malformed", mode="invalid_json")
    with pytest.raises(json.JSONDecodeError):
        chat(http, emulator).json()
    handle.remove()
    emulator.add_fault("malformed", mode="wrong_shape")
    assert "choices" not in chat(http, emulator).json()


def test_malformed_wrong_shape_sends_the_given_body_in_the_replys_framing(http, emulator):
    emulator.add_fault("malformed", mode="wrong_shape", body={"choices": [{"message": None}]})
    assert chat(http, emulator).json() == {"choices": [{"message": None}]}
    stream = http.post(emulator.url + "/v1/chat/completions", json=CHAT | {"stream": True}, headers=AUTH).text
    assert stream and set(stream.split("\n\n")) == {'data: {"choices":[{"message":null}]}', ""}
    with pytest.raises(ValueError):
        emulator.add_fault("malformed", mode="invalid_json", body={})


def test_truncate_stream_sends_an_in_stream_error_of_the_given_status(http, emulator):
    emulator.add_fault("truncate_stream", after=1, error=True, status=429, provider="anthropic")
    stream = http.post(
        emulator.url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
    ).text
    assert stream.endswith('event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Rate limit exceeded mid-stream."}}\n\n')
    with pytest.raises(ValueError):
        emulator.add_fault("truncate_stream", error=True, status=200)


def test_bad_key_gets_401_and_other_keys_pass(http, emulator):
    emulator.add_fault("bad_key", keys=["sk-revoked-000000000000"])
    assert chat(http, emulator, key="sk-revoked-000000000000").status_code == 401
    assert chat(http, emulator, key="sk-fine-00000000000000000").status_code == 200


def test_bad_key_does_not_spend_rate_limit_tokens(http, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1)
    emulator.add_fault("bad_key", keys="sk-revoked-000000000000")
    assert chat(http, emulator, key="sk-revoked-000000000000").status_code == 401
    assert chat(http, emulator, key="sk-revoked-000000000000").status_code == 401


def test_faults_scoped_by_provider_and_path(http, emulator):
    emulator.add_fault("outage", provider="anthropic", status=500)
    emulator.add_fault("outage", path="/v1/embeddings", status=502)
    assert chat(http, emulator).status_code == 200
    assert http.post(emulator.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH).status_code == 502


def test_removed_and_cleared_faults_stop_acting(http, emulator):
    handle = emulator.add_fault("outage", status=500)
    assert chat(http, emulator).status_code == 500
    handle.remove()
    assert chat(http, emulator).status_code == 200
    emulator.add_fault("outage", status=500)
    emulator.clear_faults()
    assert chat(http, emulator).status_code == 200


def test_requests_record_time_provider_key_fingerprint_status_and_faults(http, emulator, fake_clock):
    emulator.add_fault("outage", start=1, duration=1, status=503)
    chat(http, emulator, key="sk-" + "test-aaaaaaaaaaaaaaaa1111")
    fake_clock.advance(1.5)
    chat(http, emulator, key="sk-" + "test-aaaaaaaaaaaaaaaa1111")
    records = emulator.requests
    assert [(r.time, r.provider, r.path, r.key, r.status, r.faults) for r in records] == [
        (0.0, "openai", "/v1/chat/completions", "sk-…1111", 200, ()),
        (1.5, "openai", "/v1/chat/completions", "sk-…1111", 503, ("outage",)),
    ]


def test_unknown_fault_kind_and_bad_params_are_rejected(http, emulator):
    with pytest.raises(ValueError):
        emulator.add_fault("earthquake")
    with pytest.raises(TypeError):
        emulator.add_fault("latency", second=1)
    with pytest.raises(ValueError):
        emulator.add_fault("outage", status=200)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"inputs": "hi"}),
        ("/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}),
        ("/v3/chat/completions", CHAT),
        ("/v1/chatqna", {"messages": "hi", "stream": False}),
    ],
    ids=["tgi", "ollama", "ovms", "opea"],
)
def test_a_local_servers_429_carries_no_retry_after(http, emulator, fake_clock, path, body):
    """Only providers that send Retry-After get it: a client must not learn to rely on a hint TGI or Ollama never give."""
    emulator.add_fault("rate_limit", rps=1, burst=1)
    http.post(emulator.url + path, json=body)
    reply = http.post(emulator.url + path, json=body)
    assert reply.status_code == 429 and "retry-after" not in reply.headers and "retry-after-ms" not in reply.headers


def test_a_hosted_providers_missing_key_is_refused_before_any_fault(http, emulator):
    """The provider's front door answers a keyless request: no fault sees it, so none counts it as a hit."""
    bad_key = emulator.add_fault("bad_key", keys=[None])
    reply = http.post(emulator.url + "/v1/chat/completions", json=CHAT)
    assert reply.status_code == 401 and reply.json()["error"]["code"] is None
    assert (emulator.requests[-1].faults, bad_key.hits) == ((), 0)
