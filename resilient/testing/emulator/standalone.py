"""Running the emulator as a process of its own, for code written in other languages."""

from __future__ import annotations

import signal
import threading

from .server import Emulator

__all__ = ["run_standalone"]


def run_standalone(host: str, port: int, faults_path: str | None) -> None:
    """Serve on ``host:port`` with the faults of ``faults_path`` (TOML or JSON) until Ctrl-C."""
    stop = threading.Event()
    # Explicit handlers: a process started in the background by a shell
    # inherits SIGINT ignored, and a service manager stops it with SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Emulator(host, port, faults=faults_path) as emu:
        print(f"resilient emulator serving on {emu.url} (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.5):
            pass
