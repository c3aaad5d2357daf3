"""Frozen Wikidata property id -> English label table (spec §7.2).

Wikidata-keyed graphs (CoDEx-S/M/L, WDsinger, WKIngram) name relations by P-id, while SEMMA's relation
texts are keyed by the English labels that the live ``wbgetentities`` API returned. The table shipped
in ``wikidata_labels.json`` freezes those labels (CC0 data); see its ``_about`` entry for provenance.
It covers every relation of CoDExSmall, CoDExMedium, CoDExLarge and WKIngram:50/75/100 (each graph's
P-ids map one to one onto the keys of its gpt-4o-2024-11-20 relation-text JSON).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Mapping

_PID = re.compile(r"^P[1-9][0-9]*$")
_RESOURCE = "wikidata_labels.json"


def is_wikidata_pid(name: str) -> bool:
    """True for a Wikidata property id such as ``"P131"``."""
    return bool(_PID.match(name))


@lru_cache(maxsize=1)
def _table() -> Mapping[str, str]:
    source = f"{__package__}/{_RESOURCE}"
    try:
        raw = resources.files(__package__).joinpath(_RESOURCE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"package data {source} is missing; reinstall are-search") from None
    try:
        labels = json.loads(raw)["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"package data {source} is corrupt: {type(exc).__name__}: {exc}") from None
    for pid, label in labels.items():
        if not is_wikidata_pid(pid) or not isinstance(label, str) or not label:
            raise ValueError(f"package data {source}: bad entry {pid!r}: {label!r}")
    return MappingProxyType(dict(labels))


def wikidata_labels() -> dict[str, str]:
    """A fresh copy of the P-id -> English label table, e.g. ``{"P17": "country", ...}``."""
    return dict(_table())
