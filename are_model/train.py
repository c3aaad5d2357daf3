"""Fine-tuning (spec §6): strict negatives, self-adversarial BCE, easy-edge removal, AdamW groups.

The fusion in force (the softmax logits, or the free fusion's softplus parameters, see
:mod:`are_model.fusion`) gets its own parameter group (learning rate, weight decay 0 by default); the rest of
the model (the "body") is either frozen or trained with its own learning rate.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm.auto import tqdm

from .evaluate import FilterIndex
from .fusion import FREE_FUSION_KEY
from .model import AREModel
from .pipeline import PreparedSplit

log = logging.getLogger(__name__)

#: The top-level fusion tensors, never part of the body's parameter group.
_FUSION_TENSORS = ("fusion_weights_logits", FREE_FUSION_KEY)


@dataclass(frozen=True)
class FineTuneConfig:
    """How to fine-tune. body_lr None freezes everything but the learnable fusion's parameters.

    ULTRA's official inductive recipe (``config/inductive/inference.yaml`` of DeepGraphLearning/ULTRA: AdamW lr
    5e-4 on every parameter, weight decay 0.01 by AdamW's default, batch 16, 256 strict negatives, adversarial
    temperature 1) is ``FineTuneConfig(batch_size=16, num_negatives=256, body_lr=5e-4, body_weight_decay=0.01,
    adversarial_temperature=1.0)`` on a model without learnable fusion (see bench/finetune_vs_official.py).

    The order of the training triples: each epoch a permutation drawn from the run's generator (seeded by
    ``seed``, which also draws the negatives); with ``order_seed`` set, epoch e's permutation is instead
    ``torch.randperm(n, generator=torch.Generator().manual_seed(order_seed + e))``, the order torch's
    ``DistributedSampler(shuffle=True, seed=order_seed)`` gives on one process -- ULTRA's ``run.py`` trains in
    that order with ``order_seed`` 0 whatever its ``--seed`` -- so a run can see the triples in the order an
    official run does, its ``seed`` moving only the negatives."""

    epochs: int = 1
    batches_per_epoch: int | None = None  # None: one pass over the training triples
    batch_size: int = 16
    num_negatives: int = 64
    fusion_lr: float = 5e-3
    fusion_weight_decay: float = 0.0
    body_lr: float | None = None
    body_weight_decay: float = 0.01
    adversarial_temperature: float = 1.0
    seed: int = 0
    order_seed: int | None = None  # None: shuffle with the run's generator (seed); else see the class doc

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"FineTuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.fusion_lr <= 0 or (self.body_lr is not None and self.body_lr <= 0):
            raise ValueError(f"learning rates must be positive, got fusion_lr={self.fusion_lr}, body_lr={self.body_lr}")


@dataclass
class FineTuneResult:
    epochs_run: int
    losses: list[float] = field(default_factory=list)                      # mean loss per epoch
    fusion_weights: list[tuple[float, ...]] = field(default_factory=list)  # [E] after each epoch
    stopped_early: bool = False


def strict_negatives(filters: FilterIndex, anchors: Tensor, query_relations: Tensor, answers: Tensor,
                     num_nodes: int, num_negatives: int, generator: torch.Generator) -> Tensor:
    """[B, n] entities drawn uniformly with replacement among those not known true for (anchor, r', ?).

    anchors, query_relations, answers: [B] in tail form (head corruption uses r + R, spec §6.2).
    """
    allowed = torch.ones(anchors.numel(), num_nodes, dtype=torch.bool, device=anchors.device)
    rows, entities = filters.true_answers(anchors, query_relations)
    allowed[rows, entities] = False
    allowed[torch.arange(anchors.numel(), device=anchors.device), answers] = False
    empty = ~allowed.any(dim=1)
    allowed[empty] = True  # a query whose every entity is true: any entity (never happens on real data)
    return torch.multinomial(allowed.float(), num_negatives, replacement=True, generator=generator)


def make_batch(triples: Tensor, filters: FilterIndex, num_nodes: int, num_relations: int, num_negatives: int,
               generator: torch.Generator) -> Tensor:
    """[B, 1+n, 3] of (h, t, r): the first ⌊B/2⌋ rows corrupt tails, the rest heads; column 0 positive.

    triples: [B, 3] as (h, t, r).
    """
    heads, tails, relations = triples.unbind(1)
    batch = heads.numel()
    half = batch // 2
    head_mode = torch.arange(batch, device=heads.device) >= half
    anchors = torch.where(head_mode, tails, heads)
    answers = torch.where(head_mode, heads, tails)
    query_relations = torch.where(head_mode, relations + num_relations // 2, relations)
    negatives = strict_negatives(filters, anchors, query_relations, answers, num_nodes, num_negatives, generator)
    candidates = torch.cat([answers.unsqueeze(1), negatives], dim=1)                      # [B, 1+n]
    fixed = anchors.unsqueeze(1).expand_as(candidates)
    batch_heads = torch.where(head_mode.unsqueeze(1), candidates, fixed)
    batch_tails = torch.where(head_mode.unsqueeze(1), fixed, candidates)
    return torch.stack([batch_heads, batch_tails, relations.unsqueeze(1).expand_as(candidates)], dim=-1)


def adversarial_loss(scores: Tensor, temperature: float) -> Tensor:
    """Self-adversarial BCE (spec §6.3): scores [B, 1+n] logits, column 0 positive. Returns a scalar."""
    target = torch.zeros_like(scores)
    target[:, 0] = 1.0
    losses = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    with torch.no_grad():
        negative_weights = (torch.softmax(scores[:, 1:] / temperature, dim=1) if temperature > 0
                            else torch.full_like(scores[:, 1:], 1.0 / (scores.shape[1] - 1)))
        weights = torch.cat([torch.ones_like(scores[:, :1]), negative_weights], dim=1)
    return ((losses * weights).sum(dim=1) / weights.sum(dim=1)).mean()


def _parameter_groups(model: AREModel, config: FineTuneConfig) -> list[dict]:
    """AdamW groups: the fusion in force (softmax logits or free parameters) when learnable, then the body if it
    trains (``config.body_lr``).

    The body is every parameter but the fusion tensors (`fusion_weights_logits`, and `fusion_weights_free`
    when present): a free fusion does not use the logits, so they stay out of both groups. A model without
    learnable fusion (ULTRA, SEMMA, or ARE with fixed weights) trains its body alone, as ULTRA's own
    fine-tuning does. Raises ValueError when nothing would train (no learnable fusion and no ``body_lr``)."""
    if not model.learnable_fusion and config.body_lr is None:
        raise ValueError("nothing to fine-tune: call model.use_learnable_fusion(...) or model.use_free_fusion(...) "
                         "first, or give FineTuneConfig.body_lr to train the body")
    fusion = dict(model.named_parameters())
    body = [p for name, p in model.named_parameters() if name not in _FUSION_TENSORS]
    groups = []
    if model.learnable_fusion:
        groups.append({"params": [fusion[name] for name in model.fusion_parameter_names()], "lr": config.fusion_lr,
                       "weight_decay": config.fusion_weight_decay, "name": "fusion"})
    if config.body_lr is not None:
        groups.append({"params": body, "lr": config.body_lr, "weight_decay": config.body_weight_decay, "name": "body"})
    return groups


def fine_tune(model: AREModel, train: PreparedSplit, config: FineTuneConfig, *,
              on_epoch_end: Callable[[int, AREModel], bool | None] | None = None,
              progress: bool = False) -> FineTuneResult:
    """Fine-tune `model` in place on the training split's triples and graph.

    on_epoch_end(epoch, model) runs after each epoch with the model in eval mode (e.g. to validate and
    report to a pruner); returning True stops training. The model is left in eval mode with the body's
    requires_grad flags as they were. Deterministic on the CPU for a given seed.
    """
    generator = torch.Generator(device=train.device).manual_seed(config.seed)
    groups = _parameter_groups(model, config)
    frozen = config.body_lr is None
    saved_flags = {name: p.requires_grad for name, p in model.named_parameters()}
    if frozen:
        trained = model.fusion_parameter_names()
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in trained)
    optimizer = torch.optim.AdamW(groups)
    graph, triples = train.graph, train.triples
    batches = config.batches_per_epoch or -(-triples.shape[0] // config.batch_size)
    result = FineTuneResult(epochs_run=0)
    try:
        for epoch in range(config.epochs):
            model.train()
            if config.order_seed is None:
                order = torch.randperm(triples.shape[0], generator=generator, device=triples.device)
            else:
                order = torch.randperm(triples.shape[0],
                                       generator=torch.Generator().manual_seed(config.order_seed + epoch))
                order = order.to(triples.device)
            steps = range(batches)
            if progress:
                steps = tqdm(steps, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False)
            total = 0.0
            for step in steps:
                index = order[(step * config.batch_size + torch.arange(config.batch_size, device=order.device))
                              % triples.shape[0]]
                batch = make_batch(triples[index], train.filters, graph.num_nodes, graph.num_relations,
                                   config.num_negatives, generator)
                scores = model(graph, batch, generator)
                loss = adversarial_loss(scores, config.adversarial_temperature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            model.eval()
            result.epochs_run = epoch + 1
            result.losses.append(total / batches)
            result.fusion_weights.append(tuple(float(w) for w in model.fusion_weights().detach())
                                         if model.has_enhancers else ())
            log.info("epoch %d: loss %.4f%s", epoch + 1, result.losses[-1],
                     ", fusion weights " + " / ".join(f"{w:.4f}" for w in result.fusion_weights[-1])
                     if result.fusion_weights[-1] else "")
            if on_epoch_end is not None and on_epoch_end(epoch, model):
                result.stopped_early = True
                break
    finally:
        model.eval()
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(saved_flags.get(name, True))
    return result
