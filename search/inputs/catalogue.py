"""The dataset catalogue behind ``are-search datasets``: every registered dataset, its benchmark group, where
its files come from, what of it is at hand, its size and the publication to cite.

:func:`catalogue` reads the registry (``are_model.data``) and looks at two folders, both arguments (the
command line resolves them with :meth:`search.options.LoadOptions.resolve`). A dataset's size (entities,
relations, triples per file: :mod:`are_model.data.counts`) is counted from its raw files when they are under
the data root (``counted: "local files"``), else taken from the registry's :data:`~are_model.data.registry.COUNTS`
(``counted: "registry"``), else unknown. It downloads nothing, writes nothing and loads no torch.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from are_model.data.registry import CITATIONS, COUNTS, DATASETS, GROUP_ORDER, GROUPS, DatasetSpec
from are_model.text.relation_texts import DEFAULT_LLM

__all__ = ["DatasetEntry", "LOCAL", "REGISTRY", "catalogue", "source_of"]


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the catalogue.

    Attributes:
        name: canonical name (what ``are_model.data.resolve_dataset_name`` returns), e.g. ``HM:1k``.
        group: ``pretraining``, ``transductive``, ``inductive_e`` or ``inductive_er`` (the benchmark's 57
            graphs, reference_results.md), ``other`` for the rest.
        setting: ``transductive`` or ``inductive``.
        source: where its raw files come from: ``github.com/<owner>/<repo>@<ref>`` for files of a GitHub
            repository (a commit shortened to 12 digits), the archive's URL for zip members, the host
            otherwise; several joined with ``; ``, an optional file's marked ``(optional)``.
        present: every raw file the loader needs is under the data root (an optional file, such as
            HM's relation vocabulary, does not count): the dataset loads without a download.
        texts: ``<text root>/<llm>/<text_key>.json`` exists.
        entities, relations: distinct entities and relations over its triple files; None when unknown.
        triples: file role (``train``, ``valid``, ``test``, ``inf_graph``, ...) -> triples; None when unknown.
        counted: where the three come from: ``local files`` (measured now from the files under the data
            root), ``registry`` (measured when the registry was written), None (unknown).
        citation: the publication of its family (:data:`~are_model.data.registry.CITATIONS`).
    """

    name: str
    group: str
    setting: str
    source: str
    present: bool
    texts: bool
    entities: int | None = None
    relations: int | None = None
    triples: dict[str, int] | None = None
    counted: str | None = None
    citation: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _origin(url: str, archive: bool) -> str:
    if archive:
        return url
    parsed = urllib.parse.urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc == "raw.githubusercontent.com" and len(parts) >= 3:
        return f"github.com/{parts[0]}/{parts[1]}@{_ref(parts[2])}"
    if parsed.netloc == "github.com" and len(parts) >= 4 and parts[2] in ("raw", "blob"):
        return f"github.com/{parts[0]}/{parts[1]}@{_ref(parts[3])}"
    return parsed.netloc or url


def _ref(ref: str) -> str:
    """A branch as it is; a full commit hash shortened to 12 digits."""
    return ref[:12] if len(ref) == 40 and not ref.strip("0123456789abcdef") else ref


def source_of(spec: DatasetSpec) -> str:
    """Where ``spec``'s raw files come from, in one short string (see :class:`DatasetEntry`)."""
    origins: list[str] = []
    for raw in spec.files:
        origin = _origin(raw.url, raw.member is not None)
        if raw.optional:
            origin += " (optional)"
        if origin not in origins:
            origins.append(origin)
    return "; ".join(origins)


def _present(spec: DatasetSpec, data_root: Path | None) -> bool:
    if data_root is None:
        return False
    raw_dir = spec.raw_dir(data_root)
    return all((raw_dir / raw.local_name).is_file() for raw in spec.files if not raw.optional)


def catalogue(data_root: str | os.PathLike | None, text_root: str | os.PathLike | None, *,
              llm: str = DEFAULT_LLM) -> list[DatasetEntry]:
    """Every registered dataset, the benchmark's groups first in their order, then ``other``.

    Args:
        data_root: the folder of ``<Dataset>/<version>/raw/<file>`` (None: nothing is present).
        text_root: the folder of ``<llm>/<text_key>.json`` (None: no texts).
        llm: the relation texts' LLM folder.
    """
    root = None if data_root is None else Path(data_root)
    texts = None if text_root is None else Path(text_root) / llm
    rank = {group: i for i, group in enumerate(GROUP_ORDER)}
    listed = {name: i for names in GROUPS.values() for i, name in enumerate(names)}
    # the groups in the tables' order, each in its listing's order; "other" last, in registry order
    specs = sorted(DATASETS.values(), key=lambda spec: (rank[spec.group], listed.get(spec.name, 0)))
    entries = []
    for spec in specs:
        present = _present(spec, root)
        size = _size(spec, root if present else None)
        entries.append(DatasetEntry(name=spec.name, group=spec.group, setting=spec.setting, source=source_of(spec),
                                    present=present,
                                    texts=texts is not None and (texts / f"{spec.text_key}.json").is_file(),
                                    **size, citation=CITATIONS[spec.class_name]))
    return entries


#: ``DatasetEntry.counted`` of a size measured now from the files under the data root, and of one from the registry.
LOCAL, REGISTRY = "local files", "registry"


def _size(spec: DatasetSpec, root: Path | None) -> dict[str, Any]:
    """``entities``, ``relations``, ``triples`` and ``counted`` of ``spec``: counted from its raw files under
    ``root`` (None: not present), else the registry's record, else all None."""
    from are_model.data.counts import count_raw_files

    measured = None if root is None else count_raw_files(spec, root)
    if measured is not None:
        return {"entities": measured.entities, "relations": measured.relations, "triples": dict(measured.triples),
                "counted": LOCAL}
    if spec.name in COUNTS:
        entities, relations, triples = COUNTS[spec.name]
        return {"entities": entities, "relations": relations, "triples": dict(triples), "counted": REGISTRY}
    return {"entities": None, "relations": None, "triples": None, "counted": None}
