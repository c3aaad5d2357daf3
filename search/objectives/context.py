"""What makes a trial cheap: everything the fusion weights do not change is computed once per process.

A :class:`SearchContext` holds, for one (dataset, checkpoint) in one process: the dataset, the model on
its device, each prepared split (graphs, text vectors, queries, filters) and, per split, the relation
side of the checkpoint's model (Z and the enhancer deltas [U, E, d] -- Δsim, Δprompt -- of every query
relation). A fixed-weight trial then runs only the entity pass: ``rank_queries(side=cached, weights=w)``
with w the trial's weights [E] in the model's enhancer order (``AREModel.enhancer_names``).

Staged evaluation: the distinct (anchor, relation) pairs of a split (one entity pass each, see
:class:`are_model.evaluate.QueryPairs`) are put in a seeded order, stratified by (forward relation,
head/tail), and cut into growing prefixes (1/8, 1/4, 1/2, all for four stages). After each stage the
MRR of the queries so far goes to ``on_stage`` -- an objective reports it to a pruner there -- and only
the new pairs of a stage are ranked. The last stage is the whole split, so a trial that runs to the
end always has the full-split MRR as its value; ranks do not depend on the batching, so that value is
the one an unstaged evaluation gives, bit for bit.

Several settings per pass: :meth:`SearchContext.evaluate_many` ranks K fixed settings in shared entity
passes (``rank_queries(weights=[K, E])``), stage by stage, dropping the settings ``on_stage`` prunes;
each setting's ranks and MRRs are those of evaluating it alone (on the CPU bit for bit).

:func:`get_context` keeps contexts in a small per-process registry, so a local worker or a Ray actor
builds one once and reuses it for every trial it runs.
"""
from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from are_model.checkpoint import load_checkpoint
from are_model.data import load_dataset
from are_model.evaluate import QueryPairs, QuerySet, query_pairs, rank_queries
from are_model.model import AREModel, RelationSide
from are_model.pipeline import PreparedSplit, TextOptions, default_batch_size, prepare_split
from search.inputs.roots import naming_unset_root, root_is_set

__all__ = ["StagePlan", "stage_plan", "SearchContext", "get_context", "clear_contexts"]

_logger = logging.getLogger(__name__)

#: How many contexts one process keeps (the most recently used ones).
MAX_CONTEXTS = 2
#: On CUDA, the most memory one [N, rows, d] float32 node state of an entity pass of several settings takes.
CUDA_PASS_BYTES = 2 << 30


@dataclass(frozen=True)
class StagePlan:
    """A seeded, stratified order of a split's query pairs and where each stage ends.

    order: [P] pair indices; stage k holds ``order[ends[k-1]:ends[k]]`` (``ends[-1] == P``). The order
    does not depend on the number of stages, so every stage count ends on the same full-split MRR.
    """

    order: Tensor
    ends: tuple[int, ...]

    def stages(self) -> list[Tensor]:
        """The pair indices of each stage (disjoint; together every pair once)."""
        starts = (0,) + self.ends[:-1]
        return [self.order[start:end] for start, end in zip(starts, self.ends)]


def stage_ends(total: int, stages: int) -> tuple[int, ...]:
    """Ends of ``stages`` growing prefixes of ``total`` queries, each twice the one before, the last all."""
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise ValueError(f"stages must be a positive integer, got {stages!r}")
    ends = [max(1, -(-total // 2 ** (stages - 1 - k))) for k in range(stages)]
    return tuple(sorted(set(min(end, total) for end in ends))) if total else (0,)


def stage_plan(queries: QuerySet, pairs: QueryPairs, stages: int, seed: int = 0,
               limit: int | None = None) -> StagePlan:
    """The stage plan of the ``pairs`` of ``queries``: every prefix holds each stratum proportionally.

    A stratum is a (forward relation, head/tail) pair, which all queries of a pair share. Within a
    stratum the pairs are shuffled; the i-th of n gets the key (i + φ)/n with a random phase φ per
    stratum, and the order sorts the keys, so a prefix of length L holds L·n/P ± 2 pairs of each stratum.
    limit: plan only the first ``limit`` pairs of that order (a *validation sample*: seeded, stratified by
    relation, the same whatever the number of stages); None or a limit >= P plans every pair.
    """
    total = len(pairs)
    generator = torch.Generator().manual_seed(int(seed))
    first_query = pairs.by_pair[pairs.starts[:-1]].cpu()
    strata = queries.forward_relations.cpu()[first_query] * 2 + queries.is_head.cpu()[first_query].long()
    shuffled = torch.randperm(total, generator=generator)
    grouped = shuffled[torch.argsort(strata[shuffled], stable=True)]
    _, inverse, counts = torch.unique_consecutive(strata[grouped], return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank_in_stratum = torch.arange(total) - starts[inverse]
    phase = torch.rand(counts.numel(), generator=generator, dtype=torch.float64)
    keys = (rank_in_stratum.double() + phase[inverse]) / counts[inverse].double()
    order = grouped[torch.argsort(keys, stable=True)]
    if limit is not None and limit < total:
        order = order[:limit]
    return StagePlan(order, stage_ends(order.numel(), stages))


OnStage = Callable[[int, float, bool], None]
#: on_stage of several settings: (stage, active settings, their MRRs so far, final) -> settings to drop.
OnStages = Callable[[int, list[int], list[float], bool], Iterable[int] | None]
#: on_ranks of one setting: (stage, ranks so far [Q] (0: not ranked yet), final); may raise to stop.
OnRanks = Callable[[int, Tensor, bool], None]
#: on_ranks of several settings: (stage, active settings, ranks so far [K, Q], final) -> settings to drop.
OnRanksMany = Callable[[int, list[int], Tensor, bool], Iterable[int] | None]


class SearchContext:
    """One dataset and one checkpoint, loaded once per process (see the module docstring).

    dataset: a dataset name; checkpoint_path: a checkpoint file; text: where relation texts come from
    and which encoder makes vectors of them (needed by every profile but ULTRA); batch_size: queries
    per entity pass (default by device); stage_seed: seed of the stage order.
    """

    def __init__(self, dataset: str, checkpoint_path: str | os.PathLike, *, data_root: str | os.PathLike | None = None,
                 text: TextOptions | None = None, device: torch.device | str = "cpu", batch_size: int | None = None,
                 cache_dir: str | os.PathLike | None = None, stage_seed: int = 0, download: bool = True) -> None:
        start = time.perf_counter()
        self.device = torch.device(device)
        self.checkpoint_path = str(checkpoint_path)
        with naming_unset_root("data_root", root_is_set("data_root", data_root, cache_dir)):
            self.data = load_dataset(dataset, data_root, cache_dir=cache_dir, download=download)
        self.model, self.info = load_checkpoint(checkpoint_path, self.device)
        self.model.requires_grad_(False)
        self.text = text if text is not None else TextOptions(cache_dir=None if cache_dir is None else str(cache_dir))
        self.batch_size = batch_size or default_batch_size(self.device)
        self.stage_seed = stage_seed
        self._state = {key: value.detach().cpu().clone() for key, value in self.model.state_dict().items()}
        self._splits: dict[str, PreparedSplit] = {}
        self._sides: dict[str, RelationSide] = {}
        self._plans: dict[tuple[str, int], StagePlan] = {}
        self._pairs: dict[str, QueryPairs] = {}
        _logger.info("context %s + %s (%s) on %s ready in %.1fs", self.data.name, Path(self.checkpoint_path).name,
                     self.info.profile, self.device, time.perf_counter() - start)

    @property
    def dataset(self) -> str:
        """The dataset's canonical name."""
        return self.data.name

    @property
    def profile(self) -> str:
        return self.info.profile

    @property
    def terms(self) -> int:
        """E: how many fusion weights the model takes (one per enhancer; 0 for ULTRA/SEMMA)."""
        return len(self.model.enhancer_names)

    # ---------------------------------------------------------------------------- what is cached
    def split(self, name: str) -> PreparedSplit:
        """The prepared split ``name`` (train / valid / test), built on first use."""
        if name not in self._splits:
            start = time.perf_counter()
            text = None if self.profile == "ultra" else self.text
            with naming_unset_root("text_root", root_is_set("text_root", self.text.root)):
                self._splits[name] = prepare_split(self.data, name, text=text, device=self.device)
            _logger.info("%s %s prepared in %.1fs (%d queries)", self.dataset, name, time.perf_counter() - start,
                         len(self._splits[name].queries))
        return self._splits[name]

    def relation_side(self, name: str) -> RelationSide:
        """The checkpoint model's relation side for every forward relation queried in split ``name``."""
        if name not in self._sides:
            self._sides[name] = self._compute_side(self.model, self.split(name))
        return self._sides[name]

    def pairs(self, name: str) -> QueryPairs:
        """The distinct (anchor, r') pairs of split ``name``'s queries."""
        if name not in self._pairs:
            prepared = self.split(name)
            self._pairs[name] = query_pairs(prepared.queries, prepared.graph.num_nodes)
        return self._pairs[name]

    def stage_plan(self, name: str, stages: int, limit: int | None = None) -> StagePlan:
        """The stage plan of split ``name`` (seeded with ``stage_seed``), of its first ``limit`` pairs when given."""
        key = (name, stages, limit)
        if key not in self._plans:
            self._plans[key] = stage_plan(self.split(name).queries, self.pairs(name), stages, self.stage_seed, limit)
        return self._plans[key]

    def sample_size(self, name: str, limit: int | None = None) -> tuple[int, int]:
        """``(pairs, queries)`` that split ``name`` ranks with a validation sample of ``limit`` pairs (None: all)."""
        order = self.stage_plan(name, 1, limit).order.to(self.pairs(name).starts.device)
        return int(order.numel()), int(self.pairs(name).queries_of(order)[0].numel())

    @staticmethod
    @torch.inference_mode()
    def _compute_side(model: AREModel, prepared: PreparedSplit) -> RelationSide:
        return model.relation_side(prepared.graph, torch.unique(prepared.queries.forward_relations))

    def fresh_model(self) -> AREModel:
        """A new model with the checkpoint's weights, on the device, in eval mode (e.g. to fine-tune)."""
        model = AREModel(self.profile)
        model.load_state_dict(self._state, strict=True)
        return model.to(self.device).eval()

    # ---------------------------------------------------------------------------------- evaluation
    def evaluate(self, split: str, weights: Sequence[float] | Tensor | None = None, stages: int | None = None,
                 on_stage: OnStage | None = None, *, model: AREModel | None = None, sample: int | None = None,
                 on_ranks: OnRanks | None = None) -> tuple[float, Tensor]:
        """(MRR, ranks [Q] on the CPU in the split's query order; 0 for a query outside the sample) of one setting.

        weights: the E fixed fusion weights (w_sim, w_prompt), or None for the model's own fusion. model: a
        model other than the checkpoint's (e.g. a fine-tuned copy); its relation side is computed once
        here instead of taken from the cache. stages: evaluate in that many stages (None: one);
        on_stage(stage, mrr_so_far, final), then on_ranks(stage, ranks_so_far [Q], final) run after each and
        may raise to stop (e.g. optuna.TrialPruned). sample: rank only the first ``sample`` pairs of the seeded,
        stratified order (a validation sample; the MRR is then the sample's). Raises ValueError when weights
        is not E numbers.
        """
        prepared = self.split(split)
        if model is None:
            model, side = self.model, self.relation_side(split)
        else:
            side = self._compute_side(model, prepared)
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device).reshape(-1)
            if weights.shape != (self.terms,):
                raise ValueError(f"weights must have shape [{self.terms}], got {list(weights.shape)}")
        plan, pairs = self.stage_plan(split, stages or 1, sample), self.pairs(split)
        order = plan.order.to(self.device)
        ranks = torch.zeros(len(prepared.queries), dtype=torch.long, device=self.device)  # 0: not ranked yet
        start, mrr = 0, float("nan")
        for stage, end in enumerate(plan.ends):
            # Only this stage's pairs are ranked (the other queries get 0): stages are disjoint, so adding
            # keeps the earlier ranks.
            ranks += rank_queries(model, prepared.graph, prepared.queries, prepared.filters, side=side,
                                  weights=weights, batch_size=self.batch_size, pairs=pairs, select=order[start:end])
            mrr = float((1.0 / ranks[ranks > 0].double()).mean())
            start = end
            if on_stage is not None:
                on_stage(stage, mrr, end == plan.ends[-1])
            if on_ranks is not None:
                on_ranks(stage, ranks, end == plan.ends[-1])
        return mrr, ranks.cpu()

    def evaluate_many(self, split: str, weights: Sequence[Sequence[float]] | Tensor, stages: int | None = None,
                      on_stage: OnStages | None = None, *, sample: int | None = None,
                      on_ranks: OnRanksMany | None = None) -> tuple[list[float], Tensor]:
        """(MRR per setting [K], ranks [K, Q] on the CPU) of K fixed settings ranked in shared entity passes.

        weights: [K, E] rows (w_sim, w_prompt). After each stage ``on_stage(stage, active, mrrs, final)``
        gets the indices of the settings still evaluated and their MRR so far, and returns the indices
        among them to drop (e.g. pruned trials; it may return nothing). Dropped settings are not ranked
        in later stages: their MRR is the one of their last stage and their later queries keep rank 0.
        On the CPU a pass keeps ``batch_size`` rows, so every setting gets the ranks and MRRs that
        ``evaluate(split, weights[k], stages)`` gives, bit for bit, whichever settings share its passes.
        On CUDA, where 64 rows leave the device idle, each of the K settings keeps ``batch_size`` pairs a
        pass (K·batch_size rows, while one [N, rows, d] node state fits CUDA_PASS_BYTES: 1.3x the
        settings/s of one by one at K = 8, bench/settings_speed.py); ranks there equal one-by-one ones
        up to float rounding (on an H200 two one-by-one runs of NELLInductive:v1 valid already gave
        different ranks; CUDA's atomic scatter-adds sum in no fixed order). sample: as for :meth:`evaluate`;
        on_ranks(stage, active, ranks [K, Q], final) runs after on_stage on the settings still active and
        returns the indices among them to drop too. Raises ValueError if weights is not [K, E].
        """
        prepared, side, pairs = self.split(split), self.relation_side(split), self.pairs(split)
        weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if weights.dim() != 2 or weights.shape[1] != self.terms or weights.shape[0] < 1:
            raise ValueError(f"weights must have shape [K, {self.terms}], got {list(weights.shape)}")
        plan = self.stage_plan(split, stages or 1, sample)
        order = plan.order.to(self.device)
        count = weights.shape[0]
        ranks = torch.zeros(count, len(prepared.queries), dtype=torch.long, device=self.device)
        mrrs, active, start = [float("nan")] * count, list(range(count)), 0
        for stage, end in enumerate(plan.ends):
            if not active:
                break
            rows = torch.tensor(active, device=self.device)
            per_pass = self.batch_size
            if self.device.type == "cuda":
                fits = CUDA_PASS_BYTES // (prepared.graph.num_nodes * self.model.dim * 4)
                per_pass = max(per_pass, min(per_pass * len(active), fits))
            ranks[rows] += rank_queries(self.model, prepared.graph, prepared.queries, prepared.filters, side=side,
                                        weights=weights[rows], batch_size=per_pass, pairs=pairs,
                                        select=order[start:end])
            ranked = ranks[active[0]] > 0  # the same queries for every active setting
            for k in active:  # the expression of `evaluate`, per setting, so the MRRs agree bit for bit
                mrrs[k] = float((1.0 / ranks[k][ranked].double()).mean())
            start = end
            if on_stage is not None:
                dropped = set(on_stage(stage, list(active), [mrrs[k] for k in active], end == plan.ends[-1]) or ())
                active = [k for k in active if k not in dropped]
            if on_ranks is not None and active:
                dropped = set(on_ranks(stage, list(active), ranks, end == plan.ends[-1]) or ())
                active = [k for k in active if k not in dropped]
        return mrrs, ranks.cpu()


# ------------------------------------------------------------------------------------- registry
_CONTEXTS: "OrderedDict[tuple, SearchContext]" = OrderedDict()


def get_context(dataset: str, checkpoint_path: str | os.PathLike, *, data_root: str | os.PathLike | None = None,
                text: TextOptions | None = None, device: torch.device | str = "cpu", batch_size: int | None = None,
                cache_dir: str | os.PathLike | None = None, stage_seed: int = 0, download: bool = True) -> SearchContext:
    """The process's context for these arguments: built on first call, the same object afterwards.

    At most MAX_CONTEXTS stay alive (least recently used goes first), so a long-lived worker that
    switches studies does not pile up models on its device.
    """
    key = (dataset, str(Path(checkpoint_path).resolve()), None if data_root is None else str(data_root), text,
           str(torch.device(device)), batch_size, None if cache_dir is None else str(cache_dir), stage_seed, download)
    if key in _CONTEXTS:
        _CONTEXTS.move_to_end(key)
        return _CONTEXTS[key]
    context = SearchContext(dataset, checkpoint_path, data_root=data_root, text=text, device=device,
                            batch_size=batch_size, cache_dir=cache_dir, stage_seed=stage_seed, download=download)
    _CONTEXTS[key] = context
    while len(_CONTEXTS) > MAX_CONTEXTS:
        _CONTEXTS.popitem(last=False)
    return context


def clear_contexts() -> None:
    """Forget every context of this process (frees their models and graphs)."""
    _CONTEXTS.clear()
