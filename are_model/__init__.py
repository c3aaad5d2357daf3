"""are_model: ULTRA / SEMMA / ARE knowledge-graph foundation models in pure PyTorch + PyG.

The public API, importable from here::

    from are_model import load_checkpoint, load_dataset, prepare_split, evaluate_split, TextOptions

    model, info = load_checkpoint("fusion.pth")
    dataset = load_dataset("FBNELL", data_root, cache_dir=cache)
    split = prepare_split(dataset, "valid", text=TextOptions(root=text_root, encoder="minilm"))
    metrics, ranks = evaluate_split(model, split)

Every location (data root, text root, caches, a local jina copy) is an argument: nothing in
``are_model`` reads the environment or falls back on a default folder. It depends on torch, PyG and
numba only; Optuna, Ray and YAML belong to ``search``.

Names are imported lazily, on first access, so that ``import are_model.data`` loads only the data
package and no import cycle can appear.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from are_model.lazy import lazy_exports

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # model and checkpoints
    "AREModel": "model",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "read_state_dict": "checkpoint",
    "detect_profile": "checkpoint",
    "CheckpointInfo": "checkpoint",
    # datasets
    "load_dataset": "data",
    "resolve_dataset_name": "data",
    "get_spec": "data",
    "DATASETS": "data",
    "KGDataset": "data",
    # text
    "build_encoder": "text",
    "load_relation_texts": "text",
    "relation_embeddings": "text",
    # from a split to metrics
    "TextOptions": "pipeline",
    "PreparedSplit": "pipeline",
    "prepare_split": "pipeline",
    "evaluate_split": "pipeline",
    "rank_queries": "evaluate",
    "ranking_metrics": "evaluate",
    # fine-tuning
    "fine_tune": "train",
    "FineTuneConfig": "train",
    "FineTuneResult": "train",
    # errors (each a one-line message)
    "CheckpointError": "checkpoint",
    "DatasetError": "data",
    "UnknownDatasetError": "data",
    "DataRootError": "data",
    "RawFormatError": "data",
    "VocabularyError": "data",
    "MissingRawFileError": "data",
    "DownloadError": "data",
    "RelationTextError": "text",
    "MissingExtraError": "text",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .checkpoint import (CheckpointError, CheckpointInfo, detect_profile, load_checkpoint, read_state_dict,
                             save_checkpoint)
    from .data import (DATASETS, DataRootError, DatasetError, DownloadError, KGDataset, MissingRawFileError,
                       RawFormatError, UnknownDatasetError, VocabularyError, get_spec, load_dataset,
                       resolve_dataset_name)
    from .evaluate import rank_queries, ranking_metrics
    from .model import AREModel
    from .pipeline import PreparedSplit, TextOptions, evaluate_split, prepare_split
    from .text import MissingExtraError, RelationTextError, build_encoder, load_relation_texts, relation_embeddings
    from .train import FineTuneConfig, FineTuneResult, fine_tune
