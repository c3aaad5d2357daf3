"""Reading raw triple files and assigning ids in first-appearance order (spec §7.2).

Parsing walks the lines in Python (string keys need dict look-ups); everything after that is tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .errors import RawFormatError, VocabularyError

__all__ = ["TripleFile", "Vocab", "parse_triples", "parse_id_dict", "encode"]


@dataclass
class TripleFile:
    """The string triples of one raw file, in file order.

    Attributes:
        path: the file (for error messages).
        heads, relations, tails: the string fields, one entry per triple.
        line_numbers: 1-based line number of each triple (blank lines are skipped).
    """

    path: str
    heads: list[str]
    relations: list[str]
    tails: list[str]
    line_numbers: list[int]

    def __len__(self) -> int:
        return len(self.heads)


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


def _decode(data: bytes, path: str) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RawFormatError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None
    # universal newlines, as Python's text mode reads them (the FB15k-237 release uses CRLF)
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_triples(data: bytes, path: str, *, delimiter: str | None = None, column_order: str = "hrt") -> TripleFile:
    """Parse ``head relation tail`` lines.

    Args:
        data: the raw bytes of the file.
        path: the file's path, used in error messages.
        delimiter: ``None`` splits on any run of whitespace; otherwise the exact separator (``"\\t"``),
            after stripping surrounding whitespace from the line.
        column_order: ``"hrt"`` or ``"htr"`` (SparserKG dumps store head, tail, relation).

    Raises:
        RawFormatError: a non-blank line without exactly three non-empty fields (names file and line).
    """
    if column_order not in ("hrt", "htr"):
        raise ValueError(f"column_order must be 'hrt' or 'htr', got {column_order!r}")
    rel_col, tail_col = (1, 2) if column_order == "hrt" else (2, 1)
    sep_name = "whitespace" if delimiter is None else repr(delimiter)
    heads: list[str] = []
    rels: list[str] = []
    tails: list[str] = []
    numbers: list[int] = []
    for number, line in enumerate(_decode(data, path), start=1):
        if not line.strip():
            continue
        fields = line.split() if delimiter is None else line.strip().split(delimiter)
        if len(fields) != 3 or not all(fields):
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise RawFormatError(
                f"{path}:{number}: expected 3 non-empty fields ({column_order}) separated by {sep_name}, "
                f"got {len(fields)}: {shown!r}")
        heads.append(fields[0])
        rels.append(fields[rel_col])
        tails.append(fields[tail_col])
        numbers.append(number)
    return TripleFile(path, heads, rels, tails, numbers)


def parse_id_dict(data: bytes, path: str) -> list[str]:
    """Parse an ``id<TAB>name`` dictionary (FB15k-237 ``entities.dict``) into ``names[id]``.

    Also accepts ``name<TAB>id`` lines (the OOKB vocabulary files): the integer column is the id.

    Raises:
        RawFormatError: a malformed line, a repeated id or a gap in ``0..n-1``.
    """
    pairs: dict[int, str] = {}
    for number, line in enumerate(_decode(data, path), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
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
        pairs[idx] = name
    if sorted(pairs) != list(range(len(pairs))):
        missing = sorted(set(range(len(pairs))) - set(pairs))[:3]
        raise RawFormatError(f"{path}: ids are not 0..{len(pairs) - 1} (missing e.g. {missing})")
    return [pairs[i] for i in range(len(pairs))]


def encode(
    triples: TripleFile,
    entities: Vocab,
    relations: Vocab,
    *,
    new_entities: str = "add",
    new_relations: str = "add",
) -> torch.Tensor:
    """Map string triples to ids, growing the vocabularies in first-appearance order.

    Within a line the head is looked up before the tail (entities), the relation separately.

    Args:
        triples: the parsed file.
        entities, relations: vocabularies, extended in place when the policy is ``"add"``.
        new_entities, new_relations: what an unseen symbol does: ``"add"`` (new id), ``"error"``
            (:class:`VocabularyError` naming file, line and symbol) or ``"drop"`` (skip the triple;
            a dropped line never extends any vocabulary).

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
        if (drop_e and (h not in ent_ids or t not in ent_ids)) or (drop_r and r not in rel_ids):
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
