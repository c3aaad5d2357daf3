"""What a running study shows on stderr: a bar on a terminal, one line per finished trial elsewhere.

``mode``: ``"bar"`` (a tqdm bar of the trials *this run* finishes out of those it has left, with the
best validation MRR so far), ``"lines"`` (one line per finished trial: number, value or why it was pruned,
the weights, seconds -- so a run logged to a file is not silent for minutes), or None/False (nothing).
``True`` means ``"bar"``.

A pruned trial has no value comparable with complete trials' (:func:`pruned_text`): a trial stopped by the
paired race (:mod:`search.pruners.paired`) is shown by its race, ``pruned: -0.0120 vs best after 96
queries, p = 0.003 (trial 4)``; a trial stopped by a stage pruner (median, ASHA, Hyperband) by where it
stopped, its stage MRR labelled as such: ``pruned at stage 1 of 4 (the first 1/8 of the validation
pairs) at stage MRR 0.4502, not comparable with complete trials``.
"""
from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from search.errors import StudyError
from search.study.bounds import growth_history, growth_text
from search.study.budget import FINISHED
from search.study.settings import TrialSettings
from search.study.spec import stored_spec
from search.pruners.paired import RACE_ATTR

__all__ = ["progress_bar", "header", "trial_line", "pruned_text", "trial_steps"]



def trial_steps(study: optuna.Study) -> int | None:
    """How many intermediate values a trial of ``study`` reports (stages, or epochs in learnable mode), from
    its stored spec; None for a study without one."""
    try:
        spec = stored_spec(study)
        return spec.fine_tune_budget().steps(spec.mode)
    except StudyError:
        return None


def _share(step: int, steps: int) -> str:
    """The share of the validation pairs that stages 1..``step`` of ``steps`` rank (each stage doubles the
    prefix, the last is all: :func:`search.objectives.context.stage_ends`)."""
    return "all" if step >= steps else f"the first 1/{2 ** (steps - step)}"


def pruned_text(trial: optuna.trial.FrozenTrial, steps: int | None = None) -> str:
    """Why ``trial`` (PRUNED) stopped, never with a stage value passed off as a trial value.

    Raced (user attr ``race``): ``pruned: -0.0120 vs best after 96 queries, p = 0.003 (trial 4)``, the
    mean paired difference of reciprocal ranks against the incumbent on the queries both ranked. Stage
    pruners: ``pruned at stage k of n (the first 1/2^(n-k) of the validation pairs) at stage MRR x, not
    comparable with complete trials`` (fixed mode), ``pruned after epoch k of n at validation MRR x,
    before its fine-tuning ended`` (learnable). steps: the study's stages / epochs (None: not said).
    """
    race = trial.user_attrs.get(RACE_ATTR)
    if isinstance(race, dict) and race.get("prune"):
        against = f" (trial {race['incumbent']})" if race.get("incumbent") is not None else ""
        return (f"pruned: {float(race['delta']):+.4f} vs best after {int(race['queries'])} queries, "
                f"p = {float(race['p']):.3g}{against}")
    if not trial.intermediate_values:
        return "pruned"
    step = max(trial.intermediate_values)
    value = float(trial.intermediate_values[step])
    of = "" if steps is None else f" of {steps}"
    settings = TrialSettings.maybe_from_trial(trial)
    if settings is not None and settings.use_learnable_fusion:
        return f"pruned after epoch {step}{of} at validation MRR {value:.4f}, before its fine-tuning ended"
    where = "" if steps is None else f" ({_share(step, steps)} of the validation pairs)"
    return f"pruned at stage {step}{of}{where} at stage MRR {value:.4f}, not comparable with complete trials"


def trial_line(trial: optuna.trial.FrozenTrial, *, steps: int | None = None) -> str:
    """One line for a finished trial: number, validation MRR (or why it was pruned, :func:`pruned_text`), its
    weights, seconds. steps: the study's stages / epochs per trial (:func:`trial_steps`; None: not said)."""
    settings = TrialSettings.maybe_from_trial(trial)
    weights = "" if settings is None else f" {settings.weights_text()}"
    if settings is not None and settings.use_learnable_fusion and settings.fusion_lr:
        weights += f" fusion_lr={settings.fusion_lr:.3g}"
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else float("nan")
    if trial.state == TrialState.COMPLETE:
        outcome = f"validation MRR {trial.value:.4f}" + (f" (repeat of trial {trial.user_attrs['repeat_of']})"
                                                          if "repeat_of" in trial.user_attrs else "")
        return f"trial {trial.number}: {outcome},{weights} {seconds:.1f} s"
    return f"trial {trial.number} {pruned_text(trial, steps)};{weights} {seconds:.1f} s"


def header(study: optuna.Study, spec: Any) -> str:
    """What a run is about to do, said before its first trial: the study, how many trials it runs to which
    budget (and a learnable mode's fine-tuning budget per trial), what goes first (known points, warm starts, re-queued settings), sampler, pruner, sample."""
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    first = [t.user_attrs.get("known_point") or ("warm start" if "warm_start_from" in t.user_attrs else
                                                 "re-queued" if "retry_of" in t.user_attrs else "queued")
             for t in sorted(waiting, key=lambda t: t.number)]
    left = max(spec.trials - finished, 0)
    text = (f"{spec.name}: {left} trial{'' if left == 1 else 's'} to run ({finished} of {spec.trials} finished); "
            f"sampler {spec.sampler}, pruner {spec.pruner}")
    if getattr(spec, "valid_pairs", None):
        text += f", a validation sample of {spec.valid_pairs} pairs"
    if spec.mode != "fixed":
        text += f"; fine-tuning budget per trial: {spec.fine_tune_budget().describe()}"
    if first:
        text += f"; first the queued settings: {', '.join(first)}"
    return text + "; a line per finished trial follows"


class progress_bar:
    """Progress of ``study`` towards ``spec.trials`` finished trials, as ``mode`` says (see module doc)."""

    def __init__(self, study: optuna.Study, spec: Any, mode: bool | str | None, *,
                 announce_when_running: bool = False) -> None:
        self.mode = "bar" if mode is True else (mode or None)
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        self._seen = {t.number for t in finished}
        self._steps = spec.fine_tune_budget().steps(spec.mode)
        self._bar = None
        self._grown = len(growth_history(study))
        # What the run will do, said at once -- or, where workers still have to load their data (a run of several
        # processes or Ray), once a trial runs: bad input met there stays the one line it is.
        self._header = header(study, spec) if self.mode is not None else None
        if self._header is not None and not announce_when_running:
            self._say(self._header)
            self._header = None
        if self.mode == "bar":
            left = max(spec.trials - len(finished), 0)
            self._bar = tqdm(total=left, desc=str(spec.name), unit="trial", leave=True)
        self.refresh_from(study)

    def _say(self, line: str) -> None:
        """One line on stderr, above the bar when there is one."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def refresh_from(self, study: optuna.Study) -> None:
        """Show what finished since the last call."""
        if self.mode is None:
            return
        started = (len(study.get_trials(deepcopy=False, states=FINISHED)) > len(self._seen)
                   or study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if self._header is not None and started:
            self._say(self._header)
            self._header = None
        growths = growth_history(study)
        for growth in growths[self._grown:]:  # said when it happens (before the trial it came before), not at the end
            self._say(f"{study.study_name}: {growth_text(growth)}")
        self._grown = len(growths)
        finished = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number)
        new = [t for t in finished if t.number not in self._seen]
        self._seen.update(t.number for t in new)
        if self._bar is not None:
            self._bar.update(min(len(new), self._bar.total - self._bar.n))
            complete = [t.value for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
            if complete:
                self._bar.set_postfix_str(f"best MRR {max(complete):.4f}", refresh=False)
            self._bar.refresh()
        else:
            for trial in new:
                sys.stderr.write(f"{study.study_name} {trial_line(trial, steps=self._steps)}\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Close the bar (if any)."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "progress_bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
