"""Size of a dataset counted from its raw files, without torch: entities, relations and triples per file.

:func:`count_raw_files` reads each raw triple file of a :class:`~are_model.data.registry.DatasetSpec` line by
line, splits a line as the loader does (the spec's ``delimiter``: a tab-separated file on tabs, the others on
any whitespace; its ``column_order``: head, relation, tail or head, tail, relation) and counts

* **triples** per file role (``train``, ``valid``, ``test``, ``inf_graph``, ...): the lines that hold a
  triple (three fields); blank lines and lines of another shape are not counted;
* **entities**: distinct heads and tails over all of the dataset's triple files together;
* **relations**: distinct relations over the same files.

These are the numbers of the raw files as released, before any loader rule (the MTDEA family's validation
filter drops some lines on loading; see :mod:`are_model.data.builders`), so an inductive dataset's entities
are those of its training and inference graphs together. The registry's :data:`~are_model.data.registry.COUNTS`
holds them for the datasets measured so; ``are-search datasets`` shows them and measures again where the files
are present. The dictionaries of FB15k-237 (``entities``, ``relations`` roles) and HM's optional relation
vocabulary are not triple files and are not read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .registry import DatasetSpec

__all__ = ["NOT_TRIPLES", "RawCounts", "count_raw_files"]

#: File roles that hold no triples (vocabularies, names).
NOT_TRIPLES = frozenset({"entities", "relations", "relation_names"})


@dataclass(frozen=True)
class RawCounts:
    """A dataset's size as counted from its raw files (see the module doc for what each number counts).

    Attributes:
        entities: distinct heads and tails over every triple file.
        relations: distinct relations over every triple file.
        triples: role -> the lines holding a triple in that file, in the spec's file order.
    """

    entities: int
    relations: int
    triples: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"entities": self.entities, "relations": self.relations, "triples": dict(self.triples)}


def count_raw_files(spec: DatasetSpec, data_root: str | os.PathLike) -> RawCounts | None:
    """The :class:`RawCounts` of ``spec``'s triple files under ``data_root``; None when a required file is
    missing (nothing is downloaded). An optional triple file that is present is counted too.

    Raises:
        OSError: a file that exists but cannot be read.
    """
    raw_dir = spec.raw_dir(data_root)
    files = [raw for raw in spec.files if raw.role not in NOT_TRIPLES]
    if any(not (raw_dir / raw.local_name).is_file() for raw in files if not raw.optional):
        return None
    entities: set[str] = set()
    relations: set[str] = set()
    triples: dict[str, int] = {}
    relation_at = 1 if spec.column_order == "hrt" else 2
    for raw in files:
        path = Path(raw_dir / raw.local_name)
        if not path.is_file():
            continue
        count = 0
        with open(path, encoding="utf-8-sig", newline=None) as handle:
            for line in handle:
                fields = line.strip().split(spec.delimiter) if spec.delimiter else line.split()
                if len(fields) != 3:
                    continue
                if spec.delimiter:
                    fields = [f.strip() for f in fields]
                count += 1
                relations.add(fields[relation_at])
                entities.add(fields[0])
                entities.add(fields[3 - relation_at])
        triples[raw.role] = count
    return RawCounts(len(entities), len(relations), triples)
