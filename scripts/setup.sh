#!/usr/bin/env bash
# Create .venv (if needed) and install the project into it.
#   scripts/setup.sh core   -> the package and its runtime dependencies (for `resilient demo`)
#   scripts/setup.sh test   -> everything the test suite needs (torch CPU build first, then all extras)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-core}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
case "$profile" in
  core)
    "${pip[@]}" -e . ;;
  test)
    # torch first, pinned: it is the local CPU build. Left to sentence-transformers,
    # pip would pick a newer torch and download gigabytes of CUDA packages.
    "${pip[@]}" torch==2.13.0
    "${pip[@]}" -e '.[all]' ;;
  *)
    echo "usage: scripts/setup.sh core|test" >&2; exit 2 ;;
esac
