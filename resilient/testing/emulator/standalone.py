"""Running the emulator as a process of its own, for code written in other languages."""

from __future__ import annotations

import threading

from .server import Emulator

__all__ = ["run_standalone"]


def run_standalone(host: str, port: int, faults_path: str | None) -> None:
    """Serve on ``host:port`` with the faults of ``faults_path`` (TOML or JSON) until Ctrl-C."""
    with Emulator(host, port, faults=faults_path) as emu:
        print(f"resilient emulator serving on {emu.url} (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
