"""SEMMA's semantic stream over the textual relation graph, and its combiner (spec §2.5–2.6)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .graphs import RelationGraph
from .layers import RelationalConv


class SemanticRelationNBFNet(nn.Module):
    """Z_sem from relation text vectors, key prefix ``semantic_model.``.

    Six layers with one edge type on G_r^TEXT (edge weights = cosines), boundary = the text vectors of
    every relation. It has no query input, so Z_sem is one [R', d] matrix per graph: compute it once.
    """

    def __init__(self, dim: int = 64, num_layers: int = 6) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(RelationalConv(dim, num_edge_types=1) for _ in range(num_layers))

    def forward(self, graph: RelationGraph, text_embeddings: Tensor) -> Tensor:
        """text_embeddings: [R', d]. Returns Z_sem: [R', d]."""
        boundary = text_embeddings.unsqueeze(1)                                # [R', 1, d]
        x = boundary
        for layer in self.layers:
            x = layer(x, boundary, graph.plan, layer.edge_type_vectors())
        return x.squeeze(1)


class Combiner(nn.Module):
    """Z = W_c [Z_str ; Z_sem] + c_c, row-wise (SEMMA's ``mlp`` combiner), key prefix ``combiner.``."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * dim, dim)

    def forward(self, structural: Tensor, semantic: Tensor) -> Tensor:
        """structural: [B, R', d]; semantic: [R', d] (shared by all queries). Returns [B, R', d]."""
        weight_str, weight_sem = self.fc.weight[:, : structural.shape[-1]], self.fc.weight[:, structural.shape[-1]:]
        return structural @ weight_str.T + (semantic @ weight_sem.T + self.fc.bias)
