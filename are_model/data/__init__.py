"""Knowledge-graph benchmark datasets: registry of public sources, loaders, filters, processed cache.

``load_dataset(name, data_root, cache_dir=...)`` returns a :class:`KGDataset` whose ``train``/``valid``/``test`` are PyG ``Data``
objects with the fact graph (inverse edges appended), the split's queries and the filter triples used
for filtered ranking (spec §6.6, §7). The data root is a required argument and the processed-data cache
an optional one; nothing here reads the environment.
"""
from .dataset import KGDataset, load_dataset
from .errors import (DataRootError, DatasetError, DownloadError, MissingRawFileError, RawFormatError,
                     UnknownDatasetError, VocabularyError)
from .registry import DATASETS, DatasetSpec, RawFile, get_spec, resolve_dataset_name

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "RawFile",
    "KGDataset",
    "load_dataset",
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
