"""Vocabulary and split rules of each loader family (spec §7.2), from raw bytes to :class:`SplitSpec`.

Every builder takes the dataset's spec and ``{role: (path, bytes)}`` of its raw files and returns the
train/valid/test :class:`SplitSpec` objects. Ids follow the upstream loaders exactly, because the
reference MRRs depend on the graphs (ids themselves do not change scores, but vocabulary sizes,
inverse offsets and which triples are kept do).
"""
from __future__ import annotations

import logging
from typing import Callable

import torch

from .errors import RawFormatError, VocabularyError
from .graph import FactGraph, SplitSpec
from .parse import TripleFile, Vocab, encode, parse_id_dict, parse_triples
from .registry import (FB15K237, FILTER_INFERENCE_ALL, FILTER_SPLIT_GRAPH, GRAIL, INDUCTIVE, TRANSDUCTIVE,
                       WN18RR, DatasetSpec)

__all__ = ["build_splits", "RawBlobs"]

logger = logging.getLogger(__name__)

RawBlobs = dict[str, tuple[str, bytes]]  # role -> (path, bytes)


def _parse(spec: DatasetSpec, blobs: RawBlobs, role: str) -> TripleFile:
    path, data = blobs[role]
    return parse_triples(data, path, delimiter=spec.delimiter, column_order=spec.column_order)


def _cat(*parts: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[*, 3]`` triple tensors (a single part is returned as is, keeping it shared)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


def _transductive(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """Generic rule: first appearance over (facts,) train, valid, test; N and R counted after test."""
    entities, relations = Vocab(), Vocab()
    train_roles = ("facts", "train") if spec.has_role("facts") else ("train",)
    train = _cat(*(encode(_parse(spec, blobs, r), entities, relations) for r in train_roles))
    valid = encode(_parse(spec, blobs, "valid"), entities, relations)
    test = encode(_parse(spec, blobs, "test"), entities, relations)
    graph = FactGraph(train, len(entities), relations.names, entities.names)
    known = torch.cat([train, valid, test])
    return {"train": SplitSpec(graph, train, train), "valid": SplitSpec(graph, valid, known),
            "test": SplitSpec(graph, test, known)}


def _fb15k237(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """Ids fixed by ``entities.dict`` / ``relations.dict``; every triple symbol must be in them."""
    entities = Vocab.from_names(parse_id_dict(blobs["entities"][1], blobs["entities"][0]))
    relations = Vocab.from_names(parse_id_dict(blobs["relations"][1], blobs["relations"][0]))
    parts = {s: encode(_parse(spec, blobs, s), entities, relations, new_entities="error", new_relations="error")
             for s in ("train", "valid", "test")}
    graph = FactGraph(parts["train"], len(entities), relations.names, entities.names)
    known = torch.cat([parts["train"], parts["valid"], parts["test"]])
    return {"train": SplitSpec(graph, parts["train"], parts["train"]),
            "valid": SplitSpec(graph, parts["valid"], known), "test": SplitSpec(graph, parts["test"], known)}


def _wn18rr(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """Alphabetical relations; entities per file, all heads then all tails; edges sorted by (src, dst)."""
    files = [_parse(spec, blobs, s) for s in ("train", "valid", "test")]
    relations = Vocab.from_names(sorted({r for f in files for r in f.relations}))
    entities = Vocab()
    for f in files:
        for name in f.heads:
            entities.add(name)
        for name in f.tails:
            entities.add(name)
    encoded = [encode(f, entities, relations, new_entities="error", new_relations="error") for f in files]
    everything = torch.cat(encoded)
    which = torch.cat([torch.full((len(e),), i, dtype=torch.long) for i, e in enumerate(encoded)])
    num_nodes = len(entities)
    order = torch.sort(everything[:, 0] * num_nodes + everything[:, 2], stable=True).indices
    everything, which = everything[order], which[order]
    train, valid, test = (everything[which == i] for i in range(3))
    graph = FactGraph(train, num_nodes, relations.names, entities.names)
    return {"train": SplitSpec(graph, train, train), "valid": SplitSpec(graph, valid, everything),
            "test": SplitSpec(graph, test, everything)}


def _grail(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """Shared relation vocabulary from train.txt, valid.txt; ``_ind`` files may not add relations.

    Test graph = train_ind; test queries = valid_ind then test_ind (merged, as ULTRA does).
    """
    train_entities, relations = Vocab(), Vocab()
    train = encode(_parse(spec, blobs, "train"), train_entities, relations)
    valid = encode(_parse(spec, blobs, "valid"), train_entities, relations)
    test_entities = Vocab()
    ind = {role: encode(_parse(spec, blobs, role), test_entities, relations, new_relations="error")
           for role in ("inf_graph", "inf_valid", "inf_test")}
    test = torch.cat([ind["inf_valid"], ind["inf_test"]])
    train_graph = FactGraph(train, len(train_entities), relations.names, train_entities.names)
    test_graph = FactGraph(ind["inf_graph"], len(test_entities), relations.names, test_entities.names)
    return {"train": SplitSpec(train_graph, train, train),
            "valid": SplitSpec(train_graph, valid, torch.cat([train, valid])),
            "test": SplitSpec(test_graph, test, torch.cat([ind["inf_graph"], test]))}


def _relation_display_names(spec: DatasetSpec, blobs: RawBlobs, raw: list[str]) -> list[str]:
    """HM 1k/3k/5k store integer relation ids; map them through the OOKB vocabulary when present."""
    if "relation_names" not in blobs:
        return list(raw)
    path, data = blobs["relation_names"]
    names = parse_id_dict(data, path)
    out = []
    for token in raw:
        if not token.isdigit() or int(token) >= len(names):
            raise VocabularyError(f"{path}: relation id {token!r} of {spec.name} has no name in this vocabulary")
        out.append(names[int(token)])
    return out


def _inductive(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """ILPC / InGram / HM / MTDEA / WikiTopics.

    Train graph and inference graph have separate vocabularies. Valid triples extend the inference
    vocabulary when they live on it (``valid_on_inference``); otherwise they are on the train graph:
    MTDEA/WikiTopics drop those with an unseen symbol, HM gives unseen valid entities new (isolated)
    nodes of the valid split's graph and rejects unseen relations. Test triples extend the inference
    vocabulary; the inverse offset of the inference graph is the size of that extended vocabulary.
    """
    train_entities, train_relations = Vocab(), Vocab()
    train = encode(_parse(spec, blobs, "train"), train_entities, train_relations)
    inf_entities, inf_relations = Vocab(), Vocab()
    inference = encode(_parse(spec, blobs, "inf_graph"), inf_entities, inf_relations)
    valid_file = _parse(spec, blobs, "valid")
    valid_entities = train_entities
    if spec.valid_on_inference:
        valid = encode(valid_file, inf_entities, inf_relations)
    elif spec.limit_valid_vocab:
        valid = encode(valid_file, train_entities, train_relations, new_entities="drop", new_relations="drop")
        logger.info("%s: kept %d of %d valid triples whose symbols are all in the training graph",
                    spec.name, len(valid), len(valid_file))
    else:
        valid_entities = train_entities.copy()
        valid = encode(valid_file, valid_entities, train_relations, new_relations="error")
    test = encode(_parse(spec, blobs, "test"), inf_entities, inf_relations)

    train_rel_names = _relation_display_names(spec, blobs, train_relations.names)
    inf_rel_names = _relation_display_names(spec, blobs, inf_relations.names)
    train_graph = FactGraph(train, len(train_entities), train_rel_names, train_entities.names)
    inf_graph = FactGraph(inference, len(inf_entities), inf_rel_names, inf_entities.names)
    if spec.valid_on_inference:
        valid_graph = inf_graph
    elif len(valid_entities) != len(train_entities):
        valid_graph = FactGraph(train, len(valid_entities), train_rel_names, valid_entities.names)
    else:
        valid_graph = train_graph

    if spec.filter_mode == FILTER_INFERENCE_ALL:
        known = torch.cat([inference, valid, test])
        valid_filter, test_filter = known, known
    elif spec.filter_mode == FILTER_SPLIT_GRAPH:
        valid_filter = torch.cat([valid_graph.triples, valid])
        test_filter = torch.cat([inference, test])
    else:
        raise ValueError(f"{spec.name}: filter mode {spec.filter_mode!r} does not apply to an inductive dataset")
    return {"train": SplitSpec(train_graph, train, train), "valid": SplitSpec(valid_graph, valid, valid_filter),
            "test": SplitSpec(inf_graph, test, test_filter)}


_BUILDERS: dict[str, Callable[[DatasetSpec, RawBlobs], dict[str, SplitSpec]]] = {
    TRANSDUCTIVE: _transductive, FB15K237: _fb15k237, WN18RR: _wn18rr, GRAIL: _grail, INDUCTIVE: _inductive,
}


def build_splits(spec: DatasetSpec, blobs: RawBlobs) -> dict[str, SplitSpec]:
    """Parse the raw files of ``spec`` into its three splits (see the family functions for the rules)."""
    splits = _BUILDERS[spec.family](spec, blobs)
    for split, s in splits.items():
        if len(s.graph.triples) == 0:
            raise RawFormatError(f"{spec.name}: the {split} split's fact graph has no triples")
    return splits
