"""Several fusion settings per entity pass: K-batched ranks equal one-by-one ranks bit for bit.

Real data: NELLInductive:v1 validation split (828 queries, 624 distinct (anchor, r') pairs) and the real
fusion.pth checkpoint on the CPU.
"""
from __future__ import annotations

import pytest
import torch

from are_model.evaluate import rank_queries
from are_model.pipeline import TextOptions
from search.engine import SearchContext, get_context

DATASET = "NELLInductive:v1"
#: Four settings, the 0/0 point and a large w_prompt among them, so that the ranks differ between them.
SETTINGS = torch.tensor([[0.3, 0.6], [0.0, 0.0], [1.0, 2.5], [0.2, 0.8]])


@pytest.fixture(scope="module")
def fusion_path(checkpoint_root):
    return checkpoint_root / "fusion.pth"


@pytest.fixture(scope="module")
def context(data_root, text_root, cache_dir, fusion_path) -> SearchContext:
    text = TextOptions(root=str(text_root), cache_dir=str(cache_dir), download=False)
    return get_context(DATASET, fusion_path, data_root=data_root, text=text, cache_dir=cache_dir)


def _rank(context: SearchContext, weights: torch.Tensor, **kwargs) -> torch.Tensor:
    prepared = context.split("valid")
    kwargs.setdefault("batch_size", context.batch_size)
    return rank_queries(context.model, prepared.graph, prepared.queries, prepared.filters,
                        side=context.relation_side("valid"), weights=weights, pairs=context.pairs("valid"), **kwargs)


@pytest.fixture(scope="module")
def one_by_one(context) -> torch.Tensor:
    """Full-split ranks [4, Q] of SETTINGS, one rank_queries call per setting."""
    return torch.stack([_rank(context, weights) for weights in SETTINGS])


def test_the_settings_rank_differently(one_by_one):
    """Otherwise the comparisons below could not tell one setting's row from another's."""
    assert all(not torch.equal(one_by_one[k], one_by_one[j]) for k in range(4) for j in range(k))
    assert bool((one_by_one > 0).all())


@pytest.mark.parametrize("count", [2, 3, 4])
def test_k_batched_ranks_equal_one_by_one_ranks_bit_for_bit(context, one_by_one, count):
    """K = 3 does not divide the CPU batch of 16 rows: 5 pairs x 3 settings and one padded row a pass."""
    batched = _rank(context, SETTINGS[:count])
    assert batched.shape == (count, one_by_one.shape[1])
    assert torch.equal(batched, one_by_one[:count])


def test_k_batched_stages_equal_one_by_one(context, one_by_one):
    """A stage's pairs (a seeded, unsorted subset) ranked for 3 settings: the ranks of the whole split
    there, 0 elsewhere; the stages together give the whole split."""
    plan = context.stage_plan("valid", 3)
    total = torch.zeros(3, one_by_one.shape[1], dtype=torch.long)
    for stage in plan.stages():
        batched = _rank(context, SETTINGS[1:], select=stage)
        ranked = batched[0] > 0
        assert bool((batched[:, ranked] > 0).all()) and bool((batched[:, ~ranked] == 0).all())
        assert torch.equal(batched[:, ranked], one_by_one[1:, ranked])
        total += batched
    assert torch.equal(total, one_by_one[1:])


def test_more_settings_than_rows_are_ranked_in_groups(context):
    """Five settings with a batch of 2 rows: ranked 2, 2 and 1 at a time, still as one by one."""
    select = context.stage_plan("valid", 4).stages()[0][:9]
    settings = torch.cat([SETTINGS, torch.tensor([[0.5, 0.5]])])
    batched = _rank(context, settings, batch_size=2, select=select)
    alone = torch.stack([_rank(context, weights, batch_size=2, select=select) for weights in settings])
    assert torch.equal(batched, alone)


def test_one_setting_as_a_row_equals_the_plain_call(context, one_by_one):
    assert torch.equal(_rank(context, SETTINGS[:1]), one_by_one[:1])


@pytest.mark.parametrize("shape", [(3,), (2, 3), (0, 2), (1, 2, 2)])
def test_weights_of_another_shape_are_refused(context, shape):
    with pytest.raises(ValueError, match=r"\[2\] or \[K, 2\]"):
        _rank(context, torch.zeros(shape))
