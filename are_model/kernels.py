"""A fused CPU kernel for relational message passing at inference time.

`relational_aggregate` in `layers` has two paths. On the GPU, and whenever autograd needs gradients,
it uses sparse-dense products (cuSPARSE / MKL), which allocate one [pairs, B, d] intermediate. On the
CPU at inference time this kernel does gather, multiply and sum in one pass per receiving node, in
parallel over receivers, so no intermediate is written at all; it runs about 4x faster on 2 cores.
Numba compiles it (no C++ toolchain needed); without numba the sparse path is used.

:data:`calls` counts, per kernel, the calls that reached the compiled code (tests read it to know which
path ran).
"""
from __future__ import annotations

import collections
import logging

import numpy as np
import torch

log = logging.getLogger(__name__)

try:
    import numba
except ImportError:  # optional: the sparse path works everywhere
    numba = None


#: kernel name ("aggregate", "norm_relu_residual") -> calls dispatched to the compiled kernel.
calls: collections.Counter[str] = collections.Counter()


def available() -> bool:
    return numba is not None


_launched = False


def _threads() -> int:
    """The threads a kernel call uses: torch's count (``torch.set_num_threads``, ``--threads``), at most numba's
    pool. The first call launches numba's threading layer, whose OpenMP start-up sets the process's OpenMP
    thread count to the whole pool -- torch's count too when both use the same OpenMP runtime (numba's ``omp``
    layer beside torch's libgomp): a run told to use 1 thread went on with 2. Torch's count is put back here."""
    global _launched
    wanted = torch.get_num_threads()
    if not _launched:
        numba.get_num_threads()  # launches the layer
        _launched = True
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
    return max(1, min(wanted, numba.config.NUMBA_NUM_THREADS))


if numba is not None:

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _aggregate(row_start, sender, edge_type, edge_weight, x, relations, column_group, initial, out):  # pragma: no cover - compiled
        num_nodes, batch, dim = out.shape
        for node in numba.prange(num_nodes):
            for column in range(batch):
                for k in range(dim):
                    out[node, column, k] = initial[node, column, k]
            for edge in range(row_start[node], row_start[node + 1]):
                source = sender[edge]
                kind = edge_type[edge]
                weight = edge_weight[edge]
                for column in range(batch):
                    group = column_group[column]
                    for k in range(dim):
                        out[node, column, k] += weight * relations[kind, group, k] * x[source, column, k]

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _norm_relu_residual(hidden, gamma, beta, residual, eps, out):  # pragma: no cover - compiled
        rows, dim = hidden.shape
        for row in numba.prange(rows):
            mean = 0.0
            for k in range(dim):
                mean += hidden[row, k]
            mean /= dim
            var = 0.0
            for k in range(dim):
                centred = hidden[row, k] - mean
                var += centred * centred
            scale = 1.0 / np.sqrt(var / dim + eps)
            for k in range(dim):
                value = (hidden[row, k] - mean) * scale * gamma[k] + beta[k]
                out[row, k] = (value if value > 0.0 else 0.0) + residual[row, k]


def aggregate_cpu(row_start: np.ndarray, sender: np.ndarray, edge_type: np.ndarray, edge_weight: np.ndarray,
                  x: torch.Tensor, relations: torch.Tensor, column_group: torch.Tensor,
                  initial: torch.Tensor) -> torch.Tensor:
    """initial[i] + sum over edges e into i of w_e * relations[type_e, group(col)] * x[sender_e].

    row_start: [V+1] CSR offsets of edges sorted by receiver; sender, edge_type, edge_weight: [E] in that
    order; x, initial: [V, B, d] float32; relations: [K, G, d]; column_group: [B] int64. Returns [V, B, d].
    """
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    numba.set_num_threads(_threads())
    calls["aggregate"] += 1
    _aggregate(row_start, sender, edge_type, edge_weight, x.contiguous().numpy(), relations.contiguous().numpy(),
               column_group.numpy(), initial.expand_as(x).contiguous().numpy(), out.numpy())
    return out


def norm_relu_residual_cpu(hidden: torch.Tensor, layer_norm: torch.nn.LayerNorm, residual: torch.Tensor) -> torch.Tensor:
    """ReLU(LayerNorm(hidden)) + residual in one pass. hidden, residual: [..., d] float32 contiguous."""
    dim = hidden.shape[-1]
    out = torch.empty_like(residual)
    numba.set_num_threads(_threads())
    calls["norm_relu_residual"] += 1
    _norm_relu_residual(hidden.reshape(-1, dim).numpy(), layer_norm.weight.detach().numpy(),
                        layer_norm.bias.detach().numpy(), residual.reshape(-1, dim).numpy(),
                        float(layer_norm.eps), out.view(-1, dim).numpy())
    return out
