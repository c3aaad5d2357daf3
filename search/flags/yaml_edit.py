"""Byte-preserving edits of a user's ``flags.yaml``: set a few top-level keys, keep every other byte.

The file is edited, never regenerated. It must first pass the project's YAML policy
(:func:`search.flags.yamlio.load_yaml_text`: YAML 1.2, duplicate keys refused with file, line and key);
then the parser's events give the character span of each top-level entry and only these spans change:

* a key that is present gets its value replaced where it stands, whatever YAML spelling it has: plain,
  ``~``/``null``, quoted, tagged, a value on the next line, a block scalar (``|``/``>``, its header
  comment kept), an alias (``*name``), or no value at all (``key:``, or ``? key`` with no ``:``). An
  anchored value (``&name 0.2``) keeps its anchor. Keys may be quoted or written with ``? key``.
* a key that is missing is appended after the last entry (before a closing ``...``), at the mapping's
  indentation; in a ``{...}`` flow mapping it is added before the ``}``.
* one comment line ``# are-search: <comment>`` goes above the first written key (or the appended
  keys); the line a previous export wrote is removed.

Line endings (LF, CRLF, CR), a UTF-8 byte-order mark, indentation and the spelling of a key's old bool
(``true``/``True``/``TRUE``) are kept. What cannot be edited without changing something else is
refused with one line naming the file, the line, the key and why (a key holding a list or a mapping;
an anchored value that another key uses through an alias; a key that YAML 1.2 and PyYAML read
differently, e.g. ``{key:}``; a top level that is not a mapping; more than one YAML document; a tab
where YAML allows only spaces, which both readers refuse). Before anything is written the edited
text is read back, by the policy's YAML 1.2 reader and by PyYAML's YAML 1.1 reader (which the model
code uses): every other key must read as before and every written key as written, or the edit is
refused naming the key.

Floats are written as plain decimals that both YAML 1.1 and 1.2 read back as the same float
(``0.2``, ``1.0e-05``); bools as ``True``/``False``. The file is replaced atomically with
:func:`are_model.fileio.atomic_write_bytes`.
"""
from __future__ import annotations

import codecs
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from are_model.fileio import NotWritableError, atomic_write_bytes, check_writable_file
from search.errors import FlagsError, YamlError
from search.values import as_number
from search.flags.yamlio import load_yaml_text, syntax_error

__all__ = [
    "COMMENT_MARKER",
    "FlagsEdit",
    "yaml_float",
    "bool_literal",
    "edit_flags_text",
    "edit_flags",
    "write_flags",
]

_logger = logging.getLogger(__name__)

#: Every comment line this module writes starts with this; the next export replaces the line.
COMMENT_MARKER = "# are-search:"
#: Keys this module writes: plain YAML scalars that read as the same string in YAML 1.1 and 1.2.
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_BREAK_RE = re.compile(r"\r\n|\r|\n")
_BOOL_STYLES = {"true": "true", "false": "true", "TRUE": "TRUE", "FALSE": "TRUE"}


# ---------------------------------------------------------------------------------------------
# literals


def yaml_float(value: float) -> str:
    """A float literal that YAML 1.1 and 1.2 both read as ``value`` (``1e-05`` -> ``1.0e-05``).

    ``value`` must be finite; the shortest ``repr`` is kept, so the float reads back bit for bit.
    """
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[0] not in "+-":
            exponent = "+" + exponent
        text = f"{mantissa}e{exponent}"
    return text


def bool_literal(value: bool, old_text: str | None = None) -> str:
    """``True``/``False``, or ``true``/``TRUE`` style when the key's old plain value was spelled so."""
    style = _BOOL_STYLES.get(old_text or "", "True")
    return style if value else {"true": "false", "TRUE": "FALSE", "True": "False"}[style]


def _literal(value: bool | float, old_plain: str | None = None) -> str:
    return bool_literal(value, old_plain) if isinstance(value, bool) else yaml_float(value)


def _checked_flags(flags: Mapping[str, Any], where: str) -> dict[str, bool | float]:
    """``flags`` as {key: bool | finite float}; FlagsError naming the key otherwise."""
    out: dict[str, bool | float] = {}
    for key, value in flags.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise FlagsError(f"{where}: cannot write key {key!r}: use letters, digits and _ . -")
        if pyyaml.safe_load(key) != key or load_yaml_text(key, "key") != key:  # e.g. 'null', 'on'
            raise FlagsError(f"{where}: cannot write key {key!r}: YAML reads it as another value")
        dtype = getattr(value, "dtype", None)
        if isinstance(value, bool) or getattr(dtype, "kind", None) == "b":
            out[key] = bool(value)
            continue
        number = as_number(value)
        if number is None:
            raise FlagsError(f"{where}: key {key!r}: expected a bool or a finite number, got {value!r}")
        out[key] = number
    if not out:
        raise FlagsError(f"{where}: no key to write")
    return out


# ---------------------------------------------------------------------------------------------
# the document as spans


@dataclass(eq=False)
class _Node:
    """One YAML node with its character span in the text (properties included where known)."""

    kind: str  # scalar | alias | mapping | sequence
    start: int
    end: int
    line: int  # 1-based
    column: int
    value: str | None = None  # scalars
    style: str | None = None  # scalars: None (plain), ', ", |, >
    tag: str | None = None
    anchor: str | None = None
    flow: bool = False  # collections
    open_end: int = 0  # flow collections: just after the opening bracket
    items: list = field(default_factory=list)  # mapping: [(key, value)]; sequence: [node]
    target: "_Node | None" = None  # aliases: the anchored node


@dataclass
class _Document:
    root: _Node | None
    explicit_end: int | None  # index of a closing '...'
    aliases: list[_Node]
    scalars: list[tuple[int, int]]  # the span of every scalar


def _node(events: list, i: int, anchors: dict[str, _Node], doc: _Document) -> tuple[_Node, int]:
    event = events[i]
    mark = event.start_mark
    common = dict(start=mark.index, end=event.end_mark.index, line=mark.line + 1, column=mark.column)
    if isinstance(event, AliasEvent):
        node = _Node("alias", anchor=event.anchor, target=anchors.get(event.anchor), **common)
        doc.aliases.append(node)
        return node, i + 1
    if isinstance(event, ScalarEvent):
        node = _Node("scalar", value=event.value, style=event.style, tag=event.tag, anchor=event.anchor, **common)
        if event.anchor:
            anchors[event.anchor] = node
        doc.scalars.append((node.start, node.end))
        return node, i + 1
    mapping = isinstance(event, MappingStartEvent)
    assert mapping or isinstance(event, SequenceStartEvent), event
    node = _Node("mapping" if mapping else "sequence", tag=event.tag, anchor=event.anchor,
                 flow=bool(event.flow_style), open_end=event.end_mark.index, **common)
    if event.anchor:
        anchors[event.anchor] = node
    closing = MappingEndEvent if mapping else SequenceEndEvent
    i += 1
    while not isinstance(events[i], closing):
        child, i = _node(events, i, anchors, doc)
        if mapping:
            value, i = _node(events, i, anchors, doc)
            node.items.append((child, value))
        else:
            node.items.append(child)
    node.end = events[i].end_mark.index
    return node, i + 1


def _yaml_error(exc: YAMLError, where: str) -> FlagsError:
    line, words = syntax_error(exc)
    at = f"{where}:{line}" if line is not None else where
    return FlagsError(f"{at}: not valid YAML: {words}")


def _policy(text: str, where: str) -> Any:
    """``text`` read by the project's YAML policy; its YamlError as a FlagsError (same words)."""
    try:
        return load_yaml_text(text, where)
    except YamlError as exc:
        hint = "; write spaces instead of the tab" if "'\\t'" in str(exc) else ""
        raise FlagsError(f"{exc}{hint}") from None


def _document(text: str, where: str) -> tuple[_Document, Any]:
    """(spans, data read by the policy) of ``text``; FlagsError when it is not one YAML document."""
    try:
        events = list(YAML(typ="safe", pure=True).parse(text))
    except YAMLError as exc:
        _policy(text, where)  # the policy's own words for a syntax error
        raise _yaml_error(exc, where) from None
    starts = [e for e in events if isinstance(e, DocumentStartEvent)]
    if len(starts) > 1:
        line = starts[1].start_mark.line + 1
        raise FlagsError(f"{where}:{line}: a second YAML document starts here; flags.yaml must hold one document")
    data = _policy(text, where)
    doc = _Document(root=None, explicit_end=None, aliases=[], scalars=[])
    if starts:
        i = events.index(starts[0]) + 1
        doc.root, i = _node(events, i, {}, doc)
        end = events[i]
        assert isinstance(end, DocumentEndEvent), end
        if end.explicit:
            doc.explicit_end = end.start_mark.index
    return doc, data


# ---------------------------------------------------------------------------------------------
# the edit


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str
    key: str | None  # the flag it writes; None for the comment and layout edits
    seq: int = 0  # keeps insertions at one offset in the order they were made


def _render(text: str, edits: list[_Edit]) -> str:
    out, at = [], 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end, e.seq)):
        assert edit.start >= at, "overlapping edits"
        out.append(text[at:edit.start])
        out.append(edit.text)
        at = edit.end
    out.append(text[at:])
    return "".join(out)


def _skip_blank(text: str, i: int) -> int:
    """The index of the first character at or after ``i`` that is not a space, tab, line break or comment."""
    while i < len(text):
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\r\n"):
            match = _BREAK_RE.search(text, i)
            i = match.start() if match else len(text)
        else:
            break
    return i


def _line_start(text: str, index: int) -> int:
    return max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1


def _next_line(text: str, index: int) -> int | None:
    """The index just after the first line break at or after ``index``; None at the last line."""
    match = _BREAK_RE.search(text, index)
    return match.end() if match else None


def _value_edit(text: str, key: _Node, value: _Node, name: str, literal: bool | float,
                flow: bool, indent: str, newline: str, where: str) -> _Edit:
    """The edit that makes entry ``key: value`` hold ``literal``."""
    at = f"{where}:{key.line}: key {name!r}"
    colon = _skip_blank(text, key.end)
    colon = colon if colon < len(text) and text[colon] == ":" else None
    if value.kind in ("mapping", "sequence"):
        kind = "a list" if value.kind == "sequence" else "a mapping"
        raise FlagsError(f"{at} holds {kind}, not a single value; replace it by hand")
    if value.kind == "alias":  # the anchored node stays where it is, this key gets its own value
        return _Edit(value.start, value.end, _literal(literal), name)
    if value.start == value.end:  # no value written at all
        if colon is not None:
            return _Edit(colon + 1, colon + 1, " " + _literal(literal), name)
        if flow:  # {key} or {? key}
            return _Edit(key.end, key.end, ": " + _literal(literal), name)
        after = _next_line(text, key.end)  # ? key  (no ': value' line)
        if after is None:
            return _Edit(len(text), len(text), f"{newline}{indent}: {_literal(literal)}", name)
        return _Edit(after, after, f"{indent}: {_literal(literal)}{newline}", name)
    # a tag written before an anchor is not in the parser's span: start at the first token after ':'
    start = min(value.start, _skip_blank(text, colon + 1)) if colon is not None else value.start
    prefix = f"&{value.anchor} " if value.anchor else ""
    new = prefix + _literal(literal, value.value if value.style is None and value.tag is None else None)
    if value.style not in ("|", ">"):
        return _Edit(start, value.end, new, name)
    # a block scalar: replace its header line and content lines; keep a header comment and the
    # blank lines the scanner counts as the scalar's trailing lines
    header_end = _BREAK_RE.search(text, start, value.end)
    header = text[start:header_end.start() if header_end else value.end]
    comment = re.search(r"[ \t]+#.*\Z", header)
    end, end_break = value.end, ""
    for line in re.finditer(r"([^\r\n]*)(\r\n|\r|\n|\Z)", text[start:value.end]):
        if line.group(1).strip(" \t"):  # the last line (header or content) with something on it
            end, end_break = start + line.end(), line.group(2)
    return _Edit(start, end, new + (comment.group() if comment else "") + end_break, name)


def _entry_line_start(text: str, key: _Node) -> int:
    """The start of the line where entry ``key`` begins (the ``?`` line of an explicit key)."""
    i = key.start - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    explicit = i >= 0 and text[i] == "?" and not text[_line_start(text, i):i].strip(" \t")
    return _line_start(text, i if explicit else key.start)


def _flow_appends(text: str, root: _Node, missing: list[str], flags: dict[str, bool | float]) -> list[_Edit]:
    """Edits that add ``missing`` keys to the ``{...}`` flow mapping ``root`` before its ``}``."""
    entries = [f"{name}: {_literal(flags[name])}" for name in missing]
    if not root.items:  # {}: right after the '{'
        at = root.open_end
        texts = [entries[0]] + [", " + entry for entry in entries[1:]]
    else:
        last_key, last_value = root.items[-1]
        at = max(last_key.end, last_value.end)
        if last_value.start == last_value.end:  # {..., key} or {..., key:}
            colon = _skip_blank(text, last_key.end)
            if text[colon] == ":":
                at = colon + 1
        after = _skip_blank(text, at)
        if text[after] == ",":  # a trailing comma: add after it and keep one at the end
            at = after + 1
            texts = [f" {entry}," for entry in entries]
        else:  # after a ':' of its own 'key:,' would read as the key 'key:' in YAML 1.2
            lead = " , " if last_value.start == last_value.end and text[at - 1] == ":" and at != last_key.end else ", "
            texts = [lead + entry for entry in entries]
    return [_Edit(at, at, t, name, seq) for seq, (t, name) in enumerate(zip(texts, missing))]


def _plan(text: str, doc: _Document, flags: dict[str, bool | float], comment: str, where: str) -> list[_Edit]:
    """Every edit that writes ``flags`` and the comment into ``text``."""
    match = _BREAK_RE.search(text)
    newline = match.group() if match else "\n"
    root = doc.root
    if root is not None and root.kind == "scalar" and root.start == root.end:
        root = None  # an empty document: '---' or '---' with '...'
    if root is not None and root.kind != "mapping":
        kind = {"sequence": "a list", "alias": "an alias"}.get(root.kind, "a single value")
        raise FlagsError(f"{where}:{root.line}: the top level is {kind}; flags.yaml must be a mapping of keys")
    flow = root is not None and root.flow
    column = root.column if root is not None else 0
    indent = " " * column
    edits: list[_Edit] = []

    # the previous are-search comment goes (a line inside a multi-line scalar is content, not a comment)
    for line in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n|\Z)", text):
        if line.group() and line.group().lstrip(" \t").startswith(COMMENT_MARKER) and not any(
            s < line.start() < e for s, e in doc.scalars
        ):
            edits.append(_Edit(line.start(), line.end(), "", None))

    present: dict[str, tuple[_Node, _Node]] = {}
    for key, value in root.items if root is not None else ():
        target = key.target if key.kind == "alias" else key
        name = target.value if target is not None and target.kind == "scalar" else None
        if name in flags:
            present[name] = (key, value)
    written_values = {id(value) for _, value in present.values()}
    first_line: int | None = None
    for name, (key, value) in present.items():
        edits.append(_value_edit(text, key, value, name, flags[name], flow, indent, newline, where))
        if value.kind == "scalar" and value.anchor:
            for alias in doc.aliases:
                if alias.target is value and id(alias) not in written_values:
                    raise FlagsError(
                        f"{where}:{key.line}: key {name!r}: its value &{value.anchor} is also used at line "
                        f"{alias.line} (*{value.anchor}), which writing it would change; edit it by hand"
                    )
        line = _entry_line_start(text, key)
        first_line = line if first_line is None else min(first_line, line)

    comment_line = f"{indent}{COMMENT_MARKER} {' '.join(comment.split())}".rstrip() + newline
    missing = [name for name in flags if name not in present]
    if flow:  # the comment goes above the line that opens the mapping
        first_line = _line_start(text, root.start)
    if first_line is not None:
        edits.append(_Edit(first_line, first_line, comment_line, None, -1))
    if flow and missing:
        edits.extend(_flow_appends(text, root, missing, flags))
    elif missing:
        at = doc.explicit_end if doc.explicit_end is not None else len(text)
        before = at  # the last character kept before ``at`` (a removed comment line is not kept)
        while any(e.text == "" and e.end == before and e.start < before for e in edits):
            before = next(e.start for e in edits if e.text == "" and e.end == before)
        seq = 0
        if before > 0 and text[before - 1] not in "\r\n":
            edits.append(_Edit(at, at, newline, None, seq := seq + 1))
        if first_line is None:
            edits.append(_Edit(at, at, comment_line, None, seq := seq + 1))
        for name in missing:
            edits.append(_Edit(at, at, f"{indent}{name}: {_literal(flags[name])}{newline}", name, seq := seq + 1))
    return edits


# ---------------------------------------------------------------------------------------------
# the check before writing


def _same(a: Any, b: Any) -> bool:
    """Deep equality that tells 1 from 1.0 and True, and takes NaN as equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _written_as(got: Any, want: bool | float) -> bool:
    if isinstance(want, bool):
        return got is want
    return type(got) is float and got == want


def _problem(old: Any, new_text: str, flags: dict[str, bool | float], reader: str,
             where: str) -> tuple[str | None, str] | None:
    """(key or None, why) of the first thing ``reader`` reads wrongly in ``new_text``; None when right."""
    try:
        new = _policy(new_text, where) if reader == "YAML 1.2" else pyyaml.safe_load(new_text)
    except (FlagsError, pyyaml.YAMLError) as exc:
        return None, f"the edited file would not read as YAML ({' '.join(str(exc).split())[:200]})"
    old = {} if old is None else old
    if not isinstance(new, dict):
        return None, f"the edited file would not be a mapping for {reader}"
    for name in old:
        if name not in flags and (name not in new or not _same(old[name], new[name])):
            return str(name), f"{reader} would read key {name!r} differently"
    for name in new:
        if name not in old and name not in flags:
            return str(name), f"{reader} would read a new key {name!r}"
    for name, want in flags.items():
        if name not in new or not _written_as(new[name], want):
            got = repr(new[name]) if name in new else "nothing"
            return name, f"{reader} would read it as {got}, not {_literal(want)}"
    return None


def _readers(text: str, policy_data: Any) -> list[tuple[str, Any]]:
    """(reader, data of the unedited text) for each reader the edit must satisfy."""
    readers = [("YAML 1.2", policy_data)]
    try:
        legacy = pyyaml.safe_load(text)
    except pyyaml.YAMLError:
        legacy = False  # PyYAML cannot read the user's file already: nothing to keep for it
    if legacy is None or isinstance(legacy, dict):
        readers.append(("PyYAML", legacy))
    return readers


def _check(text: str, edits: list[_Edit], flags: dict[str, bool | float], readers: list[tuple[str, Any]],
           where: str) -> tuple[str | None, str] | None:
    new_text = _render(text, edits)
    for reader, old in readers:
        problem = _problem(old, new_text, flags, reader, where)
        if problem is not None:
            return problem
    return None


def _same_keys(readers: list[tuple[str, Any]], flags: dict[str, bool | float], lines: dict[str, int],
               where: str) -> None:
    """Refuse a flag key that one reader finds at the top level and the other does not."""
    (_, modern), (_, legacy) = readers
    modern, legacy = modern or {}, legacy or {}
    for name in flags:
        if (name in modern) != (name in legacy):
            line = lines.get(name, lines.get(name + ":"))
            at = f"{where}:{line}" if line is not None else where
            raise FlagsError(
                f"{at}: key {name!r} is read differently by YAML 1.2 and by PyYAML (the model's reader); "
                f"write it as '{name}: value'"
            )


def _verify(text: str, edits: list[_Edit], flags: dict[str, bool | float], readers: list[tuple[str, Any]],
            lines: dict[str, int], where: str) -> str:
    """The edited text, after checking it reads as ``text`` plus ``flags``; FlagsError naming the key."""
    problem = _check(text, edits, flags, readers, where)
    if problem is None:
        return _render(text, edits)
    _logger.debug("edit of %s refused: %s", where, problem)
    culprit = problem[0] if problem[0] in flags else None
    if culprit is None:  # find the written key whose edit alone goes wrong
        layout = [e for e in edits if e.key is None]
        for name in flags:
            alone = _check(text, layout + [e for e in edits if e.key == name], {name: flags[name]}, readers, where)
            if alone is not None:
                culprit, problem = name, alone
                break
    if culprit is None:
        names = ", ".join(repr(name) for name in flags)
        raise FlagsError(f"{where}: cannot write {names} in place: {problem[1]}; set them by hand")
    at = f"{where}:{lines[culprit]}" if culprit in lines else where
    raise FlagsError(f"{at}: cannot write key {culprit!r} in place: {problem[1]}; set it by hand")


def edit_flags_text(text: str, flags: Mapping[str, Any], *, comment: str, where: str = "flags.yaml") -> str:
    """``text`` (a flags.yaml without its byte-order mark) with ``flags`` written and the comment set.

    ``flags`` maps keys (letters, digits, ``_ . -``) to bools or finite numbers (written as floats);
    ``comment`` is one line of text (whitespace runs become one space). ``where`` names the file in
    errors. Raises FlagsError (one line: file, line, key, why) when the text breaks the YAML policy or
    cannot be edited without changing anything else; see the module docstring.
    """
    checked = _checked_flags(flags, where)
    doc, data = _document(text, where)
    lines: dict[str, int] = {}
    if doc.root is not None and doc.root.kind == "mapping":
        for key, _ in doc.root.items:
            target = key.target if key.kind == "alias" else key
            if target is not None and target.kind == "scalar":
                lines.setdefault(target.value, key.line)
    readers = _readers(text, data)
    if len(readers) == 2:
        _same_keys(readers, checked, lines, where)
    edits = _plan(text, doc, checked, comment, where)
    return _verify(text, edits, checked, readers, lines, where)


# ---------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class FlagsEdit:
    """A checked, not yet written edit of one flags file.

    ``path`` is the path as given, ``target`` the file that is replaced (a symbolic link's target),
    ``old`` the bytes read (None: the file does not exist yet) and ``new`` the bytes to write.
    """

    path: Path
    target: Path
    old: bytes | None
    new: bytes

    def write(self) -> Path:
        """Replace the file by ``new`` atomically; returns ``target``.

        Raises FlagsError, writing nothing, when the file changed since it was read, is no longer a
        regular file, or cannot be written.
        """
        _require_regular(self.path)
        try:
            current = self.target.read_bytes() if self.target.exists() else None
        except OSError as exc:
            raise FlagsError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if current != self.old:
            raise FlagsError(f"{self.path}: changed since it was read; nothing written, export again")
        try:
            return atomic_write_bytes(self.target, self.new)
        except OSError as exc:
            raise FlagsError(f"{self.path}: cannot write: {exc.strerror or exc}") from None


def _require_regular(path: Path) -> None:
    """FlagsError ``<path>: not a regular file`` for a flags file that is there but is not a regular file or a
    link to one: a FIFO would block the read, a device node (``/dev/null``) would be replaced by the write."""
    if os.path.lexists(path):
        try:
            check_writable_file(path)
        except NotWritableError as exc:
            raise FlagsError(str(exc)) from None


def edit_flags(path: str | os.PathLike, flags: Mapping[str, Any], *, comment: str,
               make_folder: bool = False) -> FlagsEdit:
    """Read the flags.yaml at ``path`` (a missing file is empty) and prepare writing ``flags`` into it.

    Nothing is written: call :meth:`FlagsEdit.write`. A missing folder raises FlagsError unless
    ``make_folder`` (it is then created by the write). Raises FlagsError naming the file (and line and
    key) for an unreadable or malformed file, one that cannot be edited in place (see
    :func:`edit_flags_text`), or a path that is not a regular file (a FIFO, a device node: never opened).
    """
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    where = str(path)
    bom = b""
    old: bytes | None = None
    if target.is_dir():
        raise FlagsError(f"{where}: is a folder, not a flags file")
    _require_regular(path)
    if target.exists():
        try:
            old = target.read_bytes()
        except OSError as exc:
            raise FlagsError(f"{where}: cannot read: {exc.strerror or exc}") from None
        raw = old
        if raw.startswith(codecs.BOM_UTF8):
            bom, raw = codecs.BOM_UTF8, raw[len(codecs.BOM_UTF8):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FlagsError(f"{where}: not UTF-8 text (byte {exc.start + len(bom)})") from None
    else:
        parent = target.parent
        if parent.exists() and not parent.is_dir():
            raise FlagsError(f"{where}: {parent} is a file, not a folder")
        if not parent.exists() and not make_folder:
            raise FlagsError(f"{where}: folder {parent} does not exist")
        text = ""
    new_text = edit_flags_text(text, flags, comment=comment, where=where)
    return FlagsEdit(path=path, target=target, old=old, new=bom + new_text.encode("utf-8"))


def write_flags(path: str | os.PathLike, flags: Mapping[str, Any], *, comment: str) -> FlagsEdit:
    """Write ``flags`` into the flags.yaml at ``path`` (created when missing, its folder must exist).

    Present keys get their value replaced in place, missing keys are appended, every other byte is
    kept, and ``# are-search: <comment>`` goes above the first written key (see the module
    docstring). Returns the edit written. Raises FlagsError (one line naming the file, and the line
    and key where there is one) and leaves the file untouched when it is malformed, cannot be edited
    in place, or cannot be written.
    """
    edit = edit_flags(path, flags, comment=comment)
    edit.write()
    _logger.info("wrote %s to %s", ", ".join(f"{k}={v}" for k, v in _checked_flags(flags, str(path)).items()), path)
    return edit
