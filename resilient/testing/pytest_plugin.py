"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

``fake_clock``
    A :class:`resilient.clock.FakeClock` installed as the current clock for
    the test, so every decorated call sleeps in fake time and the test can
    assert ``fake_clock.sleeps``.

``emulator``
    A running :class:`resilient.testing.emulator.Emulator` on an ephemeral
    loopback port, stopped after the test. When the test also uses
    ``fake_clock``, the emulator runs on that same fake clock, so fault
    windows, rate-limit refills and latency follow ``fake_clock.advance()``
    and the decorators' fake sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resilient import clock as _clock
from resilient.testing.emulator import Emulator


@pytest.fixture
def fake_clock() -> Iterator[_clock.FakeClock]:
    """A FakeClock that every decorator in the test uses (see :func:`resilient.clock.use`)."""
    fake = _clock.FakeClock()
    with _clock.use(fake):
        yield fake


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A provider emulator for the test; shares the test's ``fake_clock`` when there is one."""
    clock = request.getfixturevalue("fake_clock") if "fake_clock" in request.fixturenames else None
    with Emulator(clock=clock) as emu:
        yield emu
