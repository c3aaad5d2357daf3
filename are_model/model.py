"""The composed model: ULTRA, SEMMA, ARE-mix and ARE-fusion as one module with a profile.

The forward pass is split at the point the fusion search cares about:

* `AREModel.relation_side` — everything before the entity model. For each query relation it returns
  Z (the combiner output, [U, R', d]) and one delta for row q per enhancer ([U, E, d], in the order of
  `ENHANCERS`: Δsim, Δprompt). It does not depend on the fusion weights, so a search computes it once
  and caches it.
* `AREModel.fuse` — Z̃ = Z + Σ_e w_e·Δ_e on row q only (w_sim·Δsim + w_prompt·Δprompt), weights [E].
* `AREModel.entity_scores` — the entity NBFNet on Z̃ (the expensive part).

Fusion weights are vectors [E] (K settings: [K, E]) indexed by `ENHANCERS`; `AREModel.enhancer_names`
says which an instance has. Adding an enhancer: its module, its name in `ENHANCERS`, its delta in
`AREModel._enhancer_deltas` and its initial learnable weight in `DEFAULT_FUSION`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .enhancers import PromptEnhancer, SimilarityEnhancer, fusion_logits_from_weights
from .fusion import FREE_FUSION_KEY, free_fusion_parameters, free_fusion_weights
from .graphs import RelationGraph, build_relation_graph, build_text_graph
from .layers import MessagePlan, Workspace
from .prompt_graph import PromptGraphSizer
from .semma import Combiner, SemanticRelationNBFNet
from .ultra import EntityNBFNet, RelationNBFNet

PROFILES = ("ultra", "semma", "are-mix", "are-fusion")
ENHANCED_PROFILES = ("are-mix", "are-fusion")
#: The enhancers of an ARE model, in the order of every fusion-weight vector [E] and delta stack [U, E, d].
ENHANCERS: tuple[str, ...] = ("similarity", "prompt")
#: The weights a new learnable fusion starts from (softmax shares, spec §5.3), one per enhancer.
DEFAULT_FUSION: tuple[float, ...] = (0.2, 0.8)
#: The fixed fusion of are-mix checkpoints (ARE-V3/V5): the similarity enhancer alone.
MIX_FUSION: tuple[float, ...] = tuple(1.0 if name == "similarity" else 0.0 for name in ENHANCERS)


@dataclass
class GraphContext:
    """One split's fact graph with everything the model derives from it, on one device.

    edge_index: [2, E] with inverse edges; edge_type: [E]; relation_graph: G_r (4 edge types);
    text_graph / text_embeddings: G_r^TEXT and E [R', d] (None for ULTRA); relation_edge_count: [R'].
    """

    edge_index: Tensor
    edge_type: Tensor
    num_nodes: int
    num_relations: int
    relation_graph: RelationGraph
    relation_edge_count: Tensor
    text_graph: RelationGraph | None = None
    text_embeddings: Tensor | None = None
    _prompt_sizer: PromptGraphSizer | None = field(default=None, repr=False)
    _plan: MessagePlan | None = field(default=None, repr=False)

    @property
    def plan(self) -> MessagePlan:
        """The fact graph's message-passing plan, built on first use."""
        if self._plan is None:
            self._plan = MessagePlan.build(self.edge_index, self.edge_type, self.num_nodes)
        return self._plan

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    @property
    def prompt_sizer(self) -> PromptGraphSizer:
        if self._prompt_sizer is None:
            self._prompt_sizer = PromptGraphSizer(self.edge_index, self.edge_type, self.num_nodes, self.num_relations)
        return self._prompt_sizer

    def to(self, device: torch.device | str) -> "GraphContext":
        return GraphContext(
            self.edge_index.to(device), self.edge_type.to(device), self.num_nodes, self.num_relations,
            self.relation_graph.to(device), self.relation_edge_count.to(device),
            None if self.text_graph is None else self.text_graph.to(device),
            None if self.text_embeddings is None else self.text_embeddings.to(device),
            None, None if self._plan is None else self._plan.to(device),
        )


def prepare_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int,
                  text_embeddings: Tensor | None = None, text_threshold: float = 0.8) -> GraphContext:
    """Build G_r (and G_r^TEXT from text_embeddings [R', d], if given) for one fact graph."""
    if text_embeddings is not None and text_embeddings.shape[0] != num_relations:
        raise ValueError(f"text embeddings have {text_embeddings.shape[0]} rows but the graph has "
                         f"{num_relations} relations (with inverses)")
    relation_graph = build_relation_graph(edge_index, edge_type, num_relations)
    text_graph = None if text_embeddings is None else build_text_graph(text_embeddings.float(), text_threshold)
    counts = torch.bincount(edge_type, minlength=num_relations)
    return GraphContext(edge_index, edge_type, num_nodes, num_relations, relation_graph, counts, text_graph,
                        None if text_embeddings is None else text_embeddings.float())


@dataclass
class RelationSide:
    """What the fusion combines, per query relation: relations [U], z [U, R', d] and deltas [U, E, d]
    (deltas[:, e] is enhancer ``ENHANCERS[e]``'s delta for row q; E = 0 for a model without enhancers)."""

    relations: Tensor
    z: Tensor
    deltas: Tensor

    def to(self, device: torch.device | str) -> "RelationSide":
        return RelationSide(*(t.to(device) for t in (self.relations, self.z, self.deltas)))

    def select(self, index: Tensor) -> "RelationSide":
        return RelationSide(self.relations[index], self.z[index], self.deltas[index])


class AREModel(nn.Module):
    """ULTRA / SEMMA / ARE with the checkpoint key layout of spec §10.

    profile: "ultra" | "semma" | "are-mix" (S1 similarity enhancer, prompt enhancer built but unused by
    the checkpoint) | "are-fusion" (S2 + P1 + learnable fusion over the E enhancers, `fusion_weights_logits`
    [E] first). The checkpoint's own fusion is the default: learned softmax(logits) for are-fusion,
    `MIX_FUSION` (similarity alone) for are-mix.

    The fusion in force is one of three (``fusion_kind``): ``fixed`` (`use_fixed_fusion`, spec §5.1),
    ``softmax`` (`use_learnable_fusion`, spec §5.3: w = softmax(`fusion_weights_logits`), summing to 1) or
    ``free`` (`use_free_fusion`, :mod:`are_model.fusion`: w = softplus(`fusion_weights_free`), non-negative
    without the sum-to-one constraint). A model holds the extra top-level parameter `fusion_weights_free` [E]
    exactly when it uses, or last used, the free fusion; it is saved with the state dict right after
    `fusion_weights_logits` and makes `load_checkpoint` build the free fusion again (strict key match).
    """

    def __init__(self, profile: str, dim: int = 64, num_layers: int = 6) -> None:
        super().__init__()
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
        self.profile = profile
        self.dim = dim
        if profile == "are-fusion":
            self.fusion_weights_logits = nn.Parameter(fusion_logits_from_weights(DEFAULT_FUSION))
        self.relation_model = RelationNBFNet(dim, num_layers)
        self.entity_model = EntityNBFNet(dim, num_layers)
        if profile != "ultra":
            self.semantic_model = SemanticRelationNBFNet(dim, num_layers)
            self.combiner = Combiner(dim)
        if profile in ENHANCED_PROFILES:
            self.prompt_enhancer = PromptEnhancer(dim)
            variant = "delta" if profile == "are-fusion" else "mix"
            self.similarity_enhancer = SimilarityEnhancer(variant, 0.8, 0.09 if variant == "delta" else 0.05)
        self._fixed_weights: tuple[float, ...] | None = None if profile == "are-fusion" else (
            MIX_FUSION if profile == "are-mix" else ())

    # ----------------------------------------------------------------------------------------- fusion
    @property
    def has_enhancers(self) -> bool:
        return self.profile in ENHANCED_PROFILES

    @property
    def enhancer_names(self) -> tuple[str, ...]:
        """The names of this model's enhancers, in the order of its fusion weights [E] (() for ULTRA/SEMMA)."""
        return ENHANCERS if self.has_enhancers else ()

    @property
    def learnable_fusion(self) -> bool:
        """True when the fusion weights are learned (softmax or free), False with fixed weights."""
        return self._fixed_weights is None

    @property
    def free_fusion(self) -> bool:
        """True when the model holds the free fusion's `fusion_weights_free` (see `use_free_fusion`)."""
        return FREE_FUSION_KEY in self._parameters

    @property
    def fusion_kind(self) -> str:
        """The fusion in force: ``fixed``, ``softmax`` or ``free``."""
        if not self.learnable_fusion:
            return "fixed"
        return "free" if self.free_fusion else "softmax"

    def fusion_parameter_names(self) -> tuple[str, ...]:
        """The names of the parameters the learnable fusion in force trains (() with fixed weights)."""
        kind = self.fusion_kind
        return () if kind == "fixed" else ((FREE_FUSION_KEY,) if kind == "free" else ("fusion_weights_logits",))

    def checkpoint_fusion_weights(self) -> tuple[float, ...]:
        """The E weights the loaded checkpoint itself applies (what `fusion_weights` gives by default):
        softplus(`fusion_weights_free`) when it holds them, softmax(logits) for are-fusion, `MIX_FUSION` for
        are-mix; E zeros for ULTRA/SEMMA."""
        if self.free_fusion:
            return tuple(float(w) for w in free_fusion_weights(getattr(self, FREE_FUSION_KEY).detach()))
        if self.profile == "are-fusion":
            return tuple(float(w) for w in torch.softmax(self.fusion_weights_logits.detach(), 0))
        return MIX_FUSION if self.profile == "are-mix" else (0.0,) * len(ENHANCERS)

    def use_fixed_fusion(self, weights: Sequence[float]) -> None:
        """Z̃ = Z + Σ_e weights[e]·Δ_e (weights [E] in `enhancer_names` order, not normalised, spec §5.1).

        Raises ValueError without enhancers or for a number of weights other than E.
        """
        self._require_enhancers("fixed fusion")
        self._fixed_weights = tuple(float(w) for w in self._check_weights(weights))

    def use_learnable_fusion(self, weights: Sequence[float] | None = None) -> None:
        """Learnable E-logit incremental fusion (spec §5.3), initialised from ``weights`` [E] when given.

        Without weights an are-fusion model keeps its trained logits; other ARE profiles get a new
        `fusion_weights_logits` parameter starting at `DEFAULT_FUSION` (0.2 / 0.8). A free fusion's
        `fusion_weights_free` is removed. Raises ValueError without enhancers, for a number of weights other
        than E or for a negative weight.
        """
        self._require_enhancers("learnable fusion")
        if self.free_fusion:
            delattr(self, FREE_FUSION_KEY)
        if weights is None and hasattr(self, "fusion_weights_logits"):
            self._fixed_weights = None
            return
        logits = fusion_logits_from_weights(DEFAULT_FUSION if weights is None else self._check_weights(weights))
        if hasattr(self, "fusion_weights_logits"):
            with torch.no_grad():
                self.fusion_weights_logits.copy_(logits)
        else:
            self.fusion_weights_logits = nn.Parameter(logits.to(self.relation_model.layers[0].linear.weight.device))
        self._fixed_weights = None

    def use_free_fusion(self, weights: Sequence[float] | None = None) -> None:
        """Learnable non-negative weights without the sum-to-one constraint: w = softplus(`fusion_weights_free`).

        weights: the E initial weights (dimensionless, >= 0; :func:`are_model.fusion.free_fusion_parameters`);
        None starts from the weights the model applies now (`checkpoint_fusion_weights`: the checkpoint's own
        learned softmax weights for fusion.pth). Adds the top-level parameter `fusion_weights_free` [E] (on the
        model's device) or overwrites it; `fusion_weights_logits` is left as it is. Raises ValueError without
        enhancers, for a number of weights other than E, or for a negative or non-finite weight.
        """
        self._require_enhancers("free fusion")
        start = self.checkpoint_fusion_weights() if weights is None else self._check_weights(weights)
        raw = free_fusion_parameters(start)
        if self.free_fusion:
            with torch.no_grad():
                getattr(self, FREE_FUSION_KEY).copy_(raw)
        else:
            self.register_parameter(FREE_FUSION_KEY,
                                    nn.Parameter(raw.to(self.relation_model.layers[0].linear.weight.device)))
        self._fixed_weights = None

    def fusion_weights(self) -> Tensor:
        """[E] the weights in force (w_sim, w_prompt): softmax(logits) or softplus(free parameters) when
        learnable, else the fixed ones."""
        if self._fixed_weights is None:
            if self.free_fusion:
                return free_fusion_weights(getattr(self, FREE_FUSION_KEY))
            return torch.softmax(self.fusion_weights_logits, dim=0)
        return torch.tensor(self._fixed_weights, device=self.relation_model.layers[0].linear.weight.device)

    def _require_enhancers(self, what: str) -> None:
        if not self.has_enhancers:
            raise ValueError(f"{what} needs an ARE checkpoint (profile are-mix or are-fusion); this is {self.profile}")

    def _check_weights(self, weights: Sequence[float]) -> Sequence[float]:
        if len(weights) != len(self.enhancer_names):
            raise ValueError(f"expected {len(self.enhancer_names)} fusion weights ({', '.join(self.enhancer_names)}), "
                             f"got {len(weights)}")
        return weights

    # ---------------------------------------------------------------------------------- relation side
    def relation_side(self, graph: GraphContext, relations: Tensor, entities: Tensor | None = None,
                      generator: torch.Generator | None = None) -> RelationSide:
        """Z and the enhancer deltas for each forward query relation.

        relations: [U] forward relation ids. entities: [U] the query entity e, used only by the prompt
        enhancer in training mode (its context size depends on e). Returns RelationSide with z [U, R', d]
        and deltas [U, E, d] (E = 0 without enhancers).
        """
        z = self.relation_model(graph.relation_graph, relations)
        if self.profile != "ultra":
            if graph.text_graph is None or graph.text_embeddings is None:
                raise ValueError(f"profile {self.profile} needs relation text embeddings for the graph")
            semantic = self.semantic_model(graph.text_graph, graph.text_embeddings)
            z = self.combiner(z, semantic)
        if not self.has_enhancers:
            return RelationSide(relations, z, z.new_zeros(z.shape[0], 0, self.dim))
        deltas = self._enhancer_deltas(graph, z, relations, entities, generator)
        return RelationSide(relations, z, torch.stack([deltas[name] for name in ENHANCERS], dim=1))

    def _enhancer_deltas(self, graph: GraphContext, z: Tensor, relations: Tensor, entities: Tensor | None,
                         generator: torch.Generator | None) -> dict[str, Tensor]:
        """Each enhancer's delta for row q, by name: [U, d] each (see `relation_side`)."""
        similarity = self.similarity_enhancer(z, relations)
        if self.training:
            if entities is None:
                raise ValueError("training the prompt enhancer needs the query entities")
            counts = graph.prompt_sizer.node_counts(relations, entities, generator)
            context = self.prompt_enhancer.train_context(counts, generator)
        else:
            context = self.prompt_enhancer.eval_context(graph.relation_edge_count[relations] > 0)
        return {"similarity": similarity, "prompt": self.prompt_enhancer(z, relations, context)}

    def fuse(self, side: RelationSide, weights: Tensor | None = None) -> Tensor:
        """Z̃: [U, R', d] = Z with row q replaced by z_q + Σ_e w_e·Δ_e (w_sim·Δsim + w_prompt·Δprompt).

        weights: [E] or [U, E] (one setting per row, for evaluating several settings in one pass);
        None uses the model's fusion (`fusion_weights`). The terms are added one by one in enhancer
        order (w_0·Δ_0 + w_1·Δ_1 + ...), the same float operations whatever E, so ranks stay bit-exact.
        """
        if not self.has_enhancers:
            return side.z
        if weights is None:
            weights = self.fusion_weights()
        weights = weights.to(side.z.dtype)
        count = side.deltas.shape[1]
        if weights.dim() == 1:
            weights = weights.expand(side.z.shape[0], count)
        delta = weights[:, :1] * side.deltas[:, 0]
        for term in range(1, count):  # over the E enhancers (2), not over relations
            delta = delta + weights[:, term:term + 1] * side.deltas[:, term]
        rows = torch.arange(side.z.shape[0], device=side.z.device)
        return side.z.index_put((rows, side.relations), side.z[rows, side.relations] + delta)

    # ------------------------------------------------------------------------------------ entity side
    def entity_scores(self, graph: GraphContext, fused: Tensor, repr_index: Tensor, anchors: Tensor,
                      query_relations: Tensor, plan: MessagePlan | None = None,
                      projected: list[Tensor] | None = None, workspace: Workspace | None = None) -> Tensor:
        """Logits [B, N] of every entity answering (anchor, query_relation, ?).

        fused: [U, R', d] from `fuse`; repr_index: [B] row of `fused` per query; query_relations: [B]
        r' (r + R for head queries). plan overrides the fact graph (e.g. after easy-edge removal);
        projected: `project_relations(fused)`, to reuse across batches; workspace: buffers reused from batch to
        batch at CPU inference (:class:`are_model.layers.Workspace`).
        """
        return self.entity_model(graph.plan if plan is None else plan, fused, repr_index, anchors, query_relations,
                                 projected, workspace)

    def project_relations(self, fused: Tensor) -> list[Tensor]:
        """The entity NBFNet's per-layer relation vectors of every row of `fused` [U, R', d]."""
        return self.entity_model.project(fused)

    # ------------------------------------------------------------------------------------ full forward
    def forward(self, graph: GraphContext, batch: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ULTRA-style forward on a batch [B, 1+n, 3] of (h, t, r) with column 0 positive. Returns [B, 1+n].

        A row whose heads are all equal is a tail-prediction row, any other row a head-prediction row,
        answered as (t, r + R, ?) (spec §1.6). In training mode the batch's edges are removed from the
        fact graph first (spec §1.7).
        """
        heads, tails, relations = batch.unbind(-1)
        tail_mode = (heads == heads[:, :1]).all(dim=1)
        forward_relations = relations[:, 0]
        half = graph.num_relations // 2
        anchors = torch.where(tail_mode, heads[:, 0], tails[:, 0])
        query_relations = torch.where(tail_mode, forward_relations, forward_relations + half)
        candidates = torch.where(tail_mode.unsqueeze(1), tails, heads)
        plan = None
        if self.training:
            edge_index, edge_type = remove_easy_edges(graph, heads, tails, relations)
            plan = MessagePlan.build(edge_index, edge_type, graph.num_nodes, for_inference=False)
        # With a frozen body only the fusion needs gradients: skip the relation side's autograd graph.
        body_trainable = any(p.requires_grad for name, p in self.named_parameters()
                             if not name.startswith(("entity_model.", "fusion_weights_logits", FREE_FUSION_KEY)))
        with torch.set_grad_enabled(torch.is_grad_enabled() and body_trainable):
            side = self.relation_side(graph, forward_relations, heads[:, 0] if self.training else None, generator)
        fused = self.fuse(side)
        rows = torch.arange(batch.shape[0], device=batch.device)
        scores = self.entity_scores(graph, fused, rows, anchors, query_relations, plan)
        return scores.gather(1, candidates)


def remove_easy_edges(graph: GraphContext, heads: Tensor, tails: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
    """Drop every fact edge (h, t, r) and (t, h, r + R) named anywhere in the batch (spec §1.7).

    heads, tails, relations: [B, 1+n]. Returns the remaining edge_index [2, E'] and edge_type [E'].
    """
    num_nodes, half = graph.num_nodes, graph.num_relations // 2
    edge_key = (graph.edge_index[0] * graph.num_relations + graph.edge_type) * num_nodes + graph.edge_index[1]
    forward = (heads * graph.num_relations + relations) * num_nodes + tails
    inverse = (tails * graph.num_relations + relations + half) * num_nodes + heads
    remove = torch.unique(torch.cat([forward.flatten(), inverse.flatten()]))
    keep = ~torch.isin(edge_key, remove)
    return graph.edge_index[:, keep], graph.edge_type[keep]
