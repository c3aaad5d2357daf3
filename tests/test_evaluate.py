"""Filtered ranking: pessimistic ties, filters, query order, metrics."""
from __future__ import annotations

import torch

from are_model.evaluate import FilterIndex, build_queries, filtered_ranks, ranking_metrics


def test_ties_count_against_the_answer_and_known_truths_are_filtered():
    scores = torch.tensor([[0.5, 0.9, 0.9, 0.1, 0.9],
                           [1.0, 0.2, 0.3, 0.4, 0.5]])
    answers = torch.tensor([2, 0])
    # Row 0: entity 1 is another known true answer (filtered); entity 4 ties with the answer.
    ranks = filtered_ranks(scores, answers, torch.tensor([0]), torch.tensor([1]))
    assert ranks.tolist() == [2, 1]
    # Without the filter entity 1 (tied) counts too.
    assert filtered_ranks(scores, answers, torch.tensor([], dtype=torch.long),
                          torch.tensor([], dtype=torch.long)).tolist() == [3, 1]


def test_query_order_and_filter_index_cover_both_directions():
    # Two relations (R' = 4); targets (0, r0, 1) and (2, r1, 1).
    targets = torch.tensor([[0, 2], [1, 1]])
    types = torch.tensor([0, 1])
    queries = build_queries(targets, types, num_relations=4)
    assert queries.anchors.tolist() == [0, 2, 1, 1]          # tails first, then heads in target order
    assert queries.query_relations.tolist() == [0, 1, 2, 3]  # head queries use r + R
    assert queries.forward_relations.tolist() == [0, 1, 0, 1]
    assert queries.answers.tolist() == [1, 1, 0, 2]
    assert queries.is_head.tolist() == [False, False, True, True]
    # Known facts: (0, r0, 1), (0, r0, 3), (5, r0, 1).
    filters = FilterIndex(torch.tensor([[0, 0, 5], [1, 3, 1]]), torch.tensor([0, 0, 0]), num_relations=4)
    rows, entities = filters.true_answers(torch.tensor([0, 1, 4]), torch.tensor([0, 2, 0]))
    found = sorted(zip(rows.tolist(), entities.tolist()))
    assert found == [(0, 1), (0, 3), (1, 0), (1, 5)]          # (0, r0, ?) -> {1, 3}; (?, r0, 1) -> {0, 5}


def test_metrics():
    metrics = ranking_metrics(torch.tensor([1, 2, 4, 20]))
    assert metrics["mrr"] == (1 + 0.5 + 0.25 + 0.05) / 4
    assert metrics["mr"] == 6.75
    assert metrics["hits@1"] == 0.25 and metrics["hits@3"] == 0.5 and metrics["hits@10"] == 0.75
    assert metrics["num_queries"] == 4
