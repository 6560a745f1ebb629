#!/usr/bin/env bash
# Install everything the tests need, make sure a Redis answers on 127.0.0.1:6379, run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
if ! .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1).close()" 2>/dev/null; then
  echo "no Redis on 127.0.0.1:6379: starting one" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
exec .venv/bin/python -m pytest "$@"
