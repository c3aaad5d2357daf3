"""The composed model on real data: fusion equivalences, the cached relation side, fine-tuning."""
from __future__ import annotations

import pytest
import torch

from are_model.checkpoint import load_checkpoint
from are_model.data import load_dataset
from are_model.evaluate import rank_queries
from are_model.model import remove_easy_edges
from are_model.pipeline import TextOptions, evaluate_split, prepare_split
from are_model.prompt_graph import PromptGraphSizer
from are_model.train import FineTuneConfig, fine_tune, make_batch


@pytest.fixture(scope="module")
def metafam(data_root, cache_dir):
    return load_dataset("Metafam", data_root, cache_dir=cache_dir, download=False)


@pytest.fixture(scope="module")
def text_options(text_root, tmp_path_factory):
    return TextOptions(root=str(text_root), encoder="minilm", cache_dir=str(tmp_path_factory.mktemp("text")))


@pytest.fixture(scope="module")
def metafam_test(metafam, text_options):
    return prepare_split(metafam, "test", text=text_options)


def test_fixed_weights_equal_to_learned_softmax_give_the_same_ranks(checkpoint_root, metafam_test):
    model, _ = load_checkpoint(checkpoint_root / "fusion.pth")
    learned_metrics, learned = evaluate_split(model, metafam_test)
    model.use_fixed_fusion(model.checkpoint_fusion_weights())
    fixed_metrics, fixed = evaluate_split(model, metafam_test)
    assert torch.equal(learned, fixed)
    assert learned_metrics == fixed_metrics


def test_cached_relation_side_with_weights_equals_a_fresh_forward(checkpoint_root, metafam_test):
    model, _ = load_checkpoint(checkpoint_root / "ARE-V5.pth")
    graph = metafam_test.graph
    with torch.inference_mode():
        side = model.relation_side(graph, torch.unique(metafam_test.queries.forward_relations))
    for weights in ([0.0, 0.0], [0.3, 0.7], [1.0, 0.0]):
        cached = rank_queries(model, graph, metafam_test.queries, metafam_test.filters, side=side,
                              weights=torch.tensor(weights))
        model.use_fixed_fusion(weights)
        fresh = rank_queries(model, graph, metafam_test.queries, metafam_test.filters)
        assert torch.equal(cached, fresh), weights
    # The (untrained) prompt delta changes the ranks, so the comparison above is not vacuous.
    assert not torch.equal(rank_queries(model, graph, metafam_test.queries, metafam_test.filters, side=side,
                                        weights=torch.tensor([0.0, 0.0])),
                           rank_queries(model, graph, metafam_test.queries, metafam_test.filters, side=side,
                                        weights=torch.tensor([0.0, 1.0])))


def test_enhanced_profiles_need_text_vectors(checkpoint_root, metafam):
    model, _ = load_checkpoint(checkpoint_root / "semma.pth")
    prepared = prepare_split(metafam, "test")            # no text
    with pytest.raises(ValueError, match="needs relation text embeddings"):
        evaluate_split(model, prepared)


def test_prompt_graph_sizes_match_a_set_computation(metafam):
    data = metafam.train
    sizer = PromptGraphSizer(data.edge_index, data.edge_type, int(data.num_nodes), int(data.num_relations))
    relations = torch.tensor([0, 1, 2, 3, 0, 5])
    entities = data.edge_index[0, :6]
    counts = sizer.node_counts(relations, entities, torch.Generator().manual_seed(3))
    # Rebuild the same draws and count the node set by hand.
    offsets, valid = sizer._sample_offsets(sizer.type_count[relations], torch.Generator().manual_seed(3))
    heads, tails = data.edge_index
    for row in range(relations.numel()):
        q, e = int(relations[row]), int(entities[row])
        typed = torch.nonzero(data.edge_type == q).flatten()
        chosen = typed[offsets[row][valid[row]]]
        nodes = {e} | set(tails[heads == e].tolist()) | set(heads[chosen].tolist()) | set(tails[chosen].tolist())
        assert int(counts[row]) == (len(nodes) if typed.numel() else 0)
    distinct = offsets[valid.all(1)]
    assert all(len(set(row.tolist())) == 3 for row in distinct)      # sampled without replacement


def test_training_batch_negatives_are_strict_and_easy_edges_removed(checkpoint_root, metafam, text_options):
    train = prepare_split(metafam, "train", text=text_options)
    generator = torch.Generator().manual_seed(0)
    batch = make_batch(train.triples[:8], train.filters, train.graph.num_nodes, train.graph.num_relations, 32, generator)
    heads, tails, relations = batch.unbind(-1)
    assert torch.equal(heads[:4], heads[:4, :1].expand(-1, 33))         # first half: tail corruption
    assert torch.equal(tails[4:], tails[4:, :1].expand(-1, 33))         # second half: head corruption
    known = {tuple(t) for t in torch.stack([train.graph.edge_index[0], train.graph.edge_type,
                                            train.graph.edge_index[1]], 1).tolist()}
    for h, t, r in batch[:, 1:].reshape(-1, 3).tolist():
        assert (h, r, t) not in known
    edge_index, edge_type = remove_easy_edges(train.graph, heads, tails, relations)
    removed = train.graph.edge_index.shape[1] - edge_index.shape[1]
    assert removed == 2 * len({tuple(t) for t in train.triples[:8].tolist()})     # positives and inverses


def test_fine_tuning_is_deterministic_and_moves_only_the_fusion_when_frozen(checkpoint_root, metafam, text_options):
    train = prepare_split(metafam, "train", text=text_options)
    config = FineTuneConfig(epochs=2, batches_per_epoch=2, batch_size=4, num_negatives=8, fusion_lr=0.05, seed=7)
    runs = []
    for _ in range(2):
        model, _ = load_checkpoint(checkpoint_root / "fusion.pth")
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.use_learnable_fusion((0.5, 0.5))
        seen = []
        result = fine_tune(model, train, config, on_epoch_end=lambda epoch, m: seen.append(epoch) or epoch == 0)
        runs.append((result, model.fusion_weights().detach()))
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        assert changed == ["fusion_weights_logits"]
        assert seen == [0] and result.stopped_early and result.epochs_run == 1
        assert not model.training and all(p.requires_grad for p in model.parameters())
    assert runs[0][0].losses == runs[1][0].losses
    assert torch.equal(runs[0][1], runs[1][1])
    assert runs[0][1][0].item() != pytest.approx(0.5)       # the weights moved


def test_a_model_without_learnable_fusion_trains_its_body_as_ultra_does(checkpoint_root, metafam):
    """ULTRA's own recipe (bench/finetune_vs_official.py): no fusion, every parameter trains at body_lr."""
    train = prepare_split(metafam, "train")
    model, _ = load_checkpoint(checkpoint_root / "ultra_3g.pth")
    with pytest.raises(ValueError, match="nothing to fine-tune"):
        fine_tune(model, train, FineTuneConfig(epochs=1, batches_per_epoch=1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = FineTuneConfig(epochs=1, batches_per_epoch=1, batch_size=4, num_negatives=16, body_lr=5e-4, seed=0)
    result = fine_tune(model, train, config)
    assert result.epochs_run == 1 and result.fusion_weights == [()] and result.losses[0] > 0
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    weights = {k for k, v in model.named_parameters()}
    assert changed == weights  # AdamW's first step moves every parameter that has a gradient


def test_order_seed_trains_in_the_order_of_torchs_distributed_sampler(checkpoint_root, metafam):
    """order_seed=0: the triples come in the order ULTRA's run.py draws them (DistributedSampler, seed 0)."""
    from torch.utils.data import DistributedSampler

    train = prepare_split(metafam, "train")
    model, _ = load_checkpoint(checkpoint_root / "ultra_3g.pth")
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[1][:, 0].clone()))
    for seed in (0, 1):  # the run's seed moves the negatives, not the order
        config = FineTuneConfig(epochs=2, batches_per_epoch=1, batch_size=4, num_negatives=4, body_lr=5e-4,
                                seed=seed, order_seed=0)
        fine_tune(model, train, config)
    sampler = DistributedSampler(range(train.triples.shape[0]), num_replicas=1, rank=0)
    expected = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        expected.append(train.triples[list(sampler)[:4]])
    assert [batch.tolist() for batch in seen] == [e.tolist() for e in expected] * 2


def test_queries_sharing_anchor_and_relation_are_scored_once(checkpoint_root, data_root, cache_dir):
    """NELLInductive:v1 test has 402 queries but 208 distinct (anchor, r'): one entity pass per pair,
    and every query ranked alone (its own padded batch) gets the rank it gets among all the others."""
    prepared = prepare_split(load_dataset("NELLInductive:v1", data_root, cache_dir=cache_dir, download=False), "test")
    model, _ = load_checkpoint(checkpoint_root / "ultra_3g.pth")
    queries, graph = prepared.queries, prepared.graph
    pairs = torch.unique(torch.stack([queries.anchors, queries.query_relations]), dim=1).shape[1]
    assert pairs < len(queries)
    calls = []
    entity_scores = model.entity_scores

    def counting_entity_scores(*args, **kwargs):
        scores = entity_scores(*args, **kwargs)
        calls.append(scores.shape[0])
        return scores

    model.entity_scores = counting_entity_scores
    ranks = rank_queries(model, graph, queries, prepared.filters, batch_size=16)
    assert calls == [16] * -(-pairs // 16)  # full batches only: the last one is padded
    del model.entity_scores
    with torch.inference_mode():
        side = model.relation_side(graph, torch.unique(queries.forward_relations))
    for query in range(0, len(queries), 7):
        alone = rank_queries(model, graph, queries.subset(torch.tensor([query])), prepared.filters, side=side,
                             batch_size=16)
        assert alone.item() == ranks[query].item(), query


def test_relation_vectors_too_large_to_keep_are_projected_per_batch(checkpoint_root, data_root, cache_dir,
                                                                     monkeypatch):
    import are_model.evaluate as evaluate

    prepared = prepare_split(load_dataset("NELLInductive:v1", data_root, cache_dir=cache_dir, download=False), "test")
    model, _ = load_checkpoint(checkpoint_root / "ultra_3g.pth")
    kept = rank_queries(model, prepared.graph, prepared.queries, prepared.filters)
    monkeypatch.setattr(evaluate, "PROJECTION_CACHE_BYTES", 0)
    monkeypatch.setattr(model, "project_relations", lambda fused: pytest.fail("projected all relations at once"))
    per_batch = rank_queries(model, prepared.graph, prepared.queries, prepared.filters)
    # Same model, other product shapes: equal up to float rounding of near-tied scores.
    assert (per_batch != kept).float().mean() < 0.01
    assert evaluate.ranking_metrics(per_batch)["mrr"] == pytest.approx(evaluate.ranking_metrics(kept)["mrr"], abs=1e-3)
