"""The ``resilient`` command: a user's mistake is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import httpx
import pytest

from resilient.cli import main
from resilient.testing.emulator import Emulator


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one-line error of a command that must fail with status 1."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_missing_fault_script_is_named(capsys, tmp_path) -> None:
    missing = tmp_path / "nope.toml"

    assert fails(capsys, "emulate", "--port", "0", "--faults", str(missing)) == (
        f"resilient emulate: error: No such file or directory: {missing}\n"
    )


@pytest.mark.parametrize(
    ("filename", "script", "says"),
    [
        ("faults.toml", '[[fault]\nkind = "outage"\n', "not valid TOML"),
        ("faults.json", '{"fault": [', "not valid JSON"),
        ("faults.toml", '[[fault]]\nkind = "outag"\n', "fault #1 (outag): unknown fault kind 'outag'"),
        ("faults.toml", '[[fault]]\nkind = "outage"\n\n[[fault]]\nkind = "outage"\nstatsu = 503\n', "fault #2 (outage): "),
        ("faults.toml", '[[fault]]\nkind = "outage"\nstatus = 404\n', "fault #1 (outage): "),
        ("faults.toml", "[[fault]]\nstatus = 503\n", "fault #1 needs a 'kind'"),
    ],
)
def test_an_invalid_fault_script_says_what_and_where(capsys, tmp_path, filename: str, script: str, says: str) -> None:
    path = tmp_path / filename
    path.write_text(script)

    err = fails(capsys, "emulate", "--port", "0", "--faults", str(path))

    assert err.startswith(f"resilient emulate: error: {path}: ") and says in err


def test_a_script_with_a_bad_fault_adds_none_of_its_faults(tmp_path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text('[[fault]]\nkind = "outage"\n\n[[fault]]\nkind = "latency"\nseconds = -1\n')
    emu = Emulator()

    with pytest.raises(ValueError, match="fault #2"):
        emu.load_faults(path)
    with emu:
        assert httpx.get(emu.url + "/api/tags").status_code == 200  # the outage of fault #1 was not added


def test_a_port_in_use_is_named(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        err = fails(capsys, "emulate", "--port", str(port))

    assert err == f"resilient emulate: error: cannot serve on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(capsys, port: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulate", "--port", port])

    assert exited.value.code == 2
    assert "argument --port: a port is a number from 0 to 65535" in capsys.readouterr().err


def test_demo_into_a_reader_that_stops_early_ends_quietly() -> None:
    demo = subprocess.Popen([sys.executable, "-m", "resilient.cli", "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert demo.stdout is not None and demo.stderr is not None
    demo.stdout.readline()
    demo.stdout.close()  # as `resilient demo | head -1` does

    status = demo.wait(timeout=60)
    err = demo.stderr.read().decode()
    demo.stderr.close()

    assert status == 1
    assert err == ""


def test_a_failure_inside_the_demo_is_not_taken_for_a_users_mistake(monkeypatch, tmp_path) -> None:
    """Only ``emulate`` turns an OSError or ValueError into one line: inside the demo it is a bug, traceback and all."""
    unwritable = tmp_path / "out.txt"
    unwritable.touch()
    with unwritable.open() as out:
        monkeypatch.setattr(sys, "stdout", out)
        with pytest.raises(io.UnsupportedOperation):  # an OSError and a ValueError
            main(["demo"])
