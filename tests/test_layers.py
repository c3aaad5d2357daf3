"""Message passing on hand-made graphs: direction, the two computation paths, relation graphs.

Which path ran is observed, not assumed: ``are_model.kernels.calls`` counts the calls that reached the
compiled Numba kernels.
"""
from __future__ import annotations

import pytest
import torch

from are_model import kernels
from are_model.graphs import build_relation_graph, build_text_graph
from are_model.layers import Boundary, MessagePlan, RelationalConv, Workspace, relational_aggregate


@pytest.fixture
def kernel_calls():
    """``kernel_calls()``: the kernel calls since the test began, by kernel name."""
    start = kernels.calls.copy()
    return lambda: {name: kernels.calls[name] - start[name] for name in ("aggregate", "norm_relu_residual")}


def test_numba_kernels_are_available():
    # numba is a hard dependency (pyproject.toml): without it every CPU test below would silently run the
    # sparse path only.
    assert kernels.available()


def test_messages_flow_into_the_first_index():
    # One edge (0, 1) of type 0: node 0 must hear from node 1, node 1 hears nothing (spec §1.2).
    edge_index = torch.tensor([[0], [1]])
    plan = MessagePlan.build(edge_index, torch.tensor([0]), num_nodes=3)
    x = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]])             # [V=3, B=1, d=2]
    relation = torch.tensor([[10.0, 100.0]])                                  # [K=1, d]
    out = relational_aggregate(plan, x, relation)
    assert torch.equal(out[0, 0], torch.tensor([30.0, 400.0]))
    assert torch.equal(out[1:], torch.zeros(2, 1, 2))


def test_fact_graph_direction_head_hears_tail_through_r_and_tail_hears_head_through_inverse():
    # Triple (h=0, r=0, t=1) with R = 1: edges (0 -> 1, type 0) and its inverse (1 -> 0, type 1).
    edge_index = torch.tensor([[0, 1], [1, 0]])
    edge_type = torch.tensor([0, 1])
    plan = MessagePlan.build(edge_index, edge_type, num_nodes=2)
    x = torch.tensor([[[1.0]], [[2.0]]])
    relations = torch.tensor([[3.0], [5.0]])                                  # type 0 -> 3, type 1 -> 5
    out = relational_aggregate(plan, x, relations)
    assert out[0, 0, 0] == 3.0 * 2.0      # head 0 <- tail 1 through r
    assert out[1, 0, 0] == 5.0 * 1.0      # tail 1 <- head 0 through r + R


def _random_graph(num_nodes=50, num_edges=400, num_types=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(num_nodes, (2, num_edges), generator=generator)
    edge_type = torch.randint(num_types, (num_edges,), generator=generator)
    weight = torch.rand(num_edges, generator=generator)
    return edge_index, edge_type, weight


def _reference_aggregate(x, relations, edge_index, edge_type, weight, group_of_column):
    out = torch.zeros_like(x)
    for e in range(edge_index.shape[1]):  # slow, obvious reference
        i, j, k = int(edge_index[0, e]), int(edge_index[1, e]), int(edge_type[e])
        out[i] += weight[e] * relations[k, group_of_column] * x[j]
    return out


def test_kernel_and_sparse_paths_match_an_edge_by_edge_reference(kernel_calls, monkeypatch):
    edge_index, edge_type, weight = _random_graph()
    plan = MessagePlan.build(edge_index, edge_type, 50, weight, pairs_per_chunk=37)  # several chunks
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(50, 5, 8, generator=generator)
    relations = torch.randn(6, 2, 8, generator=generator)                    # 2 groups of columns
    group_sizes = [3, 2]
    group_of_column = torch.tensor([0, 0, 0, 1, 1])
    initial = torch.randn(50, 5, 8, generator=generator)
    expected = _reference_aggregate(x, relations, edge_index, edge_type, weight, group_of_column)

    with torch.no_grad():
        fused = relational_aggregate(plan, x, relations, group_sizes)           # CPU kernel
        fused_initial = relational_aggregate(plan, x, relations, group_sizes, initial=initial)
        fused_shared = relational_aggregate(plan, x, relations[:, 0])           # one [K, d] for every column
    assert kernel_calls()["aggregate"] == 3                                     # the kernel did run, 3 times

    sparse = relational_aggregate(plan, x.clone().requires_grad_(), relations, group_sizes)  # autograd path
    assert kernel_calls()["aggregate"] == 3                                     # ... and not for autograd

    monkeypatch.setattr(kernels, "available", lambda: False)                    # the fallback without numba
    with torch.no_grad():
        fallback = relational_aggregate(plan, x, relations, group_sizes)
        fallback_initial = relational_aggregate(plan, x, relations, group_sizes, initial=initial)
        fallback_shared = relational_aggregate(plan, x, relations[:, 0])
    assert kernel_calls()["aggregate"] == 3

    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sparse.detach(), expected, rtol=1e-5, atol=1e-5)
    # the same numbers on both paths, up to the order of float additions
    torch.testing.assert_close(fallback, fused, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fallback_initial, fused_initial, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fallback_initial, fused + initial, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fallback_shared, fused_shared, rtol=1e-6, atol=1e-6)
    shared_reference = _reference_aggregate(x, relations[:, :1].expand(-1, 2, -1), edge_index, edge_type, weight,
                                            group_of_column)
    torch.testing.assert_close(fused_shared, shared_reference, rtol=1e-5, atol=1e-5)


def test_layer_kernel_path_equals_the_torch_path(kernel_calls, monkeypatch):
    """RelationalConv at inference runs both kernels (aggregate, LayerNorm+ReLU+shortcut); with the
    kernels unavailable the torch ops give the same output."""
    edge_index, edge_type, weight = _random_graph(num_types=4)
    plan = MessagePlan.build(edge_index, edge_type, 50, weight)
    torch.manual_seed(0)
    layer = RelationalConv(dim=8, num_edge_types=4).eval()
    with torch.no_grad():                                   # non-trivial LayerNorm affine parameters
        layer.layer_norm.weight.uniform_(0.5, 1.5)
        layer.layer_norm.bias.uniform_(-0.5, 0.5)
    x, boundary = torch.randn(50, 3, 8), torch.randn(50, 3, 8)
    with torch.no_grad():
        kernel_out = layer(x, boundary, plan, layer.edge_type_vectors())
    assert kernel_calls() == {"aggregate": 1, "norm_relu_residual": 1}
    monkeypatch.setattr(kernels, "available", lambda: False)
    with torch.no_grad():
        torch_out = layer(x, boundary, plan, layer.edge_type_vectors())
    assert kernel_calls() == {"aggregate": 1, "norm_relu_residual": 1}
    torch.testing.assert_close(torch_out, kernel_out, rtol=1e-5, atol=1e-5)
    assert (torch_out > 0).any() and not torch.equal(torch_out, x)           # not a vacuous comparison


def test_relation_graph_four_types_on_a_hand_made_graph():
    # Triples (0, r0, 1), (0, r1, 2), (2, r0, 3) with R = 2; inverses have types 2, 3.
    heads, tails, types = torch.tensor([0, 0, 2]), torch.tensor([1, 2, 3]), torch.tensor([0, 1, 0])
    edge_index = torch.cat([torch.stack([heads, tails]), torch.stack([tails, heads])], dim=1)
    edge_type = torch.cat([types, types + 2])
    graph = build_relation_graph(edge_index, edge_type, num_relations=4)
    pairs = {k: set() for k in range(4)}
    for (i, j), k in zip(graph.edge_index.T.tolist(), graph.edge_type.tolist()):
        pairs[k].add((i, j))
    # Heads of each relation: r0 {0, 2}, r1 {0}, r0^-1 {1, 3}, r1^-1 {2}; tails: r0 {1, 3}, r1 {2}, r0^-1 {0, 2}, r1^-1 {0}.
    head_of = {0: {0, 2}, 1: {0}, 2: {1, 3}, 3: {2}}
    tail_of = {0: {1, 3}, 1: {2}, 2: {0, 2}, 3: {0}}
    def support(left, right):
        return {(i, j) for i in range(4) for j in range(4) if left[i] & right[j]}
    assert pairs[0] == support(head_of, head_of)
    assert pairs[1] == support(tail_of, tail_of)
    assert pairs[2] == support(head_of, tail_of)
    assert pairs[3] == support(tail_of, head_of)
    assert graph.num_nodes == 4 and graph.num_edge_types == 4


def test_text_graph_thresholds_cosine_and_keeps_weights():
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.0, 0.0]])
    graph = build_text_graph(embeddings, threshold=0.8)
    edges = set(map(tuple, graph.edge_index.T.tolist()))
    assert edges == {(0, 1), (1, 0)}                      # symmetric, no self loops, zero vector isolated
    expected = float(torch.nn.functional.cosine_similarity(embeddings[0], embeddings[1], dim=0))
    torch.testing.assert_close(graph.edge_weight, torch.tensor([expected, expected]))


def test_one_thread_stays_one_thread_after_the_kernels_start(data_root, text_root, checkpoint_root, cache_dir):
    """``--threads 1`` (torch.set_num_threads(1)) holds for the whole run: numba's OpenMP start-up at the first
    kernel call set the process's OpenMP count to the whole pool, so a 1-thread evaluation went on with 2
    threads (found by a new user timing ``evaluate --threads 1``). A fresh process, as the command line is."""
    import os
    import subprocess
    import sys

    code = ("import torch, numba\n"
            "from search.evaluate import evaluate\n"
            "from search.options import LoadOptions\n"
            f"options = LoadOptions(data_root={str(data_root)!r}, text_root={str(text_root)!r}, "
            f"checkpoint_root={str(checkpoint_root)!r}, cache_dir={str(cache_dir)!r}, device='cpu', threads=1)\n"
            "evaluate('Metafam', 'fusion', options, split='test')\n"
            "from are_model import kernels\n"
            "print(torch.get_num_threads(), numba.get_num_threads(), kernels.calls['aggregate'] > 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "1", "True"], result.stdout


def test_a_sparse_boundary_and_a_workspace_give_the_layer_s_dense_result(kernel_calls, monkeypatch):
    """A `Boundary` (one non-zero row per column) is added by the kernel without its dense form, and a
    `Workspace` only changes where the result lives: both equal the torch path on the dense boundary."""
    edge_index, edge_type, weight = _random_graph(num_types=4)
    plan = MessagePlan.build(edge_index, edge_type, 50, weight)
    torch.manual_seed(1)
    layer = RelationalConv(dim=8, num_edge_types=4).eval()
    boundary = Boundary(torch.tensor([3, 3, 49]), torch.randn(3, 8))
    dense = boundary.dense(50)
    assert torch.equal(dense[3, :2], boundary.value[:2]) and torch.equal(dense[49, 2], boundary.value[2])
    assert int((dense != 0).any(-1).sum()) == 3
    workspace = Workspace()
    with torch.no_grad():
        first = layer(dense, boundary, plan, layer.edge_type_vectors(), workspace=workspace)
        second = layer(first, boundary, plan, layer.edge_type_vectors(), workspace=workspace)
        # ping-pong: the second layer neither wrote into its input nor returned new memory each time
        assert second.data_ptr() != first.data_ptr()
        third = layer(second, boundary, plan, layer.edge_type_vectors(), workspace=workspace)
        assert third.data_ptr() == first.data_ptr()
        expected_second = layer(layer(dense, dense, plan, layer.edge_type_vectors()), dense, plan,
                                layer.edge_type_vectors())
    assert kernel_calls() == {"aggregate": 5, "norm_relu_residual": 5}
    monkeypatch.setattr(kernels, "available", lambda: False)
    with torch.no_grad():
        torch_second = layer(layer(dense, boundary, plan, layer.edge_type_vectors()), boundary, plan,
                             layer.edge_type_vectors())
    assert kernel_calls() == {"aggregate": 5, "norm_relu_residual": 5}
    torch.testing.assert_close(expected_second, torch_second, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(second, torch_second, rtol=1e-5, atol=1e-5)
    assert not torch.equal(second, dense)


def test_the_entity_head_kernel_equals_the_torch_mlp(monkeypatch):
    """EntityNBFNet.score: the compiled ReLU + last layer equals the torch MLP on [x ; query]."""
    from are_model.ultra import EntityNBFNet

    torch.manual_seed(2)
    model = EntityNBFNet(dim=8, num_layers=1).eval()
    x, query = torch.randn(30, 4, 8), torch.randn(4, 8)
    start = kernels.calls["relu_dot"]
    with torch.no_grad():
        fast = model.score(x, query)
        reference = model.mlp(torch.cat([x, query.expand(30, 4, 8)], -1)).squeeze(-1).T   # [B, N]
    assert kernels.calls["relu_dot"] == start + 1
    assert fast.shape == (4, 30)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(kernels, "available", lambda: False)
    with torch.no_grad():
        torch.testing.assert_close(model.score(x, query), reference, rtol=1e-5, atol=1e-5)
    assert kernels.calls["relu_dot"] == start + 1
