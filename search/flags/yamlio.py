"""The one YAML reader: every YAML file are-search reads (study specs, flags.yaml, campaign specs).

One policy for all of them:

* YAML 1.2 (ruamel.yaml's pure-Python safe loader): ``1e-4`` is a float, ``yes``/``on`` are strings,
  ``0o17`` is octal; PyYAML's YAML 1.1 reads ``1e-4`` as a string.
* A key repeated in one mapping is refused with the file, the line and the key (a spec with
  ``trials: 40`` and then ``trials: 2`` would otherwise silently mean 2).
* Syntax errors name the file and the line; a file that is not UTF-8 names the byte.

Errors are :class:`search.errors.YamlError` (one line). Writers that must keep a user's bytes (the
flags editor, :mod:`search.flags.yaml_edit`) parse with the round-trip loader but go through
:func:`load_yaml_text` first, so they refuse exactly what this reader refuses. :func:`kind_of` names
what a file holds in its author's words (empty, a list, a number, text), for readers that expect a
mapping.
"""
from __future__ import annotations

import codecs
import datetime
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from search.errors import YamlError

__all__ = ["read_yaml", "read_text", "load_yaml_text", "kind_of", "syntax_error"]


def _loader() -> YAML:
    yaml = YAML(typ="safe", pure=True)  # pure: the C loader is YAML 1.1
    yaml.allow_duplicate_keys = False
    return yaml


def syntax_error(exc: YAMLError) -> tuple[int | None, str]:
    """(line, words) of the YAML syntax error ``exc``: the line (1-based; None without a mark) a reader should
    look at and the parser's words on one line. For a scanner error (a key without its ':', a quote never
    closed) and a flow collection never closed (``[0.7`` with no ``]``) that line is where the token or the
    bracket starts, and the words say which ("while scanning a simple key, could not find expected ':'"): the
    parser only fails at a later line, or at the end of the file. Otherwise it is where the parser stopped."""
    from ruamel.yaml.scanner import ScannerError

    problem_mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) if isinstance(exc, MarkedYAMLError) else None
    words = " ".join(str(problem or (str(exc).splitlines() or [type(exc).__name__])[0]).split())
    context = getattr(exc, "context", None)
    opened = isinstance(exc, ScannerError) or str(context or "").startswith("while parsing a flow")
    if opened and context_mark is not None:
        if context and problem_mark is not None and problem_mark.line != context_mark.line:
            words = f"{' '.join(str(context).split())}, {words}"
        return context_mark.line + 1, words
    mark = problem_mark or context_mark
    return (None if mark is None else mark.line + 1), words


def _one_line(exc: YAMLError, where: str) -> YamlError:
    line, words = syntax_error(exc)
    at = f"{where}:{line}" if line is not None else where
    if isinstance(exc, DuplicateKeyError):
        problem = " ".join(str(getattr(exc, "problem", "") or "").split())
        key = problem.split('duplicate key "', 1)[-1].split('"', 1)[0] if 'duplicate key "' in problem else None
        return YamlError(f"{at}: duplicate key {key!r}" if key else f"{at}: {problem or 'duplicate key'}")
    return YamlError(f"{at}: not valid YAML: {words}")


def load_yaml_text(text: str, where: str) -> Any:
    """Parse ``text`` under the project's policy; ``where`` (a path) names it in errors."""
    try:
        return _loader().load(text)
    except YAMLError as exc:
        raise _one_line(exc, where) from None


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped); YamlError naming the file otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_yaml(path: str | os.PathLike) -> Any:
    """Read the YAML file ``path`` under the project's policy (see the module docstring)."""
    return load_yaml_text(read_text(path), str(path))


def kind_of(value: Any) -> str:
    """What a parsed YAML value is, in a YAML author's words: ``empty`` (an empty file or document),
    ``a mapping``, ``a list``, ``a set``, ``true or false``, ``a number``, ``text``, ``a date``, else
    ``a single value``."""
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (set, frozenset)):
        return "a set"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return "a single value"
