"""ARE's two relation enhancers. Each returns a delta for the query relation's row only.

Shapes: Z is [B, R', d] (B query relations), q is [B] forward relation ids, deltas are [B, d] and apply
to row (β, q_β) alone; every other row of Z is unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

SIMILARITY_VARIANTS = ("mix", "delta")


class SimilarityEnhancer(nn.Module):
    """Similarity-based relation enhancer (spec §3), key prefix ``similarity_enhancer.``.

    ``variant="mix"`` (S1, ARE-V3/V5): Z'[q] = (1 − λ) z_q + λ m, returned as the delta λ (m − z_q).
    ``variant="delta"`` (S2, fusion.pth): delta m − z_q; λ is unused.
    m is a softmax/gate-weighted mean of the raw z_j of the relations j ≠ q with cos(z_q, z_j) > θ.
    The init maps are the ones that trained the checkpoints, not inverses of the effective maps.
    """

    def __init__(self, variant: str = "delta", threshold_init: float = 0.8, strength_init: float = 0.09) -> None:
        super().__init__()
        if variant not in SIMILARITY_VARIANTS:
            raise ValueError(f"similarity variant must be one of {SIMILARITY_VARIANTS}, got {variant!r}")
        self.variant = variant
        self.similarity_threshold_raw = nn.Parameter(torch.tensor(2.0 * threshold_init - 1.0))
        self.enhancement_strength_raw = nn.Parameter(torch.tensor(5.0 * strength_init - 1.0))
        self.similarity_weight_scale = nn.Parameter(torch.tensor(1.0))
        self.temperature = nn.Parameter(torch.tensor(1.0))

    @property
    def threshold(self) -> Tensor:
        return torch.sigmoid(self.similarity_threshold_raw)

    @property
    def strength(self) -> Tensor:
        return 0.2 * torch.sigmoid(self.enhancement_strength_raw)

    def forward(self, z: Tensor, query_relations: Tensor) -> Tensor:
        """z: [B, R', d]; query_relations: [B]. Returns the delta for row q: [B, d] (0 without neighbours)."""
        rows = torch.arange(z.shape[0], device=z.device)
        z_query = z[rows, query_relations]                                         # [B, d]
        unit = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        similarity = torch.einsum("brd,bd->br", unit, unit[rows, query_relations])  # [B, R']
        similarity = similarity.index_put((rows, query_relations), torch.tensor(-1.0, device=z.device))
        threshold = self.threshold
        gate = torch.sigmoid(10.0 * (similarity - threshold))
        neighbour = similarity > threshold                                        # hard selection
        has_neighbour = neighbour.any(dim=-1, keepdim=True)                        # [B, 1]
        temperature = self.temperature.clamp(0.1, 10.0)
        logits = (similarity / temperature).masked_fill(~neighbour, float("-inf"))
        # A row without neighbours would softmax to NaN; give it a harmless uniform row, masked below.
        logits = torch.where(has_neighbour, logits, torch.zeros_like(logits))
        attention = torch.softmax(logits, dim=-1) * neighbour
        raw = attention * gate * (1.0 + self.similarity_weight_scale * similarity)
        weights = raw / (raw.sum(dim=-1, keepdim=True) + 1e-8)
        mean = torch.einsum("br,brd->bd", weights, z)
        delta = (mean - z_query) * has_neighbour
        if self.variant == "mix":
            delta = self.strength * delta
        return delta


class PromptEnhancer(nn.Module):
    """Prompt-graph enhancer P1 (spec §4.3), key prefix ``prompt_enhancer.``.

    Delta for row q = CF([z_q ; c]). In evaluation c = PE(0) when relation q has at least one fact edge
    and c = 0 otherwise, so the branch is a deterministic MLP of z_q. In training c is the mean of PE over
    |𝒱| standard-normal vectors, |𝒱| being the size of the sampled prompt graph (see
    `are_model.prompt_graph`). ``adaptive_weights`` is kept for checkpoint compatibility; no checkpoint
    path uses it.
    """

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim
        self.prompt_encoder = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.adaptive_weights = nn.Sequential(nn.Linear(2 * dim, dim // 2), nn.ReLU(), nn.Linear(dim // 2, 1),
                                              nn.Sigmoid())
        self.context_fusion = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def eval_context(self, has_edges: Tensor) -> Tensor:
        """has_edges: [B] bool. Returns c: [B, d] = PE(0) where the relation has edges, else 0."""
        zero_code = self.prompt_encoder(torch.zeros(1, self.dim, device=has_edges.device))
        return zero_code * has_edges.unsqueeze(-1).to(zero_code.dtype)

    def train_context(self, node_counts: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """node_counts: [B] prompt-graph sizes |𝒱| (0 = relation without edges). Returns c: [B, d]."""
        total = int(node_counts.sum())
        batch = node_counts.numel()
        if total == 0:
            return torch.zeros(batch, self.dim, device=node_counts.device)
        noise = torch.randn(total, self.dim, device=node_counts.device, generator=generator)
        codes = self.prompt_encoder(noise)
        owner = torch.repeat_interleave(torch.arange(batch, device=node_counts.device), node_counts)
        summed = torch.zeros(batch, self.dim, device=codes.device, dtype=codes.dtype).index_add_(0, owner, codes)
        return summed / node_counts.clamp_min(1).unsqueeze(-1).to(codes.dtype)

    def forward(self, z: Tensor, query_relations: Tensor, context: Tensor) -> Tensor:
        """z: [B, R', d]; query_relations: [B]; context: [B, d]. Returns the delta for row q: [B, d]."""
        z_query = z[torch.arange(z.shape[0], device=z.device), query_relations]
        return self.context_fusion(torch.cat([z_query, context], dim=-1))


def fusion_logits_from_weights(weights: Sequence[float]) -> Tensor:
    """Initial logits [E] of the incremental fusion (spec §5.3): the log of the normalised weights.

    weights: E >= 1 non-negative fusion weights, in the model's enhancer order (dimensionless).
    Softmax ignores a shared shift, so only the ratios matter; all zeros means 1/E each. Each share is
    clamped to [1e-8, 1 − 1e-8], so no logit is infinite. Raises ValueError for no weight or a negative one.
    """
    weights = [float(w) for w in weights]
    if not weights or any(w < 0 for w in weights):
        raise ValueError(f"fusion weights must be one or more non-negative numbers, got {weights}")
    total = sum(weights)
    if total == 0:
        shares = [1.0 / len(weights)] * len(weights)
    else:
        shares = [min(max(w / total, 1e-8), 1 - 1e-8) for w in weights]
    return torch.tensor([math.log(s) for s in shares])
