"""Fused CPU kernels for the entity pass at inference time, compiled by Numba (no C++ toolchain needed).

`relational_aggregate` in `layers` has two paths. On the GPU, and whenever autograd needs gradients, it uses
sparse-dense products (cuSPARSE / MKL), which allocate one [pairs, B, d] intermediate. On the CPU at inference
time `aggregate_cpu` does gather, multiply and sum in one pass per receiving node, in parallel over receivers,
so no intermediate is written at all, and it adds the layer's boundary without its dense [V, B, d] form.
`norm_relu_residual_cpu` (the layer's bias, LayerNorm, ReLU and shortcut) and `relu_dot_cpu` (the entity MLP's
ReLU and last layer) each replace three or four torch passes over a [V*B, d] tensor with one. What is left per
layer are the two matrix products of its linear layer (MKL). Without numba the torch ops run instead.

The kernels sum in float32 and let LLVM reassociate sums over d (`_FAST`), so their results may differ from
torch's in the last bits; each node's sums run in a fixed order, independent of the batch it is in.

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


#: kernel name ("aggregate", "norm_relu_residual", "relu_dot") -> calls dispatched to the compiled kernel.
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


#: Float flags of the compiled kernels: reassociation lets LLVM vectorise the sums over d (LayerNorm's mean and
#: variance, the score's dot product) and "contract" fuses multiply-adds. No flag that assumes finite values, so
#: a NaN or inf in the inputs still comes out as one.
_FAST = {"reassoc", "contract"}

if numba is not None:

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST)
    def _aggregate(row_start, sender, edge_type, edge_weight, x, relations, column_group, initial, boundary_node,
                   boundary_value, out):  # pragma: no cover - compiled
        num_nodes, batch, dim = out.shape
        groups = relations.shape[1]
        dense_initial = initial.shape[0] == num_nodes
        shared_initial = initial.shape[1] == 1
        for node in numba.prange(num_nodes):
            row = out[node]
            if dense_initial:
                for column in range(batch):
                    source_column = 0 if shared_initial else column
                    for k in range(dim):
                        row[column, k] = initial[node, source_column, k]
            else:
                row[:] = 0.0
            for column in range(boundary_node.shape[0]):
                if boundary_node[column] == node:
                    for k in range(dim):
                        row[column, k] += boundary_value[column, k]
            vector = np.empty((groups, dim), dtype=np.float32)
            for edge in range(row_start[node], row_start[node + 1]):
                source = x[sender[edge]]
                kind = edge_type[edge]
                weight = edge_weight[edge]
                for group in range(groups):
                    for k in range(dim):
                        vector[group, k] = weight * relations[kind, group, k]
                for column in range(batch):
                    group = column_group[column]
                    for k in range(dim):
                        row[column, k] += vector[group, k] * source[column, k]

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST)
    def _norm_relu_residual(hidden, bias, gamma, beta, residual, eps, out):  # pragma: no cover - compiled
        rows, dim = hidden.shape
        for row in numba.prange(rows):
            mean = np.float32(0.0)
            for k in range(dim):
                mean += hidden[row, k] + bias[k]
            mean = mean / np.float32(dim)
            var = np.float32(0.0)
            for k in range(dim):
                centred = hidden[row, k] + bias[k] - mean
                var += centred * centred
            scale = np.float32(1.0) / np.sqrt(var / np.float32(dim) + eps)
            for k in range(dim):
                value = (hidden[row, k] + bias[k] - mean) * scale * gamma[k] + beta[k]
                out[row, k] = (value if value > 0.0 else np.float32(0.0)) + residual[row, k]

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST)
    def _relu_dot(hidden, query_term, weight, bias, out):  # pragma: no cover - compiled
        batch, num_nodes = out.shape
        width = hidden.shape[1]
        for node in numba.prange(num_nodes):
            for column in range(batch):
                row = node * batch + column
                total = np.float32(0.0)
                for j in range(width):
                    value = hidden[row, j] + query_term[column, j]
                    if value > 0.0:
                        total += value * weight[j]
                out[column, node] = total + bias


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


_NO_BOUNDARY = (np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32))


def aggregate_cpu(row_start: np.ndarray, sender: np.ndarray, edge_type: np.ndarray, edge_weight: np.ndarray,
                  x: torch.Tensor, relations: torch.Tensor, column_group: torch.Tensor,
                  initial: torch.Tensor | None = None, boundary: tuple[torch.Tensor, torch.Tensor] | None = None,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """initial[i] + boundary at i + sum over edges e into i of w_e * relations[type_e, group(col)] * x[sender_e].

    row_start: [V+1] CSR offsets of edges sorted by receiver; sender, edge_type, edge_weight: [E] in that
    order; x: [V, B, d] float32; relations: [K, G, d]; column_group: [B] int64; initial: [V, B, d] or
    [V, 1, d] (one vector per node for every column), or None; boundary: (node [B], value [B, d]): column b
    starts with value[b] at node[b] (a boundary with one non-zero row per column, never written out densely),
    or None; out: a [V, B, d] float32 buffer to write into (a new one if None). Every node's sum runs in the
    same order (initial, boundary, then its edges in CSR order), whatever the batch. Returns out.
    """
    num_nodes, batch, dim = x.shape
    if out is None:
        out = torch.empty((num_nodes, batch, dim), dtype=torch.float32)
    initial_array = np.zeros((0, 1, dim), dtype=np.float32) if initial is None else _as_array(initial)
    node, value = _NO_BOUNDARY if boundary is None else (_as_array(boundary[0]), _as_array(boundary[1]))
    numba.set_num_threads(_threads())
    calls["aggregate"] += 1
    _aggregate(row_start, sender, edge_type, edge_weight, _as_array(x), _as_array(relations), column_group.numpy(),
               initial_array, node, value, out.numpy())
    return out


def norm_relu_residual_cpu(hidden: torch.Tensor, bias: torch.Tensor, layer_norm: torch.nn.LayerNorm,
                           residual: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """ReLU(LayerNorm(hidden + bias)) + residual in one pass.

    hidden: [..., d] float32 (without the linear layer's bias); bias: [d]; residual: [..., d] contiguous, same
    shape; out: a buffer of residual's shape (a new one if None). Statistics are float32 sums over d.
    Returns out.
    """
    dim = hidden.shape[-1]
    out = torch.empty_like(residual) if out is None else out
    numba.set_num_threads(_threads())
    calls["norm_relu_residual"] += 1
    _norm_relu_residual(_as_array(hidden.reshape(-1, dim)), _as_array(bias), _as_array(layer_norm.weight),
                        _as_array(layer_norm.bias), _as_array(residual.reshape(-1, dim)),
                        np.float32(layer_norm.eps), out.view(-1, dim).numpy())
    return out


def relu_dot_cpu(hidden: torch.Tensor, query_term: torch.Tensor, weight: torch.Tensor, bias: float) -> torch.Tensor:
    """Scores [B, V]: out[b, v] = sum_j ReLU(hidden[v * B + b, j] + query_term[b, j]) * weight[j] + bias.

    The MLP head of the entity model after its first product: hidden [V * B, H] node-major, query_term [B, H]
    (the query's half of the first layer, with its bias), weight [H] (the last layer). Returns [B, V] float32.
    """
    batch = query_term.shape[0]
    out = torch.empty((batch, hidden.shape[0] // batch), dtype=torch.float32)
    numba.set_num_threads(_threads())
    calls["relu_dot"] += 1
    _relu_dot(_as_array(hidden), _as_array(query_term), _as_array(weight), np.float32(bias), out.numpy())
    return out
