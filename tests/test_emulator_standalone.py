"""run_standalone: the process behind ``resilient emulate``."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serves_the_fault_script_until_interrupted(tmp_path, stop_signal):
    script = tmp_path / "faults.toml"
    script.write_text('[[fault]]\nkind = "outage"\nprovider = "anthropic"\nstatus = 529\n')
    code = f"from resilient.testing.emulator import run_standalone; run_standalone('127.0.0.1', 0, {str(script)!r})"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        url = banner.split()[4]
        assert httpx.get(url + "/api/tags").status_code == 200
        assert httpx.post(url + "/v1/messages", json={}, headers={"x-api-key": "sk-ant-" + "test"}).status_code == 529
    finally:
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
