"""Finding API keys in the environment: ``NAME``, ``NAME_1``, ``NAME_2``, ... and a ``.env`` file.

Teams that spread load over several keys name them after the provider's
usual variable with a numeric suffix; :func:`keys_from_env` collects all of
them, in numeric order. A ``.env`` file in the working directory fills in
variables that the environment does not set (it never overrides one, as
``python-dotenv`` does by default); it is read, never loaded into
``os.environ``. Errors name the variables looked for, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import NoKeyAvailableError

__all__ = ["keys_from_env", "read_dotenv"]


def keys_from_env(
    var: str, *, environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike[str] | None = ".env"
) -> list[tuple[str, str]]:
    """``(variable name, key)`` for ``var`` and ``var_<n>``, unsuffixed first, then by ``n``.

    Empty values are skipped; a key found under two names is kept once.
    Raises :class:`~resilient.errors.NoKeyAvailableError` naming the
    variables looked for when there is none.
    """
    values: dict[str, str] = dict(read_dotenv(dotenv)) if dotenv is not None else {}
    values.update(os.environ if environ is None else environ)
    pattern = re.compile(rf"{re.escape(var)}(?:_(\d+))?")
    found = []
    for name, value in values.items():
        match = pattern.fullmatch(name)
        if match and value and value.strip():
            found.append((int(match.group(1)) if match.group(1) else -1, name, value.strip()))
    found.sort()
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _, name, value in found:
        if value not in seen:
            seen.add(value)
            keys.append((name, value))
    if not keys:
        where = "the environment" + (f" or {os.fspath(dotenv)}" if dotenv is not None else "")
        raise NoKeyAvailableError(f"no API key found: looked for {var}, {var}_1, {var}_2, ... in {where}")
    return keys


def read_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """Variables of a ``.env`` file (``KEY=value``, optional ``export``, quotes, ``#`` comments); ``{}`` if absent."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier():
            continue
        if value[:1] in ("'", '"') and value[:1] in value[1:]:
            value = value[1 : value.index(value[0], 1)]
        else:
            value = value.split(" #", 1)[0].strip()
        values[name] = value
    return values
