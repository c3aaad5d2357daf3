"""A persistent cache of a report's rank vectors, so a second report of a study costs no entity pass.

A report ranks a handful of fusion settings on the test split (and, for the settings no trial measured,
on validation). Those ranks depend only on what goes into the ranking, so :class:`RankCache` keeps them
on disk, one file per evaluation::

    <cache_dir>/ranks/<sha256 of the key>.pt      {"key": <the key as JSON>, "ranks": int64 tensor [Q]}

The key (:meth:`RankCache.key`) names everything that can change a rank:

* ``dataset`` (canonical name), ``split``, ``loader`` (:data:`are_model.data.cache.LOADER_VERSION`);
* ``inputs``: sha256 of the prepared split's tensors -- the fact graph (edges, edge types, node and
  relation counts), the relation text vectors (so the relation texts and the encoder's output), the
  queries and the filter index -- which also covers the raw files under whichever data root was used;
* ``encoder``: the text encoder's name (``minilm``, ``jina:<revision>``, ``vectors:<sha256>``);
* ``checkpoint_sha256``: the checkpoint file's content hash;
* ``weights``: the exact fusion weights (``float.hex`` of each; None for the model's own fusion);
* ``sample``: for a split ranked on a sample (a report's test sample), its size in pairs and the seed of
  the stratified order it is the head of (``{"pairs": N, "seed": S}``; absent for the whole split: then the
  ranks of the queries outside the sample are 0);
* ``batch_size``: rank_queries' ranks are independent of how queries are batched only at one batch
  size (every entity pass has exactly ``batch_size`` rows; another size changes the products' shapes
  and so, in float rounding, possibly a tie-sensitive rank);
* ``device`` (type, and the GPU's name on CUDA), ``threads`` (torch's CPU threads), ``torch``,
  ``numba`` (whether the fused CPU kernel of :mod:`are_model.kernels` runs, and its version):
  they decide the order of float summation;
* ``code``: sha256 of the ``are_model`` source files, so an edit to the model or the ranking code
  never reads ranks of the old code; and :data:`RANK_CACHE_VERSION` for this file's layout.

A file is read only when its stored key equals the wanted one and its ranks have the split's length;
an unreadable or mismatching file is ignored (and overwritten). Files are written with the project's
atomic write (:func:`are_model.fileio.atomic_write`), so concurrent reports never read half a file.
``hits`` and ``misses`` count the lookups of one instance: one count per lookup that reads the disk. A lookup
that tries one key and falls back to another on a miss (a report's test sample: the whole split's ranks,
then the sample's) counts a hit where either is found and one miss where neither is: its first try is a
``get(..., count_miss=False)``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from are_model.fileio import atomic_write, sha256_file

__all__ = ["RANK_CACHE_VERSION", "RANKS_DIR", "RankCache", "code_fingerprint", "split_fingerprint"]

_logger = logging.getLogger(__name__)

#: Bump when the file layout or the meaning of a key field changes.
RANK_CACHE_VERSION = 1
#: The cache's folder under a LoadOptions cache dir.
RANKS_DIR = "ranks"

_CODE: str | None = None
_CHECKPOINTS: dict[tuple[str, int, int], str] = {}


def code_fingerprint() -> str:
    """sha256 (hex) over the source files of the ``are_model`` package (path and bytes, sorted by path)."""
    global _CODE
    if _CODE is None:
        from are_model import evaluate  # the package itself may be a namespace path (editable installs)

        root = Path(evaluate.__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        _CODE = digest.hexdigest()
    return _CODE


def _checkpoint_sha256(path: str | os.PathLike) -> str:
    """The checkpoint's sha256, hashed once per (file, size, modification time) in this process."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKPOINTS:
        _CHECKPOINTS[key] = sha256_file(resolved)
    return _CHECKPOINTS[key]


def _update(digest: Any, name: str, tensor: Tensor | None) -> None:
    if tensor is None:
        digest.update(f"{name}:none\0".encode())
        return
    data = tensor.detach().cpu().contiguous()
    digest.update(f"{name}:{data.dtype}:{list(data.shape)}\0".encode())
    digest.update(data.numpy().tobytes() if data.dtype != torch.bfloat16 else data.float().numpy().tobytes())


def split_fingerprint(prepared: Any) -> str:
    """sha256 (hex) of what a prepared split (:class:`are_model.pipeline.PreparedSplit`) feeds the ranking:
    its graph's edges, edge types, node and relation counts and text vectors, its queries and filters."""
    digest = hashlib.sha256()
    graph, queries, filters = prepared.graph, prepared.queries, prepared.filters
    digest.update(f"nodes:{graph.num_nodes}\0relations:{graph.num_relations}\0".encode())
    _update(digest, "edge_index", graph.edge_index)
    _update(digest, "edge_type", graph.edge_type)
    _update(digest, "text_embeddings", graph.text_embeddings)
    for field in ("anchors", "query_relations", "forward_relations", "answers", "is_head"):
        _update(digest, field, getattr(queries, field))
    digest.update(f"filter_relations:{filters.num_relations}\0".encode())
    _update(digest, "filter_keys", filters.keys)
    _update(digest, "filter_answers", filters.answers)
    return digest.hexdigest()


def _device_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


class RankCache:
    """Rank vectors of (dataset, checkpoint, encoder, split, weights, ...) in ``folder`` (see the module doc).

    folder: the cache folder (created on the first write). Use :meth:`under` for the folder of a
    LoadOptions cache dir.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0
        # id(prepared split) -> (that split, its fingerprint); the split is held so its id is never reused
        self._fingerprints: dict[int, tuple[Any, str]] = {}

    @classmethod
    def under(cls, cache_dir: str | os.PathLike | None) -> "RankCache | None":
        """The cache in ``<cache_dir>/ranks``, or None without a cache dir (then nothing is cached)."""
        return None if cache_dir is None else cls(Path(cache_dir) / RANKS_DIR)

    def key(self, context: Any, split: str, weights: Sequence[float] | None, *, sample: int | None = None) -> dict[str, Any]:
        """The key of ranking ``split`` of ``context`` (a :class:`search.objectives.context.SearchContext`) with ``weights``
        ((w_sim, w_prompt), or None for the model's own fusion), on its first ``sample`` pairs of the context's
        seeded order (None: the whole split). Prepares the split if needed (no entity pass)."""
        from are_model import kernels
        from are_model.data.cache import LOADER_VERSION

        prepared = context.split(split)
        known = self._fingerprints.get(id(prepared))
        if known is None or known[0] is not prepared:
            known = self._fingerprints[id(prepared)] = (prepared, split_fingerprint(prepared))
        numba = getattr(kernels, "numba", None)
        key = {
            "version": RANK_CACHE_VERSION,
            "dataset": context.dataset,
            "split": split,
            "loader": LOADER_VERSION,
            "inputs": known[1],
            "encoder": prepared.encoder,
            "checkpoint_sha256": _checkpoint_sha256(context.checkpoint_path),
            "weights": None if weights is None else [float(w).hex() for w in weights],
            "batch_size": int(context.batch_size),
            "device": _device_text(context.device),
            "threads": torch.get_num_threads() if context.device.type == "cpu" else None,
            "torch": torch.__version__,
            "numba": getattr(numba, "__version__", None) if kernels.available() else None,
            "code": code_fingerprint(),
        }
        if sample is not None:
            key["sample"] = {"pairs": int(sample), "seed": context.stage_seed}
        return key

    def path(self, key: dict[str, Any]) -> Path:
        """The file of ``key``: ``<folder>/<sha256 of the key's JSON>.pt``."""
        return self.folder / f"{hashlib.sha256(_text(key).encode()).hexdigest()}.pt"

    def get(self, context: Any, split: str, weights: Sequence[float] | None, *,
            sample: int | None = None, count_miss: bool = True) -> Tensor | None:
        """The cached ranks [Q] (int64, CPU; 0 outside a ``sample``) of this evaluation, or None (not cached,
        unreadable, stale). A hit adds one to ``hits``, a miss one to ``misses`` unless ``count_miss`` is
        False (a first try that another ``get`` follows on a miss, so that the lookup counts one miss)."""
        key = self.key(context, split, weights, sample=sample)
        path = self.path(key)
        ranks = None
        if path.is_file():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                stored = payload.get("ranks") if isinstance(payload, dict) else None
                expected = len(context.split(split).queries)
                if (isinstance(payload, dict) and payload.get("key") == _text(key) and isinstance(stored, Tensor)
                        and stored.shape == (expected,)):
                    ranks = stored
                else:
                    _logger.warning("rank cache %s does not hold this evaluation; evaluating again", path)
            except Exception as error:  # an unreadable file is rebuilt, never fatal
                _logger.warning("ignoring unreadable rank cache %s (%s: %s)", path, type(error).__name__, error)
        if ranks is None:
            self.misses += int(count_miss)
        else:
            self.hits += 1
        return ranks

    def put(self, context: Any, split: str, weights: Sequence[float] | None, ranks: Tensor, *,
            sample: int | None = None) -> Path:
        """Store ``ranks`` [Q] of this evaluation (atomically); returns the file."""
        key = self.key(context, split, weights, sample=sample)
        payload = {"key": _text(key), "ranks": ranks.detach().cpu().to(torch.int64).clone()}
        return atomic_write(self.path(key), lambda tmp: torch.save(payload, tmp))


def _text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))
