"""ULTRA's two NBFNets: relations conditioned on a query relation, entities conditioned on relations."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .graphs import RelationGraph
from . import kernels
from .layers import Boundary, MessagePlan, RelationalConv, Workspace, use_cpu_kernels


class RelationNBFNet(nn.Module):
    """Structural relation representations Z_str (spec §1.3), key prefix ``relation_model.``.

    Six layers on the relation graph G_r (K = 4 edge types); the boundary is a vector of ones at the
    query relation's node and 0 elsewhere.
    """

    def __init__(self, dim: int = 64, num_layers: int = 6, num_edge_types: int = 4) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(RelationalConv(dim, num_edge_types) for _ in range(num_layers))

    def forward(self, graph: RelationGraph, query_relations: Tensor) -> Tensor:
        """query_relations: [B] forward relation ids. Returns Z_str: [B, R', d]."""
        ones = torch.ones(query_relations.numel(), self.dim, device=query_relations.device)
        boundary = Boundary(query_relations, ones)
        x = boundary.dense(graph.num_nodes)
        for layer in self.layers:
            x = layer(x, boundary, graph.plan, layer.edge_type_vectors())
        return x.transpose(0, 1)


class EntityNBFNet(nn.Module):
    """Entity scores from relation representations (spec §1.4), key prefix ``entity_model.``.

    Six projected layers on the fact graph, then an MLP on [X⁽⁶⁾[v] ; q] for every node v.
    """

    def __init__(self, dim: int = 64, num_layers: int = 6) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(RelationalConv(dim, projected=True) for _ in range(num_layers))
        self.mlp = nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, 1))

    def project(self, relation_reprs: Tensor) -> list[Tensor]:
        """Each layer's relation vectors P for all U representations [U, R', d]: a list of [R', U, d].

        Computing them once per evaluation, instead of per batch, saves the repeated projections and
        keeps a query's scores independent of which other relations share its batch.
        """
        per_type = relation_reprs.transpose(0, 1)
        return [layer.edge_type_vectors(per_type) for layer in self.layers]

    def forward(self, plan: MessagePlan, relation_reprs: Tensor, repr_index: Tensor, anchors: Tensor,
                query_relations: Tensor, projected: list[Tensor] | None = None,
                workspace: Workspace | None = None) -> Tensor:
        """Scores of every node as the answer of each query, in tail-prediction form.

        plan: the fact graph's `MessagePlan`; relation_reprs: [U, R', d] relation representations;
        repr_index: [B] which of the U each query uses; anchors: [B] the known entity h' of
        (h', r', ?); query_relations: [B] r' (r for tail queries, r + R for head queries);
        projected: `project(relation_reprs)` if already computed; workspace: buffers reused from call to call
        at CPU inference (see `Workspace`). Returns logits [B, N].
        """
        # Queries sharing a representation form consecutive column blocks, so each layer projects the
        # U representations once and multiplies messages block-wise (no per-query copy of P).
        order = torch.argsort(repr_index, stable=True)
        repr_index, anchors, query_relations = repr_index[order], anchors[order], query_relations[order]
        used, group_sizes = torch.unique_consecutive(repr_index, return_counts=True)
        group_sizes = group_sizes.tolist()
        per_type = relation_reprs[used].transpose(0, 1)                          # [R', G, d]
        query = relation_reprs[repr_index, query_relations]                     # [B, d]
        boundary = Boundary(anchors, query)
        shape = (plan.num_nodes, anchors.numel(), self.dim)
        x = boundary.dense(plan.num_nodes, None if workspace is None or query.requires_grad else
                           workspace.buffer("boundary", shape))
        for k, layer in enumerate(self.layers):
            vectors = layer.edge_type_vectors(per_type) if projected is None else projected[k][:, used]
            x = layer(x, boundary, plan, vectors, group_sizes, workspace)
        scores = self.score(x, query, workspace)
        return scores[torch.argsort(order)]

    def score(self, x: Tensor, query: Tensor, workspace: Workspace | None = None) -> Tensor:
        """MLP on [x ; query] for every node; x: [N, B, d], query: [B, d] -> [B, N].

        The first linear layer is split so that the query half is computed once per query, not per node. At
        CPU inference the node half is one product (into ``workspace`` when given) and ReLU, the query half
        and the last layer run in one compiled pass (`kernels.relu_dot_cpu`).
        """
        first, last = self.mlp[0], self.mlp[2]
        node_weight, query_weight = first.weight[:, : self.dim], first.weight[:, self.dim:]
        if use_cpu_kernels(x, query, first.weight, last.weight) and x.is_contiguous():
            rows = x.shape[0] * x.shape[1]
            out = None if workspace is None else workspace.buffer("score_hidden", (rows, node_weight.shape[0]))
            hidden = torch.mm(x.view(rows, self.dim), node_weight.T, out=out)
            return kernels.relu_dot_cpu(hidden, query @ query_weight.T + first.bias, last.weight[0], float(last.bias))
        hidden = torch.relu(x @ node_weight.T + (query @ query_weight.T + first.bias))  # [N, B, 2d]
        return (hidden @ last.weight.T).squeeze(-1).T + last.bias
