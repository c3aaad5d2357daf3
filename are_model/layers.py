"""The generalised relational convolution: one NBFNet layer (distmult message, sum aggregation).

Aggregation direction (spec §1.2, checkpoint-critical): a node *i* receives from every edge whose
**first** index is *i*::

    A[i] = sum_{e : edge_index[0, e] == i}  w_e * P[edge_type[e]] * X[edge_index[1, e]]

This is the direction of ULTRA's fused rspmm kernel that trained every checkpoint, and the opposite of
PyG's default ``source_to_target`` flow. On the fact graph it means the head h of (h, r, t) hears from t
through the type-r vector, and t hears from h through the type-(r+R) vector.

Node states are laid out node-major, ``[V, B, d]`` (V nodes, B queries, d features).

How it is computed (`MessagePlan`): since P depends only on the edge type, edges are grouped into
(receiver, type) pairs. One sparse-dense product sums the senders of each pair,
``S [U, V] @ X [V, B·d]``, then each pair row is multiplied by its type's vector and added into its
receiver. This never materialises a message per edge, and the product runs on MKL / cuSPARSE.
"""
from __future__ import annotations

from dataclasses import dataclass

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from . import kernels

# Pair rows per chunk: bounds the [U, B, d] intermediate on large graphs (8192 x 64 x 64 floats = 128 MiB).
_PAIRS_PER_CHUNK = 8192


@dataclass
class MessagePlan:
    """A graph's edges grouped by (receiver, edge type), split into chunks of pair rows.

    Each chunk holds ``matrix`` (sparse CSR [u, V], entry w_e at (pair of e, sender of e)),
    ``receiver`` [u] and ``edge_type`` [u].
    """

    matrices: list[Tensor]
    receivers: list[Tensor]
    edge_types: list[Tensor]
    num_nodes: int
    # The same edges as CSR over receivers (numpy, CPU) for the fused kernel: offsets, sender, type, weight.
    csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, edge_index: Tensor, edge_type: Tensor, num_nodes: int, edge_weight: Tensor | None = None,
              pairs_per_chunk: int = _PAIRS_PER_CHUNK, for_inference: bool = True) -> "MessagePlan":
        """edge_index: [2, E] (row 0 receives); edge_type: [E]; edge_weight: [E] or None (ones).

        for_inference=False skips the CPU kernel's CSR (a training step's plan only runs with autograd).
        """
        receiver, sender = edge_index[0], edge_index[1]
        num_types = int(edge_type.max()) + 1 if edge_type.numel() else 1
        pair_keys, pair_of_edge = torch.unique(receiver * num_types + edge_type, return_inverse=True)
        weight = torch.ones(receiver.numel(), device=receiver.device) if edge_weight is None else edge_weight.float()
        matrices, receivers, types = [], [], []
        with warnings.catch_warnings():  # "sparse CSR is in beta": it is what we want here
            warnings.simplefilter("ignore", UserWarning)
            for start in range(0, pair_keys.numel(), pairs_per_chunk):  # a few chunks, not a loop over edges
                end = min(start + pairs_per_chunk, pair_keys.numel())
                inside = (pair_of_edge >= start) & (pair_of_edge < end)
                coo = torch.sparse_coo_tensor(torch.stack([pair_of_edge[inside] - start, sender[inside]]),
                                              weight[inside], (end - start, num_nodes),
                                              check_invariants=False).coalesce()
                matrices.append(coo.to_sparse_csr())
                receivers.append(pair_keys[start:end] // num_types)
                types.append(pair_keys[start:end] % num_types)
        csr = None
        if for_inference and receiver.device.type == "cpu":
            order = torch.argsort(pair_of_edge, stable=True)  # by receiver, then type
            row_start = torch.zeros(num_nodes + 1, dtype=torch.long)
            row_start[1:] = torch.cumsum(torch.bincount(receiver, minlength=num_nodes), 0)
            csr = (row_start.numpy(), sender[order].numpy(), edge_type[order].numpy(),
                   weight[order].contiguous().numpy())
        return cls(matrices, receivers, types, num_nodes, csr)

    def to(self, device: torch.device | str) -> "MessagePlan":
        return MessagePlan([m.to(device) for m in self.matrices], [r.to(device) for r in self.receivers],
                           [t.to(device) for t in self.edge_types], self.num_nodes, self.csr)


@dataclass(frozen=True)
class Boundary:
    """A boundary condition with one non-zero row per query column: column b holds ``value[b]`` at node
    ``node[b]`` and zeros elsewhere (NBFNet's indicator boundary: the query's vector at its source node).

    node: [B] int64; value: [B, d]. The CPU kernel adds it without writing out the [V, B, d] tensor;
    `dense` gives that tensor for the other paths (it keeps value's autograd graph).
    """

    node: Tensor
    value: Tensor

    def dense(self, num_nodes: int, out: Tensor | None = None) -> Tensor:
        """The boundary as [V, B, d] (V = num_nodes), written into ``out`` (a [V, B, d] buffer) when given."""
        out = self.value.new_zeros(num_nodes, *self.value.shape) if out is None else out.zero_()
        return out.index_put_((self.node, torch.arange(self.node.numel(), device=self.node.device)), self.value)


class Workspace:
    """Scratch buffers that one evaluation reuses across its layers and entity passes (CPU inference).

    Every entity pass of `are_model.evaluate.rank_queries` has the same shape, so its [V, B, d] states can
    live in the same memory from pass to pass. Besides saving the allocations, this saves the page faults of
    fresh memory: glibc maps every block over 32 MiB anew and the kernel zeroes each of its pages on first
    touch, which on FB15k237 ([14541, 16, 64] floats, 60 MiB) cost as much as a layer's arithmetic.
    A tensor a layer returns from a workspace is overwritten by later calls that use the same workspace.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def buffer(self, name: str, shape: tuple[int, ...], avoid: Tensor | None = None) -> Tensor:
        """A float32 CPU buffer of ``shape`` named ``name`` (its old contents undefined); with ``avoid``, one
        of two buffers of that name whose memory is not ``avoid``'s (ping-pong states)."""
        for key in ((name,) if avoid is None else (name + ":a", name + ":b")):
            found = self._buffers.get(key)
            if found is None or found.shape != torch.Size(shape):
                found = self._buffers[key] = torch.empty(shape, dtype=torch.float32)
            if avoid is None or found.data_ptr() != avoid.data_ptr():
                return found
        raise AssertionError("unreachable: two distinct buffers cannot both be `avoid`")


def use_cpu_kernels(x: Tensor, *tensors: Tensor | None) -> bool:
    """Whether the compiled CPU kernels (:mod:`are_model.kernels`) serve a call on ``x`` [V, B, d] that also
    reads ``tensors`` (None entries ignored): numba is there, x is a float32 CPU tensor, and autograd needs no
    gradient of any of them (the kernels run outside autograd)."""
    return (kernels.available() and x.device.type == "cpu" and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, *tensors))))


def relational_aggregate(plan: MessagePlan, x: Tensor, relations: Tensor, group_sizes: list[int] | None = None,
                         initial: Tensor | Boundary | None = None, out: Tensor | None = None) -> Tensor:
    """Sum of distmult messages into ``edge_index[0]`` from ``edge_index[1]`` (see module docstring).

    x: [V, B, d]. relations: [K, d] (shared by every query) or [K, G, d] with ``group_sizes`` (G
    consecutive column blocks of the batch, block g using relations[:, g]). initial: added to the result
    (the layer's boundary): [V, B, d], [V, 1, d] (the same for every column), a `Boundary`, or None.
    out: a [V, B, d] buffer for the CPU kernel to write into (ignored on the other paths).
    Returns A (+ initial): [V, B, d].
    """
    num_nodes, batch, dim = x.shape
    boundary_value = initial.value if isinstance(initial, Boundary) else initial
    inplace = not (torch.is_grad_enabled() and (x.requires_grad or relations.requires_grad))
    if plan.csr is not None and use_cpu_kernels(x, relations, boundary_value):
        if group_sizes is None:
            relations, column_group = relations.unsqueeze(1), torch.zeros(batch, dtype=torch.long)
        else:
            column_group = torch.repeat_interleave(torch.arange(len(group_sizes)), torch.tensor(group_sizes))
        if isinstance(initial, Boundary):
            return kernels.aggregate_cpu(*plan.csr, x, relations.float(), column_group,
                                         boundary=(initial.node, initial.value), out=out)
        return kernels.aggregate_cpu(*plan.csr, x, relations.float(), column_group, initial, out=out)
    if isinstance(initial, Boundary):
        initial = initial.dense(num_nodes)
    out = torch.zeros_like(x) if initial is None else initial.expand_as(x).clone()
    flat = x.reshape(num_nodes, batch * dim)
    for matrix, receiver, edge_type in zip(plan.matrices, plan.receivers, plan.edge_types):
        summed = torch.sparse.mm(matrix, flat).view(-1, batch, dim)                 # [u, B, d]
        if group_sizes is None:
            vectors = relations[edge_type].unsqueeze(1)                              # [u, 1, d]
            summed = summed.mul_(vectors) if inplace else summed * vectors
        elif inplace:
            for block, vectors in zip(summed.split(group_sizes, dim=1), relations[edge_type].unbind(1)):
                block.mul_(vectors.unsqueeze(1))
        else:
            blocks = summed.split(group_sizes, dim=1)
            summed = torch.cat([b * v.unsqueeze(1) for b, v in zip(blocks, relations[edge_type].unbind(1))], 1)
        out.index_add_(0, receiver, summed)
    return out


class RelationalConv(nn.Module):
    """One NBFNet layer with its shortcut: ReLU(LN(W [X ; A + U] + c)) + X.

    Keys (checkpoint order): ``layer_norm``, ``linear`` and either ``relation`` (an embedding of the K
    edge types, shared by the batch) or ``relation_projection`` (an MLP applied to relation
    representations, used by the entity model).
    """

    def __init__(self, dim: int = 64, num_edge_types: int | None = None, projected: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.layer_norm = nn.LayerNorm(dim)
        self.linear = nn.Linear(2 * dim, dim)
        self.projected = projected
        if projected:
            self.relation_projection = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        else:
            if num_edge_types is None:
                raise ValueError("a non-projected RelationalConv needs num_edge_types")
            self.relation = nn.Embedding(num_edge_types, dim)

    def edge_type_vectors(self, relation_reprs: Tensor | None = None) -> Tensor:
        """The relation vectors P: the [K, d] embedding, or the projection of relation_reprs [K, G, d]."""
        if self.projected:
            if relation_reprs is None:
                raise ValueError("a projected RelationalConv needs relation representations")
            return self.relation_projection(relation_reprs)
        return self.relation.weight

    def forward(self, x: Tensor, boundary: Tensor | Boundary, plan: MessagePlan, relations: Tensor,
                group_sizes: list[int] | None = None, workspace: Workspace | None = None) -> Tensor:
        """One layer with its shortcut: ReLU(LN(W [X ; A + U] + c)) + X.

        x: [V, B, d]; boundary: U as [V, B, d], [V, 1, d] or a `Boundary`; relations, group_sizes: see
        `relational_aggregate`; workspace: buffers to compute in at CPU inference (the result is then one of
        them). Returns [V, B, d].
        """
        weight = self.linear.weight
        boundary_value = boundary.value if isinstance(boundary, Boundary) else boundary
        if use_cpu_kernels(x, weight, relations, boundary_value) and x.is_contiguous():
            # W [X ; M] + c as two products into one buffer; c is added inside the LayerNorm kernel. Fresh
            # buffers when no workspace is given.
            shape, rows = tuple(x.shape), x.shape[0] * x.shape[1]
            take = (lambda name, size, avoid=None: torch.empty(size)) if workspace is None else workspace.buffer
            aggregated = relational_aggregate(plan, x, relations, group_sizes, initial=boundary,
                                              out=take("aggregate", shape))
            hidden = torch.mm(x.view(rows, self.dim), weight[:, : self.dim].T, out=take("hidden", (rows, self.dim)))
            hidden.addmm_(aggregated.view(rows, self.dim), weight[:, self.dim:].T)
            return kernels.norm_relu_residual_cpu(hidden, self.linear.bias, self.layer_norm, x,
                                                  out=take("state", shape, x))
        aggregated = relational_aggregate(plan, x, relations, group_sizes, initial=boundary)
        # W [X ; M] computed as two products, which avoids materialising the concatenation.
        hidden = torch.addmm(self.linear.bias, x.reshape(-1, self.dim), weight[:, : self.dim].T)
        hidden = torch.addmm(hidden, aggregated.view(-1, self.dim), weight[:, self.dim:].T)
        return torch.relu(self.layer_norm(hidden.view_as(x))) + x
