"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

``fake_clock``
    A :class:`resilient.clock.FakeClock` installed as the current clock for
    the test, so every decorated call sleeps in fake time and the test can
    assert ``fake_clock.sleeps``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resilient import clock as _clock


@pytest.fixture
def fake_clock() -> Iterator[_clock.FakeClock]:
    """A FakeClock that every decorator in the test uses (see :func:`resilient.clock.use`)."""
    fake = _clock.FakeClock()
    with _clock.use(fake):
        yield fake
