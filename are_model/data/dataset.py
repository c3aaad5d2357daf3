"""``load_dataset``: registry entry -> raw files (downloaded if needed) -> cached, parsed splits.

The data root and the processed-data cache are arguments; nothing here reads the environment. Every load,
cached or not, carries the :class:`LoadReport` of its parse and logs it once: at INFO when the documented rule
dropped a line or kept one with a symbol absent from its graph (the public loader's result), at WARNING when a
line was repaired or looked odd (rules: :mod:`.builders`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from torch_geometric.data import Data

from .builders import build_splits
from .cache import cache_key, cache_path, file_digests, load_cached, save_cached
from .download import ensure_raw_files
from .errors import DataRootError, DatasetError
from .graph import SPLITS, pack, unpack, unpack_report
from .parse import LoadReport
from .registry import DatasetSpec, get_spec

__all__ = ["KGDataset", "load_dataset", "raw_file_identity"]

logger = logging.getLogger(__name__)


@dataclass
class KGDataset:
    """A loaded benchmark: three PyG ``Data`` splits (fields in :func:`are_model.data.graph.to_data`).

    Attributes:
        name: canonical ``Class[:version]``, e.g. ``"FB15k237Inductive:v1"``.
        text_key: relation-text file stem (spec §2.1), e.g. ``"FBNELL-FBNELL_v1"``.
        setting: ``"transductive"`` or ``"inductive"``.
        train, valid, test: the splits.
        report: what the load did with each raw file's lines (:class:`LoadReport`): lines read, dropped
            by reason, repaired, odd, and queries kept with a symbol absent from their graph.
        files: the identity of the raw files this load read: role -> (file name, hex sha256 of its bytes),
            the same hashes the processed-data cache key is made of (:func:`raw_file_identity`).
    """

    name: str
    text_key: str
    setting: str
    train: Data
    valid: Data
    test: Data
    report: LoadReport | None = field(default=None, repr=False, compare=False)
    files: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False, compare=False)

    def split(self, name: str) -> Data:
        """The split called ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r} for {self.name}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)


def load_dataset(
    name: str,
    data_root: str | os.PathLike | None,
    *,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> KGDataset:
    """Load a dataset by name.

    Args:
        name: any spelling :func:`resolve_dataset_name` accepts (``"FBNELL"``, ``"ILPC2022:small"``...).
        data_root: data root holding ``<Class>/<version>/raw/<file>`` (required: None raises
            :class:`DataRootError`).
        cache_dir: processed-data cache (``<cache_dir>/<name>/<sha256>.pt``); None: no disk cache, the
            raw files are parsed on every call.
        download: fetch missing raw files from their public URLs into ``data_root``.

    Raises:
        UnknownDatasetError, DataRootError, MissingRawFileError, DownloadError, RawFormatError,
        VocabularyError: each with a one-line message naming the dataset, file, line or key.
    """
    spec = get_spec(name)
    paths, blobs, digests = _read_raw(spec, data_root, download)
    target = None
    payload = None
    if cache_dir is not None:
        target = cache_path(cache_dir, spec.name, cache_key(repr(spec), digests))
        payload = load_cached(target)
    splits = report = None
    if payload is not None:
        try:
            splits, report = unpack(payload), unpack_report(payload)
            logger.debug("%s: processed cache hit %s", spec.name, target)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            splits = None
            logger.warning("ignoring malformed processed cache %s (%s); rebuilding", target, exc)
    if splits is None or report is None:
        start = time.perf_counter()
        built, report = build_splits(spec, blobs)
        payload = pack(spec.name, built, report)
        splits = unpack(payload)
        if target is not None:
            save_cached(target, payload)
        logger.info("%s: parsed raw files in %.1fs, cached at %s", spec.name, time.perf_counter() - start,
                    target if target is not None else "(no cache)")
    report = report.at(str(next(iter(paths.values())).parent))  # the folder this load read
    # What the documented rule did (FBNELL's 169 dropped validation lines) is the public loader's result: INFO
    # (-v shows it). A file that needed more (a repaired or odd line) is worth a WARNING.
    level = logging.WARNING if report.beyond_rule else logging.INFO if report.notable else logging.DEBUG
    logger.log(level, "%s", report.summary())
    return KGDataset(spec.name, spec.text_key, spec.setting, **splits, report=report,
                     files={role: (paths[role].name, digests[role]) for role in paths})


def raw_file_identity(name: str, data_root: str | os.PathLike | None, *,
                      download: bool = True) -> dict[str, tuple[str, str]]:
    """What a load of ``name`` would read, without parsing it: role -> (file name, hex sha256 of its bytes)
    for every raw file present (required ones downloaded when missing and ``download`` is True). Equal to
    :attr:`KGDataset.files` of the same load; a study stores it to refuse a resume on other files.

    Raises:
        the errors of :func:`load_dataset` before parsing: UnknownDatasetError, DataRootError,
        MissingRawFileError, DownloadError.
    """
    spec = get_spec(name)
    paths, _, digests = _read_raw(spec, data_root, download)
    return {role: (paths[role].name, digests[role]) for role in paths}


def _read_raw(spec: DatasetSpec, data_root: str | os.PathLike | None,
              download: bool) -> tuple[dict[str, Path], dict[str, tuple[str, bytes]], dict[str, str]]:
    """``(paths, blobs, digests)`` of the raw files of ``spec``: role -> path, role -> (path, bytes) and
    role -> sha256; each file read and hashed once."""
    if data_root is None:
        raise DataRootError(f"{spec.name}: no data root given; pass data_root, the folder holding "
                            "<Dataset>/<version>/raw/ (the command line: --data-root or ARE_DATA_ROOT)")
    paths = ensure_raw_files(spec, Path(data_root), download=download)
    blobs = {role: (str(path), path.read_bytes()) for role, path in paths.items()}
    return paths, blobs, file_digests(blobs)
