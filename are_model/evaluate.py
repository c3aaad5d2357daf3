"""Filtered link-prediction ranking: MR, MRR, Hits@k over head and tail queries (spec §6.6).

Query order (documented, stable): for T target triples of a split, queries 0..T-1 are the tail queries
(h, r, ?) in target order and queries T..2T-1 the head queries (?, r, t), answered in tail form as
(t, r + R, ?). `evaluate` returns one rank per query in this order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .model import AREModel, GraphContext, RelationSide

HITS_AT = (1, 3, 10)


@dataclass
class QuerySet:
    """Ranking queries in tail form. All tensors [Q].

    anchors: the known entity; query_relations: r' (r or r + R); forward_relations: r (what the relation
    side and the enhancers condition on); answers: the true entity; is_head: whether it was a head query.
    """

    anchors: Tensor
    query_relations: Tensor
    forward_relations: Tensor
    answers: Tensor
    is_head: Tensor

    def __len__(self) -> int:
        return self.anchors.numel()

    def subset(self, index: Tensor) -> "QuerySet":
        return QuerySet(self.anchors[index], self.query_relations[index], self.forward_relations[index],
                        self.answers[index], self.is_head[index])

    def to(self, device: torch.device | str) -> "QuerySet":
        return QuerySet(*(t.to(device) for t in (self.anchors, self.query_relations, self.forward_relations,
                                                 self.answers, self.is_head)))


def build_queries(target_edge_index: Tensor, target_edge_type: Tensor, num_relations: int) -> QuerySet:
    """Tail queries then head queries for targets [2, T] / [T] of a graph with R' = num_relations."""
    heads, tails = target_edge_index
    half = num_relations // 2
    return QuerySet(
        anchors=torch.cat([heads, tails]),
        query_relations=torch.cat([target_edge_type, target_edge_type + half]),
        forward_relations=torch.cat([target_edge_type, target_edge_type]),
        answers=torch.cat([tails, heads]),
        is_head=torch.cat([torch.zeros_like(heads, dtype=torch.bool), torch.ones_like(heads, dtype=torch.bool)]),
    )


class FilterIndex:
    """Known true answers of (anchor, r', ?) from forward triples, inverse queries included.

    filter_edge_index: [2, F] (h, t); filter_edge_type: [F] forward r; num_relations: R'.
    """

    def __init__(self, filter_edge_index: Tensor, filter_edge_type: Tensor, num_relations: int) -> None:
        heads, tails = filter_edge_index
        half = num_relations // 2
        anchors = torch.cat([heads, tails])
        relations = torch.cat([filter_edge_type, filter_edge_type + half])
        answers = torch.cat([tails, heads])
        keys = anchors * num_relations + relations
        order = torch.argsort(keys)
        self.keys = keys[order]
        self.answers = answers[order]
        self.num_relations = num_relations

    def to(self, device: torch.device | str) -> "FilterIndex":
        clone = object.__new__(FilterIndex)
        clone.keys, clone.answers, clone.num_relations = self.keys.to(device), self.answers.to(device), self.num_relations
        return clone

    def true_answers(self, anchors: Tensor, query_relations: Tensor) -> tuple[Tensor, Tensor]:
        """(row, entity) pairs of every known true answer for each query: two [P] tensors."""
        keys = anchors * self.num_relations + query_relations
        start = torch.searchsorted(self.keys, keys, side="left")
        end = torch.searchsorted(self.keys, keys, side="right")
        counts = end - start
        rows = torch.repeat_interleave(torch.arange(keys.numel(), device=keys.device), counts)
        offsets = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
        flat = torch.arange(int(counts.sum()), device=keys.device) + offsets
        return rows, self.answers[flat]


def filtered_ranks(scores: Tensor, answers: Tensor, true_rows: Tensor, true_entities: Tensor) -> Tensor:
    """Pessimistic filtered rank: 1 + #{other candidates not known true with score >= the answer's}.

    scores: [B, N]; answers: [B]; true_rows/true_entities: [P] known true (row, entity) pairs. Returns [B].
    """
    rows = torch.arange(scores.shape[0], device=scores.device)
    answer_scores = scores[rows, answers]
    competing = scores >= answer_scores.unsqueeze(1)
    competing[true_rows, true_entities] = False
    competing[rows, answers] = False
    return 1 + competing.sum(dim=1)


def ranking_metrics(ranks: Tensor) -> dict[str, float]:
    """mr, mrr, hits@1/3/10 and num_queries of a rank vector [Q]."""
    ranks = ranks.double()
    metrics = {"mr": float(ranks.mean()), "mrr": float((1.0 / ranks).mean())}
    for k in HITS_AT:
        metrics[f"hits@{k}"] = float((ranks <= k).double().mean())
    metrics["num_queries"] = int(ranks.numel())
    return metrics


def relation_rows(side_relations: Tensor, relations: Tensor) -> Tensor:
    """Row of `side_relations` [U] (unique) holding each of `relations` [Q]; error if one is absent."""
    order = torch.argsort(side_relations)
    position = torch.searchsorted(side_relations[order], relations).clamp_max(side_relations.numel() - 1)
    rows = order[position]
    if not torch.equal(side_relations[rows], relations):
        raise ValueError("the cached relation side does not cover every query relation")
    return rows


@torch.inference_mode()
def rank_queries(model: AREModel, graph: GraphContext, queries: QuerySet, filters: FilterIndex, *,
                 side: RelationSide | None = None, weights: Tensor | None = None, batch_size: int = 32,
                 progress: bool = False, description: str = "ranking") -> Tensor:
    """Filtered ranks [Q] of `queries` (in their order).

    side: a cached `relation_side` covering every forward relation of the queries (computed here if
    None); weights: fusion weights [2] (None: the model's own fusion). batch_size counts distinct
    (anchor, r') pairs: each is scored once, however many answers it has.
    """
    device = graph.device
    queries = queries.to(device)
    if side is None:
        side = model.relation_side(graph, torch.unique(queries.forward_relations))
    fused = model.fuse(side, weights)
    # Queries that share (anchor, r') differ only in their answer: one entity pass serves them all.
    # Sorting the distinct pairs by r' keeps few relation representations per batch.
    pair_keys, query_pair = torch.unique(queries.query_relations * graph.num_nodes + queries.anchors,
                                         return_inverse=True)
    pair_relations, pair_anchors = pair_keys // graph.num_nodes, pair_keys % graph.num_nodes
    pair_rows = relation_rows(side.relations, pair_relations % (graph.num_relations // 2))
    queries_by_pair = torch.argsort(query_pair, stable=True)
    pair_starts = torch.searchsorted(query_pair[queries_by_pair],
                                     torch.arange(pair_keys.numel() + 1, device=device)).tolist()
    ranks = torch.empty(len(queries), dtype=torch.long, device=device)
    starts = range(0, pair_keys.numel(), batch_size)
    if progress:
        starts = tqdm(starts, desc=description, unit="batch", leave=False)
    for start in starts:
        end = min(start + batch_size, pair_keys.numel())
        distinct, repr_index = torch.unique(pair_rows[start:end], return_inverse=True)
        scores = model.entity_scores(graph, fused[distinct], repr_index, pair_anchors[start:end],
                                     pair_relations[start:end])
        index = queries_by_pair[pair_starts[start]:pair_starts[end]]
        batch = queries.subset(index)
        true_rows, true_entities = filters.true_answers(batch.anchors, batch.query_relations)
        ranks[index] = filtered_ranks(scores[query_pair[index] - start], batch.answers, true_rows, true_entities)
    return ranks
