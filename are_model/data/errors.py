"""Exceptions of the dataset package: each carries one line naming the file, key or value at fault."""
from __future__ import annotations

__all__ = [
    "DatasetError",
    "UnknownDatasetError",
    "DataRootError",
    "RawFormatError",
    "VocabularyError",
    "MissingRawFileError",
    "DownloadError",
]


class DatasetError(ValueError):
    """Base class of the value errors raised while resolving or parsing a dataset."""


class UnknownDatasetError(DatasetError):
    """A dataset name that is not in the registry (the message lists close matches)."""


class DataRootError(DatasetError):
    """No data root was given to :func:`~are_model.data.load_dataset` (its ``data_root`` is None)."""


class RawFormatError(DatasetError):
    """A raw file has a malformed line (the message names the file and the 1-based line number)."""


class VocabularyError(DatasetError):
    """A triple uses a symbol that the dataset's vocabulary rules forbid (e.g. an unseen test relation)."""


class MissingRawFileError(FileNotFoundError):
    """A raw file is absent and downloading was not allowed."""


class DownloadError(FileNotFoundError):
    """A raw file is absent and could not be downloaded (the message says where to put it by hand).

    Attributes:
        wanted: when the error is about one missing file, its path relative to the root folder it is read
            from (``Metafam/Metafam/raw/transductive_train.txt`` under a data root, ``<llm>/<text_key>.json``
            under a text root), where a copy placed by hand is used without downloading; None otherwise (a
            malformed pins file, a refused download).
    """

    def __init__(self, message: str, *, wanted: str | None = None) -> None:
        super().__init__(message)
        self.wanted = wanted
