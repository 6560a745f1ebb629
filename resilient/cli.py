"""The ``resilient`` command.

``resilient demo``
    A decorated call surviving injected failures, narrated layer by layer.
``resilient emulate --port 8080 --faults faults.toml``
    Run the provider emulator standalone (for testing code in other languages).

What a user got wrong (a fault script that is missing or invalid, a port
that is taken or out of range) is one line on stderr and exit status 1
(2 for a malformed command line, as argparse does), not a traceback. Output
piped into a program that stops reading (``resilient demo | head -1``) ends
the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535 (0: any free one), got {text!r}")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resilient", description="Resilience toolkit for LLM provider APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the decorators surviving injected failures")
    emulate = commands.add_parser("emulate", help="run the provider emulator on a local port")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=_port, default=8080)
    emulate.add_argument("--faults", default=None, help="TOML or JSON fault script")
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from .demo import run

            return run(sys.stdout)
        return _emulate(args.host, args.port, args.faults)
    except BrokenPipeError:
        # The reader went away: send the rest of our output nowhere, so that
        # flushing stdout at exit does not raise a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


def _emulate(host: str, port: int, faults: str | None) -> int:
    """Run the emulator; what the user gave wrong is one line, anything else (a bug) keeps its traceback."""
    from .testing.emulator import run_standalone

    try:
        run_standalone(host, port, faults)
    except BrokenPipeError:
        raise  # an OSError too, but not the user's mistake: main() ends quietly
    except OSError as exc:  # a missing fault script, a port taken or not ours to bind
        where = f": {exc.filename}" if exc.filename else ""
        print(f"resilient emulate: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an invalid fault script
        print(f"resilient emulate: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
