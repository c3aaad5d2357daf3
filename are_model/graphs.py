"""Relation-level graphs built from a fact graph: ULTRA's relation graph and SEMMA's textual graph."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .layers import MessagePlan

# Edge types of the relation graph (spec §1.1).
HEAD_HEAD, TAIL_TAIL, HEAD_TAIL, TAIL_HEAD = 0, 1, 2, 3


@dataclass
class RelationGraph:
    """A graph whose nodes are relations.

    edge_index: [2, E_r] (row 0 receives messages from row 1, see `layers`); edge_type: [E_r];
    edge_weight: [E_r] or None (all ones); num_nodes = R'; num_edge_types = K.
    """

    edge_index: Tensor
    edge_type: Tensor
    num_nodes: int
    num_edge_types: int
    edge_weight: Tensor | None = None
    _plan: MessagePlan | None = field(default=None, repr=False)

    @property
    def plan(self) -> MessagePlan:
        """The message-passing plan of this graph, built on first use."""
        if self._plan is None:
            self._plan = MessagePlan.build(self.edge_index, self.edge_type, self.num_nodes, self.edge_weight)
        return self._plan

    def to(self, device: torch.device | str) -> "RelationGraph":
        weight = None if self.edge_weight is None else self.edge_weight.to(device)
        return RelationGraph(self.edge_index.to(device), self.edge_type.to(device), self.num_nodes,
                             self.num_edge_types, weight, None if self._plan is None else self._plan.to(device))


def _incidence_pairs(entity: Tensor, relation: Tensor, num_relations: int) -> Tensor:
    """Unique (entity, relation) pairs as a sorted 1-D key tensor entity * R' + relation."""
    return torch.unique(entity * num_relations + relation)


def _co_occurrence(left: Tensor, right: Tensor, num_relations: int) -> Tensor:
    """Support of Lᵀ R for binary incidence matrices given as sorted keys entity * R' + relation.

    Returns [2, P] coalesced (row-major sorted) relation pairs (i, j) such that some entity n has
    (n, i) in `left` and (n, j) in `right`.
    """
    left_entity, left_relation = left // num_relations, left % num_relations
    right_entity, right_relation = right // num_relations, right % num_relations
    # For every left pair, the block of right pairs that share its entity (both key lists are sorted).
    start = torch.searchsorted(right_entity, left_entity, side="left")
    end = torch.searchsorted(right_entity, left_entity, side="right")
    counts = end - start
    row = torch.repeat_interleave(left_relation, counts)
    offsets = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
    col = right_relation[torch.arange(int(counts.sum()), device=left.device) + offsets]
    pairs = torch.unique(row * num_relations + col)
    return torch.stack([pairs // num_relations, pairs % num_relations])


def build_relation_graph(edge_index: Tensor, edge_type: Tensor, num_relations: int) -> RelationGraph:
    """ULTRA's relation graph G_r with four edge types hh, tt, ht, th (spec §1.1).

    edge_index: [2, E] fact graph incl. inverse edges; edge_type: [E]; num_relations: R'.
    Every edge weight is 1; only the sparsity pattern of Hᵀ H, Tᵀ T, Hᵀ T, Tᵀ H is kept.
    """
    heads = _incidence_pairs(edge_index[0], edge_type, num_relations)
    tails = _incidence_pairs(edge_index[1], edge_type, num_relations)
    blocks = [
        _co_occurrence(heads, heads, num_relations),
        _co_occurrence(tails, tails, num_relations),
        _co_occurrence(heads, tails, num_relations),
        _co_occurrence(tails, heads, num_relations),
    ]
    types = torch.cat([torch.full((b.shape[1],), k, dtype=torch.long, device=edge_index.device)
                       for k, b in enumerate(blocks)])
    return RelationGraph(torch.cat(blocks, dim=1), types, num_relations, 4)


def cosine_similarity_matrix(embeddings: Tensor) -> Tensor:
    """[R', R'] cosine similarities; a zero vector has similarity 0 with everything."""
    norms = embeddings.norm(dim=-1, keepdim=True)
    unit = embeddings / norms.clamp_min(1e-12)
    return unit @ unit.T


def build_text_graph(embeddings: Tensor, threshold: float = 0.8, use_cosine_weights: bool = True) -> RelationGraph:
    """SEMMA's textual relation graph G_r^TEXT (spec §2.4, live setting k = 0, topx = 0).

    embeddings: [R', d] relation text vectors. Edges: all ordered pairs i != j with cos > threshold
    (symmetric), one edge type, weight = cosine (or 1).
    """
    similarity = cosine_similarity_matrix(embeddings)
    similarity.fill_diagonal_(-2.0)
    src, dst = torch.nonzero(similarity > threshold, as_tuple=True)
    weight = similarity[src, dst] if use_cosine_weights else torch.ones_like(src, dtype=embeddings.dtype)
    return RelationGraph(torch.stack([src, dst]), torch.zeros_like(src), embeddings.shape[0], 1, weight)
