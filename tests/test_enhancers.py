"""The enhancers' and the fusion's formulas on small tensors, against direct transcriptions of spec §3–5."""
from __future__ import annotations

import math

import pytest
import torch

from are_model.enhancers import PromptEnhancer, SimilarityEnhancer, fusion_logits_from_weights
from are_model.model import ENHANCERS, AREModel, RelationSide


def _spec_similarity_delta(z, q, theta, tau, kappa):
    """Spec §3.2/§3.4 for one row, written out literally: returns m - z_q, or 0 without neighbours."""
    unit = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    s = unit @ unit[q]
    s[q] = -1.0
    gate = torch.sigmoid(10 * (s - theta))
    neighbours = [j for j in range(z.shape[0]) if s[j] > theta]
    if not neighbours:
        return torch.zeros_like(z[q])
    alpha = torch.softmax(torch.stack([s[j] / tau for j in neighbours]), 0)
    raw = torch.stack([alpha[i] * gate[j] * (1 + kappa * s[j]) for i, j in enumerate(neighbours)])
    weights = raw / (raw.sum() + 1e-8)
    mean = sum(w * z[j] for w, j in zip(weights, neighbours))
    return mean - z[q]


@pytest.fixture
def relation_reprs():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(3, 10, 8, generator=generator)
    base[:, 4] = base[:, 1] + 0.05 * torch.randn(3, 8, generator=generator)   # a close neighbour of relation 1
    base[:, 7] = base[:, 1] * 2.0                                               # same direction, larger norm
    return base


@pytest.mark.parametrize("variant", ["delta", "mix"])
def test_similarity_enhancer_matches_the_spec(relation_reprs, variant):
    enhancer = SimilarityEnhancer(variant, threshold_init=0.8, strength_init=0.05)
    with torch.no_grad():
        enhancer.temperature.fill_(0.5)
        enhancer.similarity_weight_scale.fill_(0.7)
    queries = torch.tensor([1, 4, 2])
    delta = enhancer(relation_reprs, queries)
    theta, lam = enhancer.threshold.item(), enhancer.strength.item()
    assert theta == pytest.approx(1 / (1 + math.exp(-0.6)))   # init map: θ0 = σ(2·0.8 − 1)
    assert lam == pytest.approx(0.2 / (1 + math.exp(0.75)))   # λ0 = 0.2·σ(5·0.05 − 1)
    for row, q in enumerate(queries.tolist()):
        expected = _spec_similarity_delta(relation_reprs[row], q, theta, 0.5, 0.7)
        if variant == "mix":
            expected = lam * expected          # (1-λ) z_q + λ m  ==  z_q + λ (m - z_q)
        torch.testing.assert_close(delta[row], expected, rtol=1e-5, atol=1e-6)
    assert delta[0].abs().sum() > 0


def test_similarity_enhancer_row_without_neighbours_is_zero_not_nan():
    z = torch.eye(6).unsqueeze(0)              # orthogonal relations: no neighbour above θ
    delta = SimilarityEnhancer("delta")(z, torch.tensor([2]))
    assert torch.equal(delta, torch.zeros(1, 6))


def test_prompt_enhancer_eval_context_and_delta():
    torch.manual_seed(0)
    prompt = PromptEnhancer(dim=8)
    z = torch.randn(2, 5, 8)
    has_edges = torch.tensor([True, False])
    context = prompt.eval_context(has_edges)
    pe = prompt.prompt_encoder
    expected_code = pe[2].weight @ torch.relu(pe[0].bias) + pe[2].bias   # PE(0) = W2 ReLU(b1) + b2
    torch.testing.assert_close(context[0], expected_code)
    assert torch.equal(context[1], torch.zeros(8))
    delta = prompt(z, torch.tensor([3, 0]), context)
    cf = prompt.context_fusion
    expected = cf(torch.cat([z[0, 3], expected_code]))
    torch.testing.assert_close(delta[0], expected)          # raw CF output, not CF - z_q (spec §4.3)


def test_prompt_train_context_averages_one_code_per_prompt_node():
    prompt = PromptEnhancer(dim=4)
    counts = torch.tensor([3, 0, 1])
    context = prompt.train_context(counts, torch.Generator().manual_seed(0))
    noise = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    codes = prompt.prompt_encoder(noise)
    torch.testing.assert_close(context[0], codes[:3].mean(0))
    torch.testing.assert_close(context[2], codes[3])
    assert torch.equal(context[1], torch.zeros(4))


def test_fusion_logits_initialised_from_weights():
    torch.testing.assert_close(fusion_logits_from_weights((0.2, 0.8)), torch.tensor([math.log(0.2), math.log(0.8)]))
    torch.testing.assert_close(torch.softmax(fusion_logits_from_weights((3.0, 1.0)), 0), torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(torch.softmax(fusion_logits_from_weights((0.0, 0.0)), 0), torch.tensor([0.5, 0.5]))
    assert torch.isfinite(fusion_logits_from_weights((0.0, 1.0))).all()      # clamped at 1e-8, no -inf
    with pytest.raises(ValueError, match="non-negative"):
        fusion_logits_from_weights((-0.1, 1.0))
    # E weights give E logits: the vector form is not tied to two enhancers
    torch.testing.assert_close(torch.softmax(fusion_logits_from_weights((1.0, 1.0, 2.0)), 0),
                               torch.tensor([0.25, 0.25, 0.5]))


def test_fuse_changes_only_the_query_row():
    model = AREModel("are-fusion")
    model.use_learnable_fusion((0.2, 0.8))
    z = torch.randn(2, 6, 64)
    deltas = torch.stack([torch.ones(2, 64), 2 * torch.ones(2, 64)], dim=1)   # [U, E, d]: Δsim, Δprompt
    side = RelationSide(torch.tensor([1, 4]), z, deltas)
    fused = model.fuse(side)
    expected = z.clone()
    expected[0, 1] += 0.2 + 1.6
    expected[1, 4] += 0.2 + 1.6
    torch.testing.assert_close(fused, expected)
    model.use_fixed_fusion((1.0, 0.5))                           # not normalised (spec §5.1)
    expected = z.clone()
    expected[0, 1] += 2.0
    expected[1, 4] += 2.0
    torch.testing.assert_close(model.fuse(side), expected)


def test_fusion_weights_are_named_by_the_model_enhancers():
    model = AREModel("are-fusion")
    assert model.enhancer_names == ENHANCERS == ("similarity", "prompt")
    assert model.fusion_weights().shape == (len(ENHANCERS),)
    assert AREModel("are-mix").checkpoint_fusion_weights() == (1.0, 0.0)        # the similarity enhancer alone
    assert AREModel("ultra").enhancer_names == ()
    with pytest.raises(ValueError, match="expected 2 fusion weights"):
        model.use_fixed_fusion((0.2, 0.8, 0.0))


def test_search_fusion_terms_match_the_model_enhancers():
    """search's fusion-term table names the model's enhancers, in the model's order."""
    from search.errors import StudyError
    from search.study import fusion_terms

    assert fusion_terms.ENHANCERS == ENHANCERS
    fusion_terms.check_enhancers(AREModel("are-fusion").enhancer_names, "here")
    with pytest.raises(StudyError, match="not the fusion terms"):
        fusion_terms.check_enhancers(("prompt", "similarity"), "here")


def test_fusion_needs_an_enhanced_profile():
    with pytest.raises(ValueError, match="needs an ARE checkpoint"):
        AREModel("semma").use_fixed_fusion((0.2, 0.8))
