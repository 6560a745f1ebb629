"""The ``resilient`` command.

``resilient demo``
    A decorated call surviving injected failures, narrated layer by layer.
``resilient emulate --port 8080 --faults faults.toml``
    Run the provider emulator standalone (for testing code in other languages).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resilient", description="Resilience toolkit for LLM provider APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the decorators surviving injected failures")
    emulate = commands.add_parser("emulate", help="run the provider emulator on a local port")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8080)
    emulate.add_argument("--faults", default=None, help="TOML or JSON fault script")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run

        return run(sys.stdout)
    from .testing.emulator import run_standalone

    run_standalone(args.host, args.port, args.faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
