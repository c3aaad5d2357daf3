"""Relation texts and text encoders for SEMMA/ARE's semantic stream (spec §2.1–2.3, §7.2).

Typical use::

    texts = load_relation_texts("FBNELL-FBNELL_v1", text_root, cache_dir=cache)
    encoder = build_encoder("minilm")            # or "jina", "jina:PATH", "auto" with jina_path=...
    E = relation_embeddings(relation_names, texts, encoder)   # [2R, 64]

Every location is an argument; nothing here reads the environment. An encoder whose optional extra is
missing raises :class:`MissingExtraError` (one line with the pip command).
"""
from __future__ import annotations

from .extras import MissingExtraError
from .relation_texts import (RelationTextDownloadError, RelationTextError, RelationTexts, load_relation_texts,
                             parse_relation_texts)
from .wikidata import is_wikidata_pid, wikidata_labels

from ..lazy import lazy_exports

#: the names loaded on first use, and the module each comes from
_LAZY = {
    "EMBED_DIM": "encoders",
    "JinaEncoder": "encoders",
    "MiniLMEncoder": "encoders",
    "PrecomputedEmbeddings": "encoders",
    "RECIPES": "embeddings",
    "TextEncoder": "encoders",
    "build_encoder": "encoders",
    "stand_in_encoder": "encoders",
    "relation_embeddings": "embeddings",
}

__all__ = [
    "EMBED_DIM",
    "RECIPES",
    "JinaEncoder",
    "MiniLMEncoder",
    "MissingExtraError",
    "PrecomputedEmbeddings",
    "RelationTextDownloadError",
    "RelationTextError",
    "RelationTexts",
    "TextEncoder",
    "build_encoder",
    "is_wikidata_pid",
    "load_relation_texts",
    "parse_relation_texts",
    "relation_embeddings",
    "stand_in_encoder",
    "wikidata_labels",
]

# Encoders and embeddings need torch; the relation texts and the extras' errors do not.
__getattr__ = lazy_exports(__name__, _LAZY, globals())
