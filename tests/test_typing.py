"""The public API is typed (py.typed ships with the package): mypy must pass on the whole package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes_on_the_package_and_the_adapters() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "resilient", "adapters", "--ignore-missing-imports", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
