"""The free fusion (are_model.fusion, ``AREModel.use_free_fusion``) on real data and real checkpoints.

* the softmax fusion computes what it computed before the free fusion existed (``tests/softmax_reference.py``:
  numbers recorded on commit 3e8c783): its learned logits bit for bit, its scores and losses to float32
  precision (the CPU inference kernels changed their order of summation since);
* on Metafam, where the best fixed weights lie off the simplex (w_sim ~ 0, w_prompt ~ 2.96), two fine-tuning
  steps of the free fusion from fusion.pth's own 0.225 / 0.775 move w_sim + w_prompt away from 1, while the
  softmax fusion's stay at 1; the tuned model's checkpoint loads back strictly and scores the same;
* the free fusion's forward is the fixed-weight rule of spec §5.1 with its weights.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from are_model.checkpoint import CheckpointError, load_checkpoint, read_state_dict, save_checkpoint
from are_model.data import load_dataset
from are_model.fusion import FREE_FUSION_KEY, MIN_FREE_WEIGHT, free_fusion_parameters, free_fusion_weights
from are_model.model import prepare_graph
from are_model.pipeline import TextOptions, prepare_split
from are_model.train import FineTuneConfig, fine_tune, make_batch
from softmax_reference import BODY_KEYS, load, measure

#: Two frozen-body steps of 4 triples: Adam moves each raw parameter by about the learning rate per step.
SHORT = FineTuneConfig(epochs=1, batches_per_epoch=2, batch_size=4, num_negatives=8, fusion_lr=0.3, seed=1)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load()


@pytest.fixture(scope="module")
def metafam_train(data_root, text_root, cache_dir, reference):
    """Metafam's training split with the recorded MiniLM relation vectors (the encoder plays no part)."""
    dataset = load_dataset("Metafam", data_root, cache_dir=cache_dir, download=False)
    train = prepare_split(dataset, "train", text=TextOptions(root=str(text_root), encoder="minilm",
                                                              cache_dir=str(cache_dir), download=False))
    graph = train.graph
    return dataclasses.replace(train, graph=prepare_graph(graph.edge_index, graph.edge_type, graph.num_nodes,
                                                          graph.num_relations, reference["text_vectors"]))


def test_softmax_fusion_is_bit_for_bit_what_it_was(reference, checkpoint_root, data_root, text_root, cache_dir):
    now = measure(checkpoint_root / "fusion.pth", data_root, text_root, cache_dir, reference["text_vectors"])
    assert set(now) == set(reference)
    # the learned fusion logits of both fine-tunes are the same floats
    for key in ("frozen_logits", "body_logits"):
        assert torch.equal(now[key], reference[key]), key
    # the eval forward (and the frozen-body run's relation side, computed without gradients) goes through the CPU
    # inference kernels, which since 687e667 sum in float32 in a vectorised order (are_model/kernels.py): the same
    # to float32 precision (measured: scores 2.4e-6 apart at |score| <= 7.6, losses 3e-8), not bit for bit
    assert torch.allclose(now["scores"], reference["scores"], rtol=1e-6, atol=1e-5), "scores"
    assert torch.allclose(now["frozen_losses"], reference["frozen_losses"], rtol=0, atol=1e-6), "frozen_losses"
    # training the body runs a backward through the message passing whose sums are not reproducible bit for
    # bit across processes, on the old code too (measured: 1e-8 apart): the same to float32 precision
    assert torch.allclose(now["body_losses"], reference["body_losses"], rtol=0, atol=1e-6)
    for key in BODY_KEYS:
        assert torch.allclose(now[f"body.{key}"], reference[f"body.{key}"], rtol=0, atol=1e-6), key
    assert not torch.equal(reference["frozen_logits"], reference["body_logits"])  # the two runs differ


def test_free_parameters_invert_softplus():
    for weights in ((0.22501547634601593, 0.7749845385551453), (0.0, 2.96), (5.0, 40.0)):
        raw = free_fusion_parameters(weights)
        assert raw.dtype == torch.float32 and raw.shape == (2,)
        back = free_fusion_weights(raw).tolist()
        assert back == pytest.approx([max(w, MIN_FREE_WEIGHT) for w in weights], rel=1e-5, abs=1e-9)
    for bad in ((-0.1, 1.0), (math.nan, 1.0), (math.inf, 0.0), ()):
        with pytest.raises(ValueError, match="free fusion weights must be one or more finite non-negative"):
            free_fusion_parameters(bad)


def test_free_fine_tune_leaves_the_simplex_and_round_trips_strictly(checkpoint_root, metafam_train, tmp_path):
    fusion = checkpoint_root / "fusion.pth"
    original = read_state_dict(fusion)
    model, _ = load_checkpoint(fusion)
    assert not model.free_fusion and model.fusion_kind == "softmax"
    model.use_free_fusion()  # from the checkpoint's own learned weights
    assert model.fusion_kind == "free"
    start = model.fusion_weights().detach()
    assert start.tolist() == pytest.approx(torch.softmax(original["fusion_weights_logits"], 0).tolist(), abs=1e-6)
    result = fine_tune(model, metafam_train, SHORT)
    learned = model.fusion_weights().detach()
    assert result.epochs_run == 1 and (learned >= 0).all()
    assert abs(float(learned.sum()) - 1.0) > 0.05, learned        # off the simplex after two steps
    assert torch.equal(model.fusion_weights_logits.detach(), original["fusion_weights_logits"])  # unused, unchanged

    # the softmax fusion, same start and steps, stays on it
    softmax, _ = load_checkpoint(fusion)
    fine_tune(softmax, metafam_train, SHORT)
    assert float(softmax.fusion_weights().detach().sum()) == pytest.approx(1.0, abs=1e-6)

    # the checkpoint: the published keys plus fusion_weights_free, second; loads back strictly as free fusion
    save_checkpoint(model, tmp_path / "free.pth")
    saved = read_state_dict(tmp_path / "free.pth")
    assert list(saved) == [next(iter(original)), FREE_FUSION_KEY, *list(original)[1:]]
    loaded, info = load_checkpoint(tmp_path / "free.pth")
    assert info.profile == "are-fusion" and info.num_keys == len(original) + 1 and loaded.fusion_kind == "free"
    assert torch.equal(loaded.fusion_weights().detach(), learned)
    assert loaded.checkpoint_fusion_weights() == tuple(float(w) for w in learned)
    generator = torch.Generator().manual_seed(5)
    batch = make_batch(metafam_train.triples[:3], metafam_train.filters, metafam_train.graph.num_nodes,
                       metafam_train.graph.num_relations, 6, generator)
    with torch.no_grad():
        tuned_scores = model(metafam_train.graph, batch)
        assert torch.equal(loaded(metafam_train.graph, batch), tuned_scores)
        # the free forward is the fixed rule of spec §5.1 with the learned weights
        loaded.use_fixed_fusion(learned.tolist())
        assert torch.equal(loaded(metafam_train.graph, batch), tuned_scores)
        # and the published checkpoint still loads as it is, with its softmax fusion
        plain, _ = load_checkpoint(fusion)
        assert plain.fusion_kind == "softmax" and FREE_FUSION_KEY not in plain.state_dict()
        assert not torch.equal(plain(metafam_train.graph, batch), tuned_scores)

    # back to the softmax fusion: the free tensor goes, so a saved checkpoint is the published layout again
    loaded.use_learnable_fusion()
    assert loaded.fusion_kind == "softmax" and list(loaded.state_dict()) == list(original)


def test_a_free_checkpoint_with_a_bad_extra_tensor_is_one_line(checkpoint_root, tmp_path):
    state = dict(read_state_dict(checkpoint_root / "fusion.pth"))
    state[FREE_FUSION_KEY] = torch.zeros(3)
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "bad.pth")
    message = str(error.value)
    assert "\n" not in message and "bad.pth" in message and f"{FREE_FUSION_KEY} (3,) != (2,)" in message
