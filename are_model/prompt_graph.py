"""Sizes of P1's training-time prompt graphs, vectorised over a batch (spec §4.3 steps 1–3).

For query relation q and entity e, the prompt graph's node set is the endpoints of up to three edges
of type q sampled without replacement, plus e and all 1-hop neighbours of e. Only its size |𝒱| reaches
the model (it sets how many noise codes are averaged), so only the size is computed.
"""
from __future__ import annotations

import torch
from torch import Tensor

NUM_PROMPT_SAMPLES = 3


class PromptGraphSizer:
    """Precomputed per-graph index: edges grouped by type, and the sorted set of (entity, neighbour) keys.

    edge_index: [2, E] fact graph with inverse edges (so out-neighbours cover both directions);
    edge_type: [E]; num_nodes: N; num_relations: R'.
    """

    def __init__(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int) -> None:
        self.num_nodes = num_nodes
        order = torch.argsort(edge_type, stable=True)
        self.edges_by_type = edge_index[:, order]                                   # [2, E]
        counts = torch.bincount(edge_type, minlength=num_relations)
        self.type_count = counts
        self.type_start = torch.cumsum(counts, 0) - counts
        keys = torch.unique(edge_index[0] * num_nodes + edge_index[1])
        self.neighbour_keys = keys                                                  # sorted
        self.neighbour_count = torch.bincount(keys // num_nodes, minlength=num_nodes)

    def _sample_offsets(self, count: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Up to 3 distinct offsets in [0, count) per row, uniformly without replacement: ([B, 3], valid [B, 3])."""
        batch = count.numel()
        u = torch.rand(batch, NUM_PROMPT_SAMPLES, generator=generator, device=count.device)
        n = count.clamp_min(NUM_PROMPT_SAMPLES)  # draws below are only used where count > 3
        first = (u[:, 0] * n).long()
        second = (u[:, 1] * (n - 1)).long()
        second = second + (second >= first)
        low, high = torch.minimum(first, second), torch.maximum(first, second)
        third = (u[:, 2] * (n - 2)).long()
        third = third + (third >= low)
        third = third + (third >= high)
        sampled = torch.stack([first, second, third], dim=1)
        all_edges = torch.arange(NUM_PROMPT_SAMPLES, device=count.device).expand(batch, -1)
        offsets = torch.where((count > NUM_PROMPT_SAMPLES).unsqueeze(1), sampled, all_edges)
        valid = all_edges < count.unsqueeze(1)
        return offsets, valid

    def node_counts(self, relations: Tensor, entities: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """relations: [B] forward query relations; entities: [B] the entity e. Returns |𝒱|: [B] (0 if no edges)."""
        count = self.type_count[relations]
        offsets, valid = self._sample_offsets(count, generator)
        position = (self.type_start[relations].unsqueeze(1) + offsets).clamp_max(self.edges_by_type.shape[1] - 1)
        endpoints = torch.cat([self.edges_by_type[0][position], self.edges_by_type[1][position]], dim=1)  # [B, 6]
        endpoint_valid = torch.cat([valid, valid], dim=1)
        candidates = torch.cat([entities.unsqueeze(1), endpoints], dim=1)                               # [B, 7]
        candidate_valid = torch.cat([torch.ones_like(entities, dtype=torch.bool).unsqueeze(1), endpoint_valid], 1)
        # Distinct valid candidates: sort each row (invalid ones as -1 first) and keep first occurrences.
        candidates = torch.where(candidate_valid, candidates, torch.full_like(candidates, -1))
        candidates, _ = torch.sort(candidates, dim=1)
        first_occurrence = torch.ones_like(candidates, dtype=torch.bool)
        first_occurrence[:, 1:] = candidates[:, 1:] != candidates[:, :-1]
        distinct = first_occurrence & (candidates >= 0)
        # Those that are neighbours of e are already counted in its neighbourhood.
        keys = entities.unsqueeze(1) * self.num_nodes + candidates.clamp_min(0)
        found = torch.searchsorted(self.neighbour_keys, keys).clamp_max(self.neighbour_keys.numel() - 1)
        is_neighbour = self.neighbour_keys[found] == keys
        size = self.neighbour_count[entities] + (distinct & ~is_neighbour).sum(dim=1)
        return torch.where(count > 0, size, torch.zeros_like(size))
