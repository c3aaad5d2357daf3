"""Per-relation text vectors E in R^{2R x 64} (spec §2.3, SEMMA's ``rg2_embedding``).

For relation r with text key k (its raw name, or its Wikidata label), four texts are encoded:
n = k, c = the cleaned name, d = the description of r, d̄ = the description of r^-1. Then

=====================  =================  =====================
recipe                 e_r                e_{r+R}
=====================  =================  =====================
``combined-sum``       n + c + d          -n - c + d̄   (live)
``combined``           (n + c + d)/3      (-n - c + d̄)/3
``no llm``             n                  -n
``llm name``           c                  -c
``llm description``    d                  d̄
=====================  =================  =====================

Relations without an entry in the texts get zero rows (both directions).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Mapping

import torch

from ..fileio import atomic_write
from .encoders import EMBED_DIM, PrecomputedEmbeddings, TextEncoder
from .relation_texts import RelationTexts
from .wikidata import is_wikidata_pid, wikidata_labels

logger = logging.getLogger(__name__)

#: recipe -> which of (n, c, d, d̄) it needs
RECIPES: dict[str, tuple[str, ...]] = {
    "combined-sum": ("n", "c", "d", "dbar"),
    "combined": ("n", "c", "d", "dbar"),
    "no llm": ("n",),
    "llm name": ("c",),
    "llm description": ("d", "dbar"),
}
_CACHE_FORMAT = 1


def _text_keys(relation_names: list[str], label_map: Mapping[str, str] | None) -> list[str]:
    """Map raw names to the keys of the text JSON (identity unless a label map applies)."""
    if label_map is None and relation_names and all(is_wikidata_pid(n) for n in relation_names):
        logger.info("relation names are Wikidata P-ids: mapping them through the shipped label table")
        label_map = wikidata_labels()
    if label_map is None:
        return list(relation_names)
    keys = [label_map.get(name, name) for name in relation_names]
    unmapped = [n for n in relation_names if n not in label_map and is_wikidata_pid(n)]
    if unmapped:
        logger.warning("%d Wikidata P-ids have no label in the label map: %s", len(unmapped), ", ".join(unmapped[:10]))
    owner: dict[str, str] = {}
    for name, key in zip(relation_names, keys):
        if key in owner:
            raise ValueError(f"label map sends relations '{owner[key]}' and '{name}' to the same text key '{key}'")
        owner[key] = name
    return keys


def _cache_path(cache_dir: str | os.PathLike, encoder_name: str, recipe: str, per_relation: list[list[str] | None]) -> Path:
    payload = json.dumps(
        {"format": _CACHE_FORMAT, "encoder": encoder_name, "recipe": recipe, "texts": per_relation},
        ensure_ascii=False, separators=(",", ":"),
    )
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return Path(cache_dir) / f"{digest}.pt"


def _load_cached(path: Path, rows: int) -> torch.Tensor | None:
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: recompute and overwrite
        logger.warning("ignoring unreadable relation-embedding cache %s: %s", path, type(exc).__name__)
        return None
    if not isinstance(tensor, torch.Tensor) or list(tensor.shape) != [rows, EMBED_DIM] or tensor.dtype != torch.float32:
        logger.warning("ignoring relation-embedding cache %s: unexpected content", path)
        return None
    return tensor


def relation_embeddings(
    relation_names: list[str],
    texts: RelationTexts,
    encoder: TextEncoder,
    *,
    recipe: str = "combined-sum",
    cache_dir: str | os.PathLike | None = None,
    label_map: Mapping[str, str] | None = None,
) -> torch.Tensor:
    """Text vectors of a graph's relations and their inverses.

    Args:
        relation_names: the R raw relation names in id order (``edge2id`` order).
        texts: the graph's relation texts (:func:`load_relation_texts`).
        encoder: a :class:`TextEncoder`; a :class:`PrecomputedEmbeddings` is returned as is after a
            shape check (``texts``/``recipe`` are then unused).
        recipe: one of :data:`RECIPES` (spec §2.3).
        cache_dir: if given, the result is cached there under sha256(encoder name, recipe, texts),
            written atomically; None: no cache.
        label_map: raw name -> text key (e.g. Wikidata P-id -> English label). When ``None`` and every
            name is a Wikidata P-id, the shipped table (:func:`wikidata_labels`) is used.

    Returns:
        ``[2R, 64]`` float32 CPU tensor: row r is relation r, row r+R its inverse.
    """
    names = list(relation_names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError("relation_names must be a list of strings")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"relation name '{name}' occurs twice in relation_names")
        seen.add(name)
    num = len(names)

    if isinstance(encoder, PrecomputedEmbeddings):
        return encoder.check(2 * num)

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(map(repr, RECIPES))}")
    if getattr(encoder, "dim", None) != EMBED_DIM:
        raise ValueError(f"encoder {getattr(encoder, 'name', encoder)!r} has dim {getattr(encoder, 'dim', None)}, expected {EMBED_DIM}")

    keys = _text_keys(names, label_map)
    per_relation: list[list[str] | None] = []
    for key in keys:
        if key in texts:
            d, dbar = texts.descriptions[key]
            per_relation.append([key, texts.cleaned[key], d, dbar])
        else:
            per_relation.append(None)
    missing = [n for n, t in zip(names, per_relation) if t is None]
    if missing:
        logger.warning(
            "%d of %d relations have no text in %s and get zero vectors (e.g. %s)",
            len(missing), num, texts.source, ", ".join(missing[:5]),
        )

    cache_file = None
    if cache_dir is not None:
        cache_file = _cache_path(cache_dir, encoder.name, recipe, per_relation)
        if cache_file.is_file():
            cached = _load_cached(cache_file, 2 * num)
            if cached is not None:
                logger.debug("relation embeddings from cache %s", cache_file)
                return cached

    parts = RECIPES[recipe]
    slot = {"n": 0, "c": 1, "d": 2, "dbar": 3}
    index: dict[str, int] = {}
    for entry in per_relation:
        if entry is not None:
            for part in parts:
                index.setdefault(entry[slot[part]], len(index))
    strings = list(index)
    vectors = encoder.encode(strings) if strings else torch.zeros(0, EMBED_DIM)
    if tuple(vectors.shape) != (len(strings), EMBED_DIM):
        raise RuntimeError(f"encoder {encoder.name} returned shape {tuple(vectors.shape)} for {len(strings)} texts")
    vectors = vectors.to("cpu", torch.float32)

    out = torch.zeros(2 * num, EMBED_DIM, dtype=torch.float32)
    found = [i for i, entry in enumerate(per_relation) if entry is not None]
    if found:
        rows = torch.tensor(found, dtype=torch.long)

        def part_vectors(part: str) -> torch.Tensor:  # [len(found), 64]
            ids = [index[per_relation[i][slot[part]]] for i in found]  # type: ignore[index]
            return vectors[torch.tensor(ids, dtype=torch.long)]

        if recipe in ("combined-sum", "combined"):
            n, c, d, dbar = (part_vectors(p) for p in ("n", "c", "d", "dbar"))
            forward, inverse = n + c + d, -n - c + dbar
            if recipe == "combined":
                forward, inverse = forward / 3.0, inverse / 3.0
        elif recipe == "no llm":
            n = part_vectors("n")
            forward, inverse = n, -n
        elif recipe == "llm name":
            c = part_vectors("c")
            forward, inverse = c, -c
        else:  # "llm description"
            forward, inverse = part_vectors("d"), part_vectors("dbar")
        out[rows] = forward
        out[rows + num] = inverse

    if cache_file is not None:
        atomic_write(cache_file, lambda tmp: torch.save(out, tmp))
    return out


__all__ = ["RECIPES", "relation_embeddings"]
