"""The package installs and imports as documented, not only from the repository."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import resilient

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A non-editable install of the project into a fresh folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target


def test_non_editable_install_imports_from_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    # -S: no site processing, so the editable install's path hooks cannot
    # answer; the dependencies come from site-packages, the package from the
    # fresh install only.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import resilient, resilient.adapters, resilient.testing.emulator, resilient.adapters.openai;"
        "print(resilient.__file__); print(resilient.adapters.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(installed), sysconfig.get_paths()["purelib"]],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()

    assert out == [str(installed / "resilient" / "__init__.py"), str(installed / "resilient" / "adapters" / "__init__.py")]


def test_install_ships_the_typing_marker(installed: Path) -> None:
    assert (installed / "resilient" / "py.typed").exists()


def test_no_top_level_adapters_package_is_installed(installed: Path) -> None:
    assert not (installed / "adapters").exists()


def test_console_script_runs_the_demo() -> None:
    out = subprocess.run([sys.executable, "-m", "resilient.cli", "demo"], check=True, capture_output=True, text=True)

    assert "429" in out.stdout and "closed -> open" in out.stdout and "half_open -> closed" in out.stdout
    assert "failed fast: circuit anthropic is open" in out.stdout
    assert "provider 12 requests: 5 x 200, 1 x 429, 6 x 503" in out.stdout


def test_public_api_is_exported() -> None:
    for name in resilient.__all__:
        assert hasattr(resilient, name), name
