"""Finding API keys in the environment: ``NAME``, ``NAME_1``, ``NAME_2``, ... and a ``.env`` file.

Teams that spread load over several keys name them after the provider's
usual variable with a numeric suffix; :func:`keys_from_env` collects all of
them, in numeric order. A ``.env`` file in the working directory fills in
variables that the environment does not set (it never overrides one, as
``python-dotenv`` does by default); it is read, never loaded into
``os.environ``. Errors name the variables looked for, never a value.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import NoKeyAvailableError

__all__ = ["keys_from_env", "read_dotenv"]

_log = logging.getLogger(__name__)


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
    """Variables of a ``.env`` file; ``{}`` if it is absent.

    The syntax is python-dotenv's, for one-line values: ``NAME=value``,
    optionally after ``export`` and any blanks; ``#`` comment lines; a value
    in single quotes is taken as is (only ``\\'`` and ``\\\\`` unescaped), one in
    double quotes has its backslash escapes decoded (``\\n``, ``\\t``, ``\\"``,
    ...); after an unquoted value a comment starts at a blank (space or tab)
    followed by ``#`` (``a#b`` is a value), and after a quoted one at ``#``.
    A UTF-8 byte order mark is ignored. Two departures, both on the side of
    never taking a wrong key: a quoted value must close on its own line (a
    line with an unterminated quote is skipped, python-dotenv would read on
    into the next lines), and ``NAME= # comment`` is empty (python-dotenv
    reads ``# comment`` as the value). A line that cannot be parsed is
    skipped with a warning giving its number, never its text.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _BINDING.fullmatch(line)
        if match is None:
            _log.warning("%s: line %d is not NAME=value, skipped", os.fspath(path), number)
            continue
        if match["single"] is not None:
            value = _SINGLE_ESCAPES.sub(lambda m: m.group(0)[1], match["single"])
        elif match["double"] is not None:
            value = _DOUBLE_ESCAPES.sub(lambda m: codecs.decode(m.group(0), "unicode-escape"), match["double"])
        else:
            value = _INLINE_COMMENT.sub("", match["bare"]).strip()
            if value.startswith("#"):
                value = ""
        values[match["name"]] = value
    return values


# One binding on one line (python-dotenv's grammar without multi-line values).
_BINDING = re.compile(
    r"""
    \s*(?:export\s+)?
    (?P<name>[^\W\d]\w*) \s* = \s*
    (?:
        '(?P<single>(?:\\'|[^'])*)' \s* (?:\#.*)?
      | "(?P<double>(?:\\"|[^"])*)" \s* (?:\#.*)?
      | (?P<bare>(?!['"]).*)
    )
    """,
    re.VERBOSE,
)
_INLINE_COMMENT = re.compile(r"\s+#.*")
_SINGLE_ESCAPES = re.compile(r"\\[\\']")
_DOUBLE_ESCAPES = re.compile(r"""\\[\\'"abfnrtv]""")
