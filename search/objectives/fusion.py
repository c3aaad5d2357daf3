"""Objective functions: one trial's settings in, validation MRR out. The test split is never touched.

*Fixed* mode evaluates the checkpoint with the trial's weights on the validation split, in stages (see
:mod:`search.objectives.context`), reporting the MRR so far after each stage. *Learnable* mode fine-tunes a fresh
copy of the checkpoint on the dataset's training graph for the budget (:func:`are_model.train.fine_tune`;
the budget: :meth:`search.study.spec.StudySpec.fine_tune_budget`, by default the official per-dataset one)
and reports the validation MRR after each epoch; *learnable_free* does the same with the free fusion
(non-negative weights without the sum-to-one constraint, ``AREModel.use_free_fusion``). Either way the value of a trial that runs to the end is
the MRR on the whole validation split; a pruned trial raises :class:`optuna.TrialPruned`.

Each trial stores its full settings as the user attribute ``settings`` (see :class:`FusionObjective`),
so a trial can be re-run from the study alone. Several fixed-mode trials can run together
(:meth:`FusionObjective.fixed_many`, driven by :mod:`search.runners.step`): their settings share the
entity passes, each trial is reported and pruned on its own and gets the value it gets alone.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np
import optuna
from torch import Tensor

from are_model.train import fine_tune
from search.study.bounds import read_bounds
from search.objectives.context import SearchContext
from search.errors import StudyError
from search.study.fusion_terms import check_enhancers
from search.study.settings import SETTINGS_ATTR, TrialSettings
from search.pruners.paired import RACE_ATTR, PairedRace
from search.study.ranks import incumbent, store_ranks
from search.study.spec import StudySpec

__all__ = ["SPLIT", "Report", "report_to_optuna", "FusionObjective"]

_logger = logging.getLogger(__name__)

#: The split every objective searches on.
SPLIT = "valid"

#: report(trial, step, value, final): called after each stage / epoch, numbered from 1 (step k = k stages or
#: epochs done: the pruners' rungs, which start at step 1, then judge the first report); may raise
#: optuna.TrialPruned.
Report = Callable[[optuna.Trial, int, float, bool], None]


def report_to_optuna(trial: optuna.Trial, step: int, value: float, final: bool) -> None:
    """Report ``value`` at ``step`` to the study and let its pruner stop the trial (not at the end)."""
    trial.report(value, step)
    if not final and trial.should_prune():
        raise optuna.TrialPruned(f"pruned at stage {step} at stage MRR {value:.4f} (not comparable with complete trials)")


class FusionObjective:
    """``objective(trial) -> validation MRR`` for the study ``spec`` on a warm ``context``.

    report: what happens with each intermediate value (default: the study's own pruner decides).
    The ``settings`` user attribute holds ``use_learnable_fusion``, one weight per fusion term under its
    ``param`` key (``similarity_enhancer_weight``, ``prompt_enhancer_weight``; learnable: the initial
    weights; see :mod:`search.study.fusion_terms`), for learnable mode ``fusion_lr``,
    ``fusion_weight_decay``, ``body_lr`` (None: frozen body), ``fusion_init_logits`` (softmax logits, or the
    free fusion's softplus parameters when ``free_fusion`` is true: learnable_free mode) and ``fine_tune`` (the
    FineTuneConfig used, and under ``budget`` that budget in words: which one ran), and ``learned_weights``
    (None in fixed mode), ``dataset``,
    ``checkpoint``, ``checkpoint_path``, ``encoder`` and ``split``. Raises StudyError for a checkpoint
    without enhancers, or whose enhancers are not the fusion terms the search knows.
    """

    def __init__(self, spec: StudySpec, context: SearchContext, *, report: Report = report_to_optuna) -> None:
        if not context.model.has_enhancers:
            raise StudyError(f"checkpoint {context.checkpoint_path} is a {context.profile} model: "
                             "a fusion search needs an ARE checkpoint (are-mix or are-fusion)")
        check_enhancers(context.model.enhancer_names, f"checkpoint {context.checkpoint_path}")
        self.spec = spec
        self.context = context
        self.space = spec.search_space()
        self.budget = spec.fine_tune_budget()
        self.report = report
        #: the validation sample (pairs; None: the whole split) every trial of the study ranks
        self.sample = spec.valid_pairs
        #: the paired race (pruner ``paired``): one look after each stage (fixed) or epoch (learnable) but the last
        self.race = PairedRace(looks=max(1, self.budget.steps(spec.mode) - 1)) if spec.pruner == "paired" else None
        self.population = context.sample_size(SPLIT, self.sample)[1]
        # Build what every trial needs now, not inside the first trial (which would look slow and stay
        # RUNNING for the whole set-up).
        context.relation_side(SPLIT)
        if spec.mode != "fixed":
            context.split("train")

    @property
    def steps(self) -> int:
        return self.budget.steps(self.spec.mode)

    def __call__(self, trial: optuna.Trial) -> float:
        settings = self.suggest(trial)
        if self.spec.mode == "fixed":
            return self._fixed(trial, settings)
        return self._learnable(trial, settings)

    def suggest(self, trial: optuna.Trial) -> TrialSettings:
        """``trial``'s settings, suggested within the study's soft bounds and stored as its user attr."""
        settings = TrialSettings.from_attr({**self.space.suggest(trial, read_bounds(trial.study)),
                                            "dataset": self.context.dataset, "checkpoint": self.spec.checkpoint,
                                            # the file's name: portable (the study's launch record has its sha256)
                                            "checkpoint_path": Path(self.context.checkpoint_path).name,
                                            "encoder": self.context.split(SPLIT).encoder, "split": SPLIT})
        trial.set_user_attr(SETTINGS_ATTR, settings.to_attr())
        return settings

    def _fixed(self, trial: optuna.Trial, settings: TrialSettings) -> float:
        earlier = _repeated(trial)
        if earlier is not None:
            return earlier
        best = incumbent(trial.study) if self.race is not None else None

        def race(stage: int, ranks: Tensor, final: bool) -> None:
            pruned = self._look(trial, best, ranks, final)
            if pruned is not None:
                raise pruned

        mrr, ranks = self.context.evaluate(SPLIT, settings.weights, stages=self.budget.stages, sample=self.sample,
                                           on_stage=lambda stage, value, final: self.report(trial, stage + 1, value,
                                                                                            final),
                                           on_ranks=race if best is not None else None)
        if self.race is not None:
            store_ranks(trial, ranks)
        return mrr

    def _look(self, trial: optuna.Trial, best: tuple[int, np.ndarray] | None, ranks: Tensor,
              final: bool, population: float | None = None) -> optuna.TrialPruned | None:
        """One look of the paired race of ``trial`` (its ranks so far [Q], 0: not ranked yet) against ``best``
        (the incumbent's number and ranks): the TrialPruned to raise when it is worse with confidence, else None.
        population: the queries the ranks are drawn from (None: the study's split or sample; ``math.inf`` for a
        learnable trial's look, see :meth:`PairedRace.decide`). The decision is stored as the trial's user attr
        ``race``."""
        if best is None or final or best[0] == trial.number:
            return None
        seen = (ranks > 0).cpu().numpy()
        mine = ranks.cpu().numpy()[seen]
        theirs = best[1][seen]
        if (theirs <= 0).any():  # the incumbent ranked other queries (another sample): no race
            return None
        decision = self.race.decide(1.0 / mine, 1.0 / theirs, self.population if population is None else population)
        if not decision.prune:
            return None
        trial.set_user_attr(RACE_ATTR, {**decision.to_attr(), "incumbent": best[0]})
        return optuna.TrialPruned(f"pruned: {decision.describe()} (trial {best[0]})")

    def fixed_many(self, trials: Sequence[tuple[optuna.Trial, TrialSettings]]) -> list[float | optuna.TrialPruned]:
        """Fixed-mode trials (each with its settings from :meth:`suggest`) run together: one outcome each.

        The settings not completed before share every stage's entity passes
        (:meth:`SearchContext.evaluate_many`); each trial reports its own MRR after each stage and is
        pruned on its own (its outcome is then the ``optuna.TrialPruned`` raised by ``report``), and a
        trial that runs to the end gets the value its settings get alone, bit for bit. Any other
        exception propagates (no trial is told here: the caller tells each outcome).
        """
        outcomes: list[float | optuna.TrialPruned | None] = [_repeated(trial) for trial, _ in trials]
        fresh = [k for k, outcome in enumerate(outcomes) if outcome is None]
        if not fresh:
            return outcomes

        def on_stage(stage: int, active: list[int], mrrs: list[float], final: bool) -> list[int]:
            dropped = []
            for row, mrr in zip(active, mrrs):
                try:
                    self.report(trials[fresh[row]][0], stage + 1, mrr, final)
                except optuna.TrialPruned as pruned:
                    outcomes[fresh[row]] = pruned
                    dropped.append(row)
            return dropped

        best = incumbent(trials[0][0].study) if self.race is not None else None

        def race(stage: int, active: list[int], ranks: Tensor, final: bool) -> list[int]:
            dropped = []
            for row in active:
                pruned = self._look(trials[fresh[row]][0], best, ranks[row], final)
                if pruned is not None:
                    outcomes[fresh[row]] = pruned
                    dropped.append(row)
            return dropped

        mrrs, ranks = self.context.evaluate_many(SPLIT, [trials[k][1].weights for k in fresh],
                                                 stages=self.budget.stages, on_stage=on_stage, sample=self.sample,
                                                 on_ranks=race if best is not None else None)
        for row, k in enumerate(fresh):
            if outcomes[k] is None:
                outcomes[k] = mrrs[row]
                if self.race is not None:
                    store_ranks(trials[k][0], ranks[row])
        return outcomes

    def _learnable(self, trial: optuna.Trial, settings: TrialSettings) -> float:
        context, budget = self.context, self.budget
        train_triples = int(context.split("train").triples.shape[0])
        config = budget.fine_tune_config(train_triples, fusion_lr=settings.fusion_lr,
                                         fusion_weight_decay=settings.fusion_weight_decay, body_lr=settings.body_lr,
                                         seed=self.spec.seed)
        settings.fine_tune = {**asdict(config), "budget": budget.describe(train_triples)}
        trial.set_user_attr(SETTINGS_ATTR, settings.to_attr())
        model = context.fresh_model()
        if settings.free_fusion:
            model.use_free_fusion(settings.weights)
        else:
            model.use_learnable_fusion(settings.weights)
        values: list[float] = []
        last: list[Tensor] = []  # the ranks after the last epoch validated
        best = incumbent(trial.study) if self.race is not None else None

        def validate(epoch: int, tuned) -> bool:
            if config.body_lr is None:
                # Only the fusion logits moved: the cached relation side of the checkpoint still holds.
                mrr, ranks = context.evaluate(SPLIT, tuned.fusion_weights().detach(), sample=self.sample)
            else:
                mrr, ranks = context.evaluate(SPLIT, None, model=tuned, sample=self.sample)
            values.append(mrr)
            last[:] = [ranks]
            final = epoch == config.epochs - 1
            self.report(trial, epoch + 1, mrr, final)
            # The race after each epoch but the last: this trial's model so far against the incumbent's final
            # one, on the same queries. It stops a trial whose deficit is confident now, assuming the epochs
            # left do not overturn it (the assumption every pruner on intermediate values makes).
            pruned = self._look(trial, best, ranks, final, population=math.inf) if best is not None else None
            if pruned is not None:
                raise pruned
            return False

        try:
            fine_tune(model, context.split("train"), config, on_epoch_end=validate)
        finally:
            settings.learned_weights = [float(w) for w in model.fusion_weights().detach().cpu()]
            trial.set_user_attr(SETTINGS_ATTR, settings.to_attr())
        _logger.debug("trial %d: learned weights %s, validation MRR per epoch %s", trial.number,
                      settings.learned_weights, values)
        if self.race is not None and last:
            store_ranks(trial, last[0])  # it may be the incumbent of later trials
        return values[-1]


def _repeated(trial: optuna.Trial) -> float | None:
    """The value of the completed trial with ``trial``'s settings (recorded as user attr ``repeat_of``), or None.

    A fixed-weight MRR is a deterministic function of the weights: a setting already completed (a GP
    that has converged proposes its optimum again) costs nothing the second time.
    """
    earlier = _completed_with_params(trial)
    if earlier is None:
        return None
    trial.set_user_attr("repeat_of", earlier.number)
    _logger.info("trial %d repeats the settings of trial %d: its value is reused", trial.number, earlier.number)
    return earlier.value


def _completed_with_params(trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
    """The first completed trial of the study with exactly ``trial``'s parameters, if any."""
    for earlier in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if earlier.params == trial.params and earlier.number != trial.number:
            return earlier
    return None
