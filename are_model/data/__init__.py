"""Knowledge-graph benchmark datasets: registry of public sources, loaders, filters, processed cache.

``load_dataset(name, data_root, cache_dir=...)`` returns a :class:`KGDataset` whose ``train``/``valid``/``test`` are PyG ``Data``
objects with the fact graph (inverse edges appended), the split's queries and the filter triples used
for filtered ranking (spec §6.6, §7). The data root is a required argument and the processed-data cache
an optional one; nothing here reads the environment.

Data rules
----------
A valid or test triple whose head, tail or relation is absent from the graph it is ranked on follows one
rule per loader family, the public loader's (ULTRA's ``datasets.py``): dropped for the valid split of the
MTDEA family (FBNELL, Metafam, WikiTopics), an error for an unseen relation in GraIL's inductive test files
and in HM's valid file, and otherwise kept, as an isolated node or an edgeless relation. The table, the
loader behind each row and the rules for blank, repaired, repeated and odd lines are in
:mod:`are_model.data.builders`.

Every load says what it did: ``KGDataset.report`` is a :class:`LoadReport` with one :class:`FileReport`
per raw file (lines read, kept, dropped by reason, repaired, odd, queries kept with an absent symbol),
kept in the processed cache so a cached load reports the same; when any count is not zero the load logs
:meth:`LoadReport.summary` once, naming the dataset, its raw folder and the files: at INFO when only the documented
rule acted (the public loader's result), at WARNING when a line was repaired or looked odd.
"""
from .errors import (DataRootError, DatasetError, DownloadError, MissingRawFileError, RawFormatError,
                     UnknownDatasetError, VocabularyError)
from .registry import DATASETS, DatasetSpec, RawFile, get_spec, resolve_dataset_name

from ..lazy import lazy_exports

#: the names loaded on first use, and the module each comes from
_LAZY = {
    "FileReport": "parse",
    "KGDataset": "dataset",
    "LoadReport": "parse",
    "load_dataset": "dataset",
    "raw_file_identity": "dataset",
}

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "RawFile",
    "KGDataset",
    "LoadReport",
    "FileReport",
    "load_dataset",
    "raw_file_identity",
    "resolve_dataset_name",
    "get_spec",
    "DatasetError",
    "UnknownDatasetError",
    "DataRootError",
    "RawFormatError",
    "VocabularyError",
    "MissingRawFileError",
    "DownloadError",
]

# Loaders and reports need torch and PyG; the registry and the errors do not, so `are-search datasets`,
# `status` and `export` read the registry without loading torch.
__getattr__ = lazy_exports(__name__, _LAZY, globals())
