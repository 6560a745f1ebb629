"""Fault scripts in TOML or JSON, so the same faults drive a test, a benchmark or ``resilient emulate``.

Both formats hold a list of faults under ``fault``; each entry has a
``kind`` and that kind's parameters (the same keywords as
:meth:`Emulator.add_fault`)::

    [[fault]]
    kind = "rate_limit"
    provider = "openai"
    rps = 5
    burst = 5

    [[fault]]
    kind = "outage"
    start = 30
    duration = 10
    status = 503
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["load_script", "parse_script"]


def load_script(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """Read a ``.toml`` or ``.json`` fault script into ``(kind, params)`` pairs."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError
        raise ValueError(f"{path}: not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    return parse_script(data, source=str(path))


def parse_script(data: Any, source: str = "<script>") -> list[tuple[str, dict[str, Any]]]:
    """Validate the script's shape; each fault's own parameters are checked when it is added."""
    entries = data.get("fault", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{source}: expected a list of faults under 'fault'")
    faults = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise ValueError(f"{source}: fault #{number} needs a 'kind'")
        params = dict(entry)
        faults.append((params.pop("kind"), params))
    return faults
