"""The dataset catalogue behind ``are-search datasets``: every registered dataset, its benchmark group, where
its files come from and what of it is at hand.

:func:`catalogue` reads the registry (``are_model.data``) and looks at two folders, both arguments (the
command line resolves them with :meth:`search.options.LoadOptions.resolve`); it reads no file's content,
downloads nothing and writes nothing.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from are_model.data.registry import DATASETS, GROUP_ORDER, GROUPS, DatasetSpec
from are_model.text.relation_texts import DEFAULT_LLM

__all__ = ["DatasetEntry", "catalogue", "source_of"]


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
    """

    name: str
    group: str
    setting: str
    source: str
    present: bool
    texts: bool

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
    return [DatasetEntry(name=spec.name, group=spec.group, setting=spec.setting, source=source_of(spec),
                         present=_present(spec, root),
                         texts=texts is not None and (texts / f"{spec.text_key}.json").is_file())
            for spec in specs]
