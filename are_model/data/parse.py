"""Reading raw files, assigning ids in first-appearance order (spec §7.2), and the record of a load.

Parsing walks the lines in Python (string keys need dict look-ups); everything after that is tensors.
Every line that is not read as it stands (a blank line, a repaired line, a line that does not look like
the rest of its file) is counted on the way: :class:`FileReport` / :class:`LoadReport` (the line rules are
listed in :mod:`are_model.data.builders`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .errors import RawFormatError, VocabularyError

__all__ = ["TripleFile", "IdDictFile", "LineStats", "Vocab", "FileReport", "LoadReport", "parse_triples",
           "parse_id_dict", "encode", "BLANK", "UNSEEN_ENTITY", "UNSEEN_RELATION", "LINE_ENDING", "WHITESPACE",
           "BOM", "DUPLICATE", "SEPARATOR", "NO_FINAL_NEWLINE"]

# why a line was dropped (FileReport.dropped) or kept although a symbol is absent from its graph
# (FileReport.kept_unseen); a line has one reason: the head and tail are checked before the relation
BLANK = "blank"  # an empty or whitespace-only line: skipped
UNSEEN_ENTITY = "unseen_entity"  # head or tail is no endpoint of any fact of the graph it is ranked on
UNSEEN_RELATION = "unseen_relation"  # the relation labels no fact of the graph it is ranked on
# what was repaired (FileReport.repaired)
LINE_ENDING = "line_ending"  # a CR or CRLF line ending in a file whose other lines end otherwise
WHITESPACE = "whitespace"  # whitespace before/after the line, or around a field of a tab-separated line
BOM = "bom"  # a UTF-8 byte-order mark before the first line
# what is kept as read but does not look like the rest of its file (FileReport.odd)
DUPLICATE = "duplicate"  # the same triple on an earlier line of the same file (kept: ULTRA keeps it)
SEPARATOR = "separator"  # whitespace between fields unlike the file's usual (a tab among spaces, two spaces)
NO_FINAL_NEWLINE = "no_final_newline"  # the last line has no line ending (a truncated download looks so)


@dataclass
class LineStats:
    """What reading one file's lines found, before any vocabulary rule.

    Attributes:
        lines: lines in the file (a last line without line ending counts; the empty string after the
            final line ending does not).
        line_ending: the file's usual line ending, ``"LF"``, ``"CRLF"``, ``"CR"`` or ``"none"`` (a single
            unterminated line or an empty file). A file that keeps one convention throughout (FB15k-237's
            CRLF) is read as Python's text mode reads it; only lines that break it are repairs.
        blank: empty or whitespace-only lines (skipped).
        repaired: :data:`LINE_ENDING`, :data:`WHITESPACE`, :data:`BOM` -> lines.
        odd: :data:`DUPLICATE`, :data:`SEPARATOR`, :data:`NO_FINAL_NEWLINE` -> lines (read as they stand).
    """

    lines: int = 0
    line_ending: str = "LF"
    blank: int = 0
    repaired: dict[str, int] = field(default_factory=dict)
    odd: dict[str, int] = field(default_factory=dict)


@dataclass
class TripleFile:
    """The string triples of one raw file, in file order.

    Attributes:
        path: the file (for error messages).
        heads, relations, tails: the string fields, one entry per triple.
        line_numbers: 1-based line number of each triple (blank lines are skipped).
        stats: what reading the lines found (:class:`LineStats`).
    """

    path: str
    heads: list[str]
    relations: list[str]
    tails: list[str]
    line_numbers: list[int]
    stats: LineStats = field(default_factory=LineStats)

    def __len__(self) -> int:
        return len(self.heads)


@dataclass
class IdDictFile:
    """An ``id<TAB>name`` dictionary: ``names[id]``, and what reading its lines found."""

    path: str
    names: list[str]
    stats: LineStats = field(default_factory=LineStats)


@dataclass
class Vocab:
    """String -> id in first-appearance order; ``names[i]`` is the string of id ``i``."""

    names: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> int:
        idx = self.ids.get(name)
        if idx is None:
            idx = self.ids[name] = len(self.names)
            self.names.append(name)
        return idx

    def __contains__(self, name: object) -> bool:
        return name in self.ids

    def __len__(self) -> int:
        return len(self.names)

    def copy(self) -> "Vocab":
        return Vocab(list(self.names), dict(self.ids))

    @classmethod
    def from_names(cls, names: list[str]) -> "Vocab":
        vocab = cls()
        for name in names:
            vocab.add(name)
        return vocab


# -------------------------------------------------------------------------------------------- the record

def _counts(value: Any, what: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and type(v) is int for k, v in value.items()):
        raise TypeError(f"{what} must map str to int, got {value!r}")
    return {k: v for k, v in value.items() if v}


def _phrase(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))


@dataclass(frozen=True)
class FileReport:
    """What one load did with one raw file.

    Attributes:
        role: the registry role (``train``, ``valid``, ``test``, ``inf_graph``, ``inf_valid``, ...).
        file: the file's name in the dataset's raw folder.
        lines: lines read (``lines == kept + sum(dropped.values())``).
        kept: lines that became a triple of the loaded dataset (or a dictionary entry).
        line_ending: the file's usual line ending (:class:`LineStats`).
        ranked_on: for a file of queries (valid/test targets), the graph they are answered on:
            ``"training"`` or ``"inference"``; ``None`` for a graph or dictionary file.
        dropped: reason (:data:`BLANK`, :data:`UNSEEN_ENTITY`, :data:`UNSEEN_RELATION`) -> lines.
        repaired: repair -> lines (:data:`LINE_ENDING`, :data:`WHITESPACE`, :data:`BOM`).
        odd: kept as read, unlike the rest of the file (:data:`DUPLICATE`, :data:`SEPARATOR`,
            :data:`NO_FINAL_NEWLINE`) -> lines.
        kept_unseen: queries kept although a symbol is absent from ``ranked_on``'s graph (an entity
            becomes an isolated node, a relation one without edges): :data:`UNSEEN_ENTITY` /
            :data:`UNSEEN_RELATION` -> lines.
    """

    role: str
    file: str
    lines: int
    kept: int
    line_ending: str = "LF"
    ranked_on: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    odd: dict[str, int] = field(default_factory=dict)
    kept_unseen: dict[str, int] = field(default_factory=dict)

    @property
    def notable(self) -> bool:
        """Whether any line was dropped, repaired, odd or kept with an absent symbol."""
        return bool(self.dropped or self.repaired or self.odd or self.kept_unseen)

    def describe(self) -> str:
        """One phrase: ``"inf_test.txt: 597 lines; kept 5 with a symbol absent from the inference graph
        (unseen_entity 5)"`` (only the parts that are not zero)."""
        parts = [f"{self.file}: {self.lines} lines"]
        if self.dropped:
            parts.append(f"dropped {sum(self.dropped.values())} ({_phrase(self.dropped)})")
        if self.kept_unseen:
            parts.append(f"kept {sum(self.kept_unseen.values())} with a symbol absent from the {self.ranked_on} "
                         f"graph ({_phrase(self.kept_unseen)})")
        if self.repaired:
            parts.append(f"repaired {sum(self.repaired.values())} ({_phrase(self.repaired)})")
        if self.odd:
            parts.append(f"odd {sum(self.odd.values())} ({_phrase(self.odd)})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "file": self.file, "lines": self.lines, "kept": self.kept,
                "line_ending": self.line_ending, "ranked_on": self.ranked_on, "dropped": dict(self.dropped),
                "repaired": dict(self.repaired), "odd": dict(self.odd), "kept_unseen": dict(self.kept_unseen)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FileReport":
        """Inverse of :meth:`to_dict` (``KeyError``/``TypeError`` on a malformed record)."""
        for key in ("role", "file", "line_ending"):
            if not isinstance(data[key], str):
                raise TypeError(f"file report {key} must be a str")
        if type(data["lines"]) is not int or type(data["kept"]) is not int:
            raise TypeError("file report lines/kept must be ints")
        if data["ranked_on"] is not None and not isinstance(data["ranked_on"], str):
            raise TypeError("file report ranked_on must be a str or None")
        return cls(data["role"], data["file"], data["lines"], data["kept"], data["line_ending"], data["ranked_on"],
                   **{key: _counts(data[key], key) for key in ("dropped", "repaired", "odd", "kept_unseen")})


@dataclass(frozen=True)
class LoadReport:
    """What a load did with every raw file: :attr:`KGDataset.report <are_model.data.KGDataset.report>`.

    Kept in the processed cache, so a cached load reports what the parse found. When any file is
    :attr:`~FileReport.notable`, :func:`~are_model.data.load_dataset` logs :meth:`summary` once, at WARNING.

    Attributes:
        dataset: canonical dataset name.
        rule: the dataset's rule for query triples with symbols absent from their graph, named as in the
            table of :mod:`are_model.data.builders` (``"inductive/MTDEA"``, ``"grail"``, ...).
        files: one :class:`FileReport` per raw file read, in reading order.
        raw_dir: the folder this load read the files from (not cached: the same bytes may live elsewhere).
    """

    dataset: str
    rule: str
    files: tuple[FileReport, ...]
    raw_dir: str | None = None

    def file(self, name: str) -> FileReport:
        """The report of the file called ``name`` (``"inf_test.txt"``) or with role ``name`` (``"test"``)."""
        for report in self.files:
            if name in (report.file, report.role):
                return report
        raise KeyError(f"{self.dataset}: no raw file {name!r} in this load (files: "
                       f"{', '.join(r.file for r in self.files)})")

    @property
    def notable(self) -> bool:
        return any(f.notable for f in self.files)

    def total(self, what: str) -> dict[str, int]:
        """Counts summed over the files: ``what`` is ``dropped``, ``repaired``, ``odd`` or ``kept_unseen``."""
        out: Counter[str] = Counter()
        for report in self.files:
            out.update(getattr(report, what))
        return dict(out)

    @property
    def beyond_rule(self) -> bool:
        """Whether a file needed more than its loader family's documented rule: a repaired line (line endings,
        whitespace, BOM) or an odd one (a duplicate, another separator). Drops and absent symbols that the
        rule prescribes are not: they give the public loader's result."""
        return any(f.repaired or f.odd for f in self.files)

    def summary(self) -> str:
        """One line naming the dataset, its raw folder, the rule, and each notable file with its counts."""
        where = f" ({self.raw_dir})" if self.raw_dir else ""
        notable = [f.describe() for f in self.files if f.notable] or ["every line read as it stands"]
        return (f"{self.dataset}{where}: " + " | ".join(notable)
                + f" [rule {self.rule}: see are_model.data.builders]")

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "rule": self.rule, "files": [f.to_dict() for f in self.files]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadReport":
        """Inverse of :meth:`to_dict` (``KeyError``/``TypeError`` on a malformed record)."""
        if not isinstance(data["dataset"], str) or not isinstance(data["rule"], str):
            raise TypeError("load report dataset/rule must be strs")
        if not isinstance(data["files"], list):
            raise TypeError("load report files must be a list")
        return cls(data["dataset"], data["rule"], tuple(FileReport.from_dict(f) for f in data["files"]))

    def at(self, raw_dir: str | None) -> "LoadReport":
        """The same record, read from ``raw_dir``."""
        return replace(self, raw_dir=raw_dir)


# -------------------------------------------------------------------------------------------- reading

def _decode(data: bytes, path: str) -> tuple[str, list[str], LineStats]:
    """The text (line endings made LF, no BOM), its lines without their endings, and the facts about them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RawFormatError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None
    stats = LineStats()
    if text.startswith("\ufeff"):
        text = text[1:]
        stats.repaired[BOM] = 1
    # universal newlines, as Python's text mode reads them (the FB15k-237 release uses CRLF)
    crlf = text.count("\r\n")
    endings = {"LF": text.count("\n") - crlf, "CRLF": crlf, "CR": text.count("\r") - crlf}
    terminated = sum(endings.values())
    if terminated:
        stats.line_ending = max(endings, key=lambda k: endings[k])  # ties: LF, then CRLF
        if terminated > endings[stats.line_ending]:
            stats.repaired[LINE_ENDING] = terminated - endings[stats.line_ending]
    else:
        stats.line_ending = "none"
    if endings["CRLF"] or endings["CR"]:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1]:
        stats.odd[NO_FINAL_NEWLINE] = 1
    else:
        lines.pop()  # the empty string after the final line ending is not a line
    stats.lines = len(lines)
    return text, lines, stats


#: whitespace other than a space, a tab or a line ending (``str.split()`` separates fields on it too)
_OTHER_SPACE = re.compile(r"[^\S \t\n]")


def _odd_separators(text: str, lines: list[str], triples: int) -> int:
    """Lines of a whitespace-separated file whose separators (how many whitespace characters, how many of
    them tabs) differ from the file's most common ones."""
    tabs, spaces = text.count("\t"), text.count(" ")
    if _OTHER_SPACE.search(text) is None and (tabs, spaces) in ((2 * triples, 0), (0, 2 * triples)):
        return 0  # every line: exactly two tabs, or exactly two spaces
    kinds: Counter[tuple[int, int]] = Counter()
    for line in lines:
        core = line.strip()
        if core:
            kinds[(len(core) - sum(len(f) for f in core.split()), core.count("\t"))] += 1
    return sum(kinds.values()) - max(kinds.values()) if kinds else 0


def parse_triples(data: bytes, path: str, *, delimiter: str | None = None, column_order: str = "hrt") -> TripleFile:
    """Parse ``head relation tail`` lines.

    Args:
        data: the raw bytes of the file.
        path: the file's path, used in error messages.
        delimiter: ``None`` splits on any run of whitespace; otherwise the exact separator (``"\\t"``),
            after stripping surrounding whitespace from the line and from each field.
        column_order: ``"hrt"`` or ``"htr"`` (SparserKG dumps store head, tail, relation).

    Blank lines are skipped and counted; stripped whitespace, line endings unlike the file's, a byte-order
    mark, repeated triples, whitespace-separated lines whose separators differ from the file's usual ones
    and a missing final line ending are counted in :attr:`TripleFile.stats`.

    Raises:
        RawFormatError: a non-blank line without exactly three non-empty fields (names file and line).
    """
    if column_order not in ("hrt", "htr"):
        raise ValueError(f"column_order must be 'hrt' or 'htr', got {column_order!r}")
    rel_col, tail_col = (1, 2) if column_order == "hrt" else (2, 1)
    sep_name = "whitespace" if delimiter is None else repr(delimiter)
    text, lines, stats = _decode(data, path)
    heads: list[str] = []
    rels: list[str] = []
    tails: list[str] = []
    numbers: list[int] = []
    # a tab-separated field can only carry whitespace if the text has some besides tabs (fast path: none)
    strip_fields = delimiter is not None and (" " in text or _OTHER_SPACE.search(text) is not None)
    blank = whitespace = 0
    for number, line in enumerate(lines, start=1):
        core = line.strip()
        if not core:
            blank += 1
            continue
        fields = core.split(delimiter)
        repaired = core != line
        if strip_fields:
            stripped = [f.strip() for f in fields]
            if stripped != fields:
                repaired, fields = True, stripped
        whitespace += repaired
        if len(fields) != 3 or not all(fields):
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise RawFormatError(
                f"{path}:{number}: expected 3 non-empty fields ({column_order}) separated by {sep_name}, "
                f"got {len(fields)}: {shown!r}")
        heads.append(fields[0])
        rels.append(fields[rel_col])
        tails.append(fields[tail_col])
        numbers.append(number)
    stats.blank = blank
    if whitespace:
        stats.repaired[WHITESPACE] = whitespace
    duplicates = len(heads) - len(set(zip(heads, rels, tails)))
    if duplicates:
        stats.odd[DUPLICATE] = duplicates
    if delimiter is None:
        odd = _odd_separators(text, lines, len(heads))
        if odd:
            stats.odd[SEPARATOR] = odd
    return TripleFile(path, heads, rels, tails, numbers, stats)


def parse_id_dict(data: bytes, path: str) -> IdDictFile:
    """Parse an ``id<TAB>name`` dictionary (FB15k-237 ``entities.dict``) into ``names[id]``.

    Also accepts ``name<TAB>id`` lines (the OOKB vocabulary files): the integer column is the id.

    Raises:
        RawFormatError: a malformed line, a repeated id or name, or a gap in ``0..n-1``.
    """
    _, lines, stats = _decode(data, path)
    pairs: dict[int, str] = {}
    names: dict[str, int] = {}
    whitespace = 0
    for number, line in enumerate(lines, start=1):
        core = line.strip()
        if not core:
            stats.blank += 1
            continue
        whitespace += core != line
        fields = core.split("\t")
        if len(fields) != 2:
            raise RawFormatError(f"{path}:{number}: expected 'id<TAB>name', got {line!r}")
        a, b = fields
        if a.isdigit():
            idx, name = int(a), b
        elif b.isdigit():
            idx, name = int(b), a
        else:
            raise RawFormatError(f"{path}:{number}: no integer id in {line!r}")
        if idx in pairs:
            raise RawFormatError(f"{path}:{number}: id {idx} appears twice")
        if name in names:
            raise RawFormatError(f"{path}:{number}: name {name!r} appears twice (ids {names[name]} and {idx})")
        pairs[idx] = name
        names[name] = idx
    if sorted(pairs) != list(range(len(pairs))):
        missing = sorted(set(range(len(pairs))) - set(pairs))[:3]
        raise RawFormatError(f"{path}: ids are not 0..{len(pairs) - 1} (missing e.g. {missing})")
    if whitespace:
        stats.repaired[WHITESPACE] = whitespace
    return IdDictFile(path, [pairs[i] for i in range(len(pairs))], stats)


def encode(
    triples: TripleFile,
    entities: Vocab,
    relations: Vocab,
    *,
    new_entities: str = "add",
    new_relations: str = "add",
    dropped: Counter[str] | None = None,
) -> torch.Tensor:
    """Map string triples to ids, growing the vocabularies in first-appearance order.

    Within a line the head is looked up before the tail (entities), the relation separately.

    Args:
        triples: the parsed file.
        entities, relations: vocabularies, extended in place when the policy is ``"add"``.
        new_entities, new_relations: what an unseen symbol does: ``"add"`` (new id), ``"error"``
            (:class:`VocabularyError` naming file, line and symbol) or ``"drop"`` (skip the triple;
            a dropped line never extends any vocabulary).
        dropped: when given, counts each dropped line under its reason (:data:`UNSEEN_ENTITY` when the
            head or tail is unseen, else :data:`UNSEEN_RELATION`).

    Returns:
        ``[T', 3]`` long tensor of ``(head, relation, tail)`` ids (``T' <= T`` when dropping).
    """
    for policy in (new_entities, new_relations):
        if policy not in ("add", "error", "drop"):
            raise ValueError(f"unknown policy {policy!r}")
    out: list[tuple[int, int, int]] = []
    ent_ids, rel_ids = entities.ids, relations.ids
    drop_e, drop_r = new_entities == "drop", new_relations == "drop"
    for h, r, t, number in zip(triples.heads, triples.relations, triples.tails, triples.line_numbers):
        if drop_e and (h not in ent_ids or t not in ent_ids):
            if dropped is not None:
                dropped[UNSEEN_ENTITY] += 1
            continue
        if drop_r and r not in rel_ids:
            if dropped is not None:
                dropped[UNSEEN_RELATION] += 1
            continue
        if new_entities == "error":
            for sym in (h, t):
                if sym not in ent_ids:
                    raise VocabularyError(f"{triples.path}:{number}: entity {sym!r} is not in the vocabulary")
        if new_relations == "error" and r not in rel_ids:
            raise VocabularyError(
                f"{triples.path}:{number}: relation {r!r} is not in the training relation vocabulary")
        out.append((entities.add(h), relations.add(r), entities.add(t)))
    if not out:
        return torch.empty(0, 3, dtype=torch.long)
    return torch.tensor(out, dtype=torch.long)
