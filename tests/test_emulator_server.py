"""The server itself: lifecycle, concurrency, clean shutdown, secrets, scripts."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from resilient.clock import FakeClock
from resilient.testing.emulator import Emulator

KEY = "sk-" + "secret-0123456789abcdefXYZW"  # built, so no literal looks like a real key
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": "Bearer " + "sk-" + "test-0123456789abcdef"}


def test_url_is_loopback_with_an_ephemeral_port():
    with Emulator() as emu:
        assert emu.url.startswith("http://127.0.0.1:") and emu.port > 0


def test_stop_leaves_no_thread_behind_even_with_open_keepalive_connections():
    # Compared as sets of threads: another test's thread ending meanwhile must not count.
    before = set(threading.enumerate())
    with Emulator() as emu:
        clients = [httpx.Client() for _ in range(5)]
        for client in clients:
            assert client.post(emu.url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
        assert set(threading.enumerate()) - before
    assert not set(threading.enumerate()) - before
    for client in clients:
        client.close()


def test_stop_interrupts_a_real_latency_wait():
    before = set(threading.enumerate())
    emu = Emulator().start()
    latency = emu.add_fault("latency", seconds=60)
    worker = threading.Thread(target=lambda: _swallow(lambda: httpx.get(emu.url + "/v1/models", headers=AUTH, timeout=5)))
    worker.start()
    for _ in range(5000):  # until the request has reached its 60 s wait
        if latency.hits:
            break
        threading.Event().wait(0.001)
    emu.stop()
    worker.join(timeout=5)
    assert not set(threading.enumerate()) - before
    assert [r.status for r in emu.requests] == [None]  # dropped by the shutdown, not answered after 60 s


def test_serves_many_concurrent_connections(emulator):
    def call(i: int) -> int:
        body = CHAT | {"messages": [{"role": "user", "content": f"q{i}"}]}
        return http.post(emulator.url + "/v1/chat/completions", json=body, headers=AUTH).status_code

    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    with httpx.Client(limits=limits) as http, ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(200)))
    assert statuses == [200] * 200
    assert len(emulator.requests) == 200


def test_unknown_path_is_404_and_recorded(emulator):
    assert httpx.get(emulator.url + "/nowhere").status_code == 404
    assert emulator.requests[-1].status == 404


def test_full_api_key_never_logged_nor_recorded(emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="resilient.testing.emulator")
    emulator.add_fault("bad_key", keys=[KEY])
    reply = httpx.post(emulator.url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {KEY}"})
    assert reply.status_code == 401 and KEY not in reply.text
    assert emulator.requests[-1].key == "sk-…XYZW"
    assert KEY not in caplog.text and KEY not in repr(emulator.requests) and "sk-…XYZW" in caplog.text


def test_fixture_shares_the_fake_clock(fake_clock, emulator):
    assert emulator.clock is fake_clock


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_fault_script_from_file(tmp_path, suffix):
    faults = [{"kind": "outage", "status": 502, "start": 1, "duration": 1}, {"kind": "latency", "seconds": 0.25}]
    path = tmp_path / ("faults" + suffix)
    if suffix == ".json":
        path.write_text(json.dumps({"fault": faults}))
    else:
        path.write_text(
            '[[fault]]\nkind = "outage"\nstatus = 502\nstart = 1\nduration = 1\n\n[[fault]]\nkind = "latency"\nseconds = 0.25\n'
        )
    fake = FakeClock()
    with Emulator(clock=fake, faults=path) as emu, httpx.Client() as http:
        assert http.post(emu.url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
        fake.advance(1)
        assert http.post(emu.url + "/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 502
    assert fake.sleeps == [0.25, 0.25]


def test_script_without_kind_is_rejected(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"fault": [{"status": 500}]}')
    with pytest.raises(ValueError, match="kind"):
        Emulator(faults=path)


def _swallow(call):
    try:
        call()
    except httpx.HTTPError:
        pass
