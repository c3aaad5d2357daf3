"""The free fusion parametrisation: non-negative enhancer weights without the sum-to-one constraint.

The learnable fusion of ``fusion.pth`` (spec §5.3) is ω = softmax(ℓ): its weights always sum to 1, so it
cannot reach a setting such as w_sim ≈ 0, w_prompt ≈ 2.96 (the best fixed weights found on Metafam). The free
fusion learns one raw parameter ρ_e per enhancer and uses

    w_e = softplus(ρ_e) = log(1 + exp(ρ_e))      (dimensionless, > 0, no upper bound)

in Z̃ = Z + Σ_e w_e·Δ_e, exactly the fixed-weight fusion rule of spec §5.1 with learned weights.

Why softplus of one parameter per enhancer rather than the softmax times a learned scale:

* each weight moves on its own: ∂w_e/∂ρ_e = sigmoid(ρ_e) and ∂w_e/∂ρ_f = 0 for f ≠ e. Under a softmax times
  a scale, raising one weight's share lowers the others', so reaching a corner such as (0, 2.96) needs the
  shares and the scale to travel together;
* E weights are E parameters, one to one: the E initial weights a search proposes (both numbers, not a share
  and a scale) map to exactly one initial ρ (:func:`free_fusion_parameters`), and back;
* near 0 a weight's gradient fades like the weight itself (sigmoid(ρ) ≈ exp(ρ) ≈ w), so an enhancer can be
  switched almost off without the parameter diverging fast, and a large weight moves with gradient ≈ 1;
* decoupled weight decay (if any is given) pulls ρ toward 0, i.e. each weight toward log 2 ≈ 0.693.

State-dict key: :data:`FREE_FUSION_KEY` (``fusion_weights_free``), a top-level [E] float32 parameter registered
after ``fusion_weights_logits`` (so it is the second key of an are-fusion checkpoint). Its presence is what
selects the free fusion when a checkpoint is loaded (:func:`are_model.checkpoint.load_checkpoint`); the
``fusion_weights_logits`` of the original checkpoint stay in the file unchanged and unused while it is present.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["FREE_FUSION_KEY", "MIN_FREE_WEIGHT", "free_fusion_parameters", "free_fusion_weights"]

#: The state-dict key of the free fusion's raw parameters ρ [E].
FREE_FUSION_KEY = "fusion_weights_free"
#: The smallest initial weight: softplus reaches 0 only at ρ = −∞, so smaller weights start here.
MIN_FREE_WEIGHT = 1e-6


def free_fusion_weights(raw: Tensor) -> Tensor:
    """The free fusion weights [E] = softplus(raw) of the raw parameters ``raw`` [E] (differentiable)."""
    return F.softplus(raw)


def free_fusion_parameters(weights: Sequence[float]) -> Tensor:
    """Raw parameters ρ [E] (float32) with softplus(ρ) = ``weights``: ρ = log(expm1(w)), the inverse of softplus.

    weights: E >= 1 finite non-negative fusion weights (dimensionless), in the model's enhancer order; a weight
    below :data:`MIN_FREE_WEIGHT` (0 included) starts at it. Raises ValueError for no weight, or for a negative,
    NaN or infinite one.
    """
    values = [float(w) for w in weights]
    if not values or any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"free fusion weights must be one or more finite non-negative numbers, got {values}")
    # log(expm1(w)) = w + log(1 − exp(−w)): the second form keeps large weights exact
    return torch.tensor([w + math.log(-math.expm1(-w)) for w in (max(w, MIN_FREE_WEIGHT) for w in values)],
                        dtype=torch.float32)
