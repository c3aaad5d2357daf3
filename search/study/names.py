"""Study names: ``<dataset>/<mode>``, with the dataset part in the loader's canonical spelling.

One study per (dataset, mode): ``--dataset metafam``, ``Metafam`` and ``Metafam:Metafam`` all name the
study ``Metafam:Metafam/fixed`` because :func:`are_model.data.resolve_dataset_name` maps them to one
canonical name. Commands that take a study accept any accepted spelling of its dataset part
(``FBNELL/fixed`` finds ``FBNELL:FBNELL_v1/fixed``); see :func:`search.storage.find_study`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from search.errors import StudyError

__all__ = ["MODES", "LEARNABLE_MODES", "StudyName", "canonical_dataset"]

#: The fusion modes a study searches: fixed weights, learnable softmax weights (sum 1), learnable free
#: weights (non-negative, no sum constraint; ``are_model.fusion``). The mode is the study name's last part.
MODES = ("fixed", "learnable", "learnable_free")
#: The modes whose trials fine-tune (their budget is epochs x batches, see search.study.finetune).
LEARNABLE_MODES = ("learnable", "learnable_free")
_DATASET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*\Z")


def canonical_dataset(name: str) -> str:
    """The loader's canonical spelling of dataset ``name``; UnknownDatasetError (one line) otherwise."""
    from are_model.data import resolve_dataset_name

    return resolve_dataset_name(name)


@dataclass(frozen=True)
class StudyName:
    """The name of one study: a dataset and a fusion mode, written ``<dataset>/<mode>``."""

    dataset: str
    mode: str

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not _DATASET_RE.match(self.dataset):
            raise StudyError(f"bad dataset name {self.dataset!r}: use letters, digits and _ . : + -")
        if self.mode not in MODES:
            raise StudyError(f"bad mode {self.mode!r}: expected one of {', '.join(MODES)}")

    @classmethod
    def parse(cls, value: str) -> "StudyName":
        """Split ``"FBNELL/fixed"`` into its parts as written (no dataset lookup)."""
        if not isinstance(value, str) or value.count("/") != 1:
            raise StudyError(f"bad study name {value!r}: expected <dataset>/<mode>, e.g. FBNELL/fixed")
        dataset, mode = value.split("/")
        try:
            return cls(dataset, mode)
        except StudyError as exc:
            raise StudyError(f"bad study name {value!r}: {exc}") from None

    @classmethod
    def of(cls, dataset: str, mode: str) -> "StudyName":
        """The canonical name of the study of ``dataset`` (any accepted spelling) in ``mode``."""
        return cls(canonical_dataset(dataset), mode)

    def canonical(self) -> "StudyName":
        """This name with its dataset part in the loader's canonical spelling."""
        return StudyName.of(self.dataset, self.mode)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.mode}"
