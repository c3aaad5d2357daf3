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

from .layers import Workspace
from .model import AREModel, GraphContext, RelationSide

HITS_AT = (1, 3, 10)

#: Most memory `rank_queries` spends on the entity NBFNet's relation vectors of every query relation.
PROJECTION_CACHE_BYTES = 1 << 30


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


@dataclass(frozen=True)
class QueryPairs:
    """The distinct (anchor, r') of a query set, sorted by (r', anchor).

    Queries that share a pair differ only in their answer, so one entity pass serves them all.
    anchors, relations: [P]; query_pair: [Q] the pair of each query; by_pair: [Q] query indices
    grouped by pair; starts: [P + 1] where each pair's group begins in by_pair.
    """

    anchors: Tensor
    relations: Tensor
    query_pair: Tensor
    by_pair: Tensor
    starts: Tensor

    def __len__(self) -> int:
        return self.anchors.numel()

    def queries_of(self, pairs: Tensor) -> tuple[Tensor, Tensor]:
        """(query indices [M], position in ``pairs`` of each one's pair [M]) for pair indices ``pairs``."""
        counts = self.starts[pairs + 1] - self.starts[pairs]
        position = torch.repeat_interleave(torch.arange(pairs.numel(), device=pairs.device), counts)
        group_start = torch.repeat_interleave(self.starts[pairs] - (torch.cumsum(counts, 0) - counts), counts)
        return self.by_pair[torch.arange(position.numel(), device=pairs.device) + group_start], position


def query_pairs(queries: QuerySet, num_nodes: int) -> QueryPairs:
    """The distinct (anchor, r') pairs of ``queries`` on a graph of ``num_nodes`` entities."""
    keys, query_pair = torch.unique(queries.query_relations * num_nodes + queries.anchors, return_inverse=True)
    by_pair = torch.argsort(query_pair, stable=True)
    starts = torch.searchsorted(query_pair[by_pair], torch.arange(keys.numel() + 1, device=keys.device))
    return QueryPairs(keys % num_nodes, keys // num_nodes, query_pair, by_pair, starts)


@torch.inference_mode()
def rank_queries(model: AREModel, graph: GraphContext, queries: QuerySet, filters: FilterIndex, *,
                 side: RelationSide | None = None, weights: Tensor | None = None, batch_size: int = 32,
                 progress: bool = False, description: str = "ranking", pairs: QueryPairs | None = None,
                 select: Tensor | None = None) -> Tensor:
    """Filtered ranks [Q] of `queries` (in their order), or [K, Q] for K fusion settings at once.

    side: a cached `relation_side` covering every forward relation of the queries (computed here if
    None); weights: fusion weights [E] (E = len(model.enhancer_names): w_sim, w_prompt), or [K, E] for
    K settings ranked in shared entity passes (ranks [K, Q], row k for weights[k]); None: the model's
    own fusion. Each distinct (anchor, r') is scored
    once per setting (pairs: `query_pairs(queries, N)` if already built); batch_size counts rows of an
    entity pass, a row being one (pair, setting). select: rank only the queries of these pair indices;
    the others get rank 0.

    A query's ranks do not depend on which queries, or which settings, share its batch: every entity
    pass has exactly batch_size rows (the last one is padded) and the relation vectors are projected
    once per call and per setting, so every product has the same shape. A split ranked whole, in
    stages, in any subsets, or for K settings at once thus gives identical ranks. With K settings a pass
    holds batch_size // K pairs of each setting (so K·(batch_size // K) rows, padded up to batch_size
    when K does not divide it); more than batch_size settings are ranked batch_size at a time.
    (When one setting's relation vectors would exceed PROJECTION_CACHE_BYTES, e.g. AristoV4 with its
    3210 relation types, they are projected per batch instead and ranks may differ in float rounding;
    K settings whose vectors together exceed it are ranked in groups that fit, or one at a time.)
    Raises ValueError if weights is neither [E] nor [K, E] with K >= 1.
    """
    device = graph.device
    queries = queries.to(device)
    if side is None:
        side = model.relation_side(graph, torch.unique(queries.forward_relations))
    if pairs is None:
        pairs = query_pairs(queries, graph.num_nodes)
    selected = torch.arange(len(pairs), device=device) if select is None else torch.sort(select.to(device)).values
    terms = len(model.enhancer_names)
    if weights is None or weights.dim() == 1:
        if weights is not None and weights.shape != (terms,):
            raise ValueError(f"weights must have shape [{terms}] or [K, {terms}], got {list(weights.shape)}")
        settings = [weights]
    elif weights.dim() == 2 and weights.shape[1] == terms and weights.shape[0] >= 1:
        settings = list(weights.unbind(0))
    else:
        raise ValueError(f"weights must have shape [{terms}] or [K, {terms}], got {list(weights.shape)}")
    # One setting's relation vectors of every layer; settings are grouped so that a group's vectors fit.
    one = side.z.numel() * side.z.element_size() * len(model.entity_model.layers)
    fits = one <= PROJECTION_CACHE_BYTES
    group = min(len(settings), batch_size, max(1, PROJECTION_CACHE_BYTES // max(one, 1)))
    ranks = [_rank_settings(model, graph, queries, filters, side, settings[start:start + group], batch_size, pairs,
                            selected, fits, progress, description) for start in range(0, len(settings), group)]
    ranks = torch.cat(ranks)
    return ranks if weights is not None and weights.dim() == 2 else ranks[0]


def _rank_settings(model: AREModel, graph: GraphContext, queries: QuerySet, filters: FilterIndex, side: RelationSide,
                   settings: list[Tensor | None], batch_size: int, pairs: QueryPairs, selected: Tensor, project: bool,
                   progress: bool, description: str) -> Tensor:
    """Ranks [K, Q] of K <= batch_size settings (each [E] or None) over the `selected` pairs (see rank_queries).

    Row k*U + u of the stacked fused tensor [K*U, R', d] is relation u fused with setting k; each
    setting is fused and projected on its own, so every product keeps its one-by-one shape.
    """
    device = graph.device
    count, units = len(settings), side.relations.numel()
    fused_each = [model.fuse(side, weights) for weights in settings]
    projected_each = [model.project_relations(fused) for fused in fused_each] if project else None
    fused = fused_each[0] if count == 1 else torch.cat(fused_each)
    projected = None
    if projected_each is not None:  # per layer: [R', K*U, d]
        projected = [p[0] for p in zip(*projected_each)] if count == 1 else [torch.cat(p, 1) for p in zip(*projected_each)]
    pair_rows = relation_rows(side.relations, pairs.relations % (graph.num_relations // 2))
    setting = torch.arange(count, device=device).unsqueeze(1)                                    # [K, 1]
    per_pass = batch_size // count
    ranks = torch.zeros(count, len(queries), dtype=torch.long, device=device)
    workspace = Workspace() if device.type == "cpu" else None  # every pass has the same shape: reuse its memory
    # In pair order (sorted by relation): each batch uses few relation representations.
    starts = range(0, selected.numel(), per_pass)
    if progress:
        starts = tqdm(starts, desc=description, unit="batch", leave=False)
    for start in starts:
        batch = selected[start:start + per_pass]                                                  # [n]
        rows = (setting * units + pair_rows[batch]).reshape(-1)                                   # [K*n], setting-major
        padding = batch_size - rows.numel()
        padded = torch.cat([batch.repeat(count), batch[-1:].expand(padding)])
        rows = torch.cat([rows, rows[-1:].expand(padding)])
        scores = model.entity_scores(graph, fused, rows, pairs.anchors[padded], pairs.relations[padded],
                                     projected=projected, workspace=workspace)
        index, position = pairs.queries_of(batch)                                                 # [M]
        true_rows, true_entities = filters.true_answers(queries.anchors[index], queries.query_relations[index])
        matched = index.numel()
        # Every setting's scores of the M queries, stacked setting-major: [K*M, N].
        chosen = scores[(setting * batch.numel() + position).reshape(-1)]
        ranked = filtered_ranks(chosen, queries.answers[index].repeat(count),
                                (setting * matched + true_rows).reshape(-1), true_entities.repeat(count))
        ranks[:, index] = ranked.view(count, matched)
    return ranks
