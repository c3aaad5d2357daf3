"""In-memory split format (spec §0.2, §7.1): fact graph with inverse edges, targets and filter triples.

A built dataset is a plain dict of tensors, ints, strs, lists and dicts (what
``torch.load(weights_only=True)`` accepts), so the processed cache can store it as is: the three splits
and the :class:`~are_model.data.parse.LoadReport` of the parse. :func:`to_data` turns one split into a PyG
``Data``. Splits that share a fact graph share its tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch_geometric.data import Data

from .parse import LoadReport

__all__ = ["FactGraph", "SplitSpec", "with_inverse", "pack", "unpack", "unpack_report", "to_data", "SPLITS"]

SPLITS = ("train", "valid", "test")
FORMAT = 2  # 2: the load report is part of the payload


@dataclass
class FactGraph:
    """A fact graph before inverse edges are added.

    Attributes:
        triples: ``[F, 3]`` long, forward ``(head, relation, tail)`` ids.
        num_nodes: number of entities N (ids ``0..N-1``).
        relation_names: ``R`` raw relation strings, id -> name; the inverse offset is ``R``.
        entity_names: ``N`` raw entity strings, id -> name.
    """

    triples: torch.Tensor
    num_nodes: int
    relation_names: list[str]
    entity_names: list[str]


@dataclass
class SplitSpec:
    """One split: its graph, its queries and its filter triples.

    Attributes:
        graph: the fact graph the split's queries are answered on.
        targets: ``[T, 3]`` long ``(h, r, t)``, the split's queries (forward only).
        filter: ``[K, 3]`` long ``(h, r, t)``, forward triples known true for filtered ranking.
    """

    graph: FactGraph
    targets: torch.Tensor
    filter: torch.Tensor


def with_inverse(triples: torch.Tensor, num_relations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fact edges with the inverse block appended.

    Args:
        triples: ``[F, 3]`` forward ``(h, r, t)``.
        num_relations: R, the inverse offset.

    Returns:
        ``edge_index`` ``[2, 2F]`` (forward h->t first, then t->h) and ``edge_type`` ``[2F]``
        (``r`` then ``r + R``).
    """
    forward = torch.stack([triples[:, 0], triples[:, 2]])
    edge_index = torch.cat([forward, forward.flip(0)], dim=1)
    edge_type = torch.cat([triples[:, 1], triples[:, 1] + num_relations])
    return edge_index.contiguous(), edge_type.contiguous()


def _as_edges(triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[K, 3]`` (h, r, t) -> (``[2, K]`` index, ``[K]`` type)."""
    return torch.stack([triples[:, 0], triples[:, 2]]).contiguous(), triples[:, 1].contiguous()


def pack(name: str, splits: dict[str, SplitSpec], report: LoadReport) -> dict[str, Any]:
    """Serialisable form of the three splits (shared graphs and shared filter tensors stored once) and
    of the load's report."""
    graphs: list[dict[str, Any]] = []
    graph_ids: dict[int, int] = {}
    edges: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(tensor) -> (index, type), keeps sharing
    out_splits: dict[str, dict[str, Any]] = {}

    def edges_of(triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = id(triples)
        if key not in edges:
            edges[key] = _as_edges(triples)
        return edges[key]

    for split in SPLITS:
        spec = splits[split]
        g = spec.graph
        if id(g) not in graph_ids:
            num_rel = len(g.relation_names)
            edge_index, edge_type = with_inverse(g.triples, num_rel)
            graph_ids[id(g)] = len(graphs)
            graphs.append({
                "edge_index": edge_index, "edge_type": edge_type, "num_nodes": int(g.num_nodes),
                "num_relations": 2 * num_rel, "relation_names": list(g.relation_names),
                "entity_names": list(g.entity_names),
            })
        target_index, target_type = edges_of(spec.targets)
        filter_index, filter_type = edges_of(spec.filter)
        out_splits[split] = {
            "graph": graph_ids[id(g)], "target_edge_index": target_index, "target_edge_type": target_type,
            "filter_edge_index": filter_index, "filter_edge_type": filter_type,
        }
    return {"format": FORMAT, "name": name, "graphs": graphs, "splits": out_splits, "report": report.to_dict()}


def unpack(payload: dict[str, Any]) -> dict[str, Data]:
    """The three ``Data`` objects of a packed dataset (raises ``KeyError``/``TypeError`` if malformed)."""
    if payload.get("format") != FORMAT:
        raise KeyError(f"unsupported processed-data format {payload.get('format')!r}")
    return {split: to_data(payload["graphs"][payload["splits"][split]["graph"]], payload["splits"][split])
            for split in SPLITS}


def unpack_report(payload: dict[str, Any]) -> LoadReport:
    """The :class:`LoadReport` of a packed dataset (raises ``KeyError``/``TypeError`` if malformed)."""
    if payload.get("format") != FORMAT:
        raise KeyError(f"unsupported processed-data format {payload.get('format')!r}")
    return LoadReport.from_dict(payload["report"])


def to_data(graph: dict[str, Any], split: dict[str, Any]) -> Data:
    """Build one split's ``Data``.

    Fields: ``edge_index`` [2, E], ``edge_type`` [E], ``num_nodes``, ``num_relations`` (= 2R),
    ``target_edge_index`` [2, T], ``target_edge_type`` [T], ``filter_edge_index`` [2, K],
    ``filter_edge_type`` [K], ``relation_names`` (R str), ``entity_names`` (N str).
    """
    for key in ("edge_index", "edge_type"):
        if not isinstance(graph[key], torch.Tensor):
            raise TypeError(f"{key} must be a tensor")
    return Data(
        edge_index=graph["edge_index"], edge_type=graph["edge_type"], num_nodes=int(graph["num_nodes"]),
        num_relations=int(graph["num_relations"]),
        target_edge_index=split["target_edge_index"], target_edge_type=split["target_edge_type"],
        filter_edge_index=split["filter_edge_index"], filter_edge_type=split["filter_edge_type"],
        relation_names=graph["relation_names"], entity_names=graph["entity_names"],
    )
