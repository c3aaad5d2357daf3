"""When a study may stop before its budget: more trials are unlikely to improve validation MRR.

Two pieces of evidence, either of which stops a study once it has at least ``min_complete`` complete
trials (default 20, so small budgets run exactly as asked) and its best trial does not sit on a soft
bound that is about to grow (:func:`search.study.bounds.pending_growth`: the study has not yet searched the
range it is about to have, and the evidence below speaks only of what it has searched):

* the GP regret bound of Optuna's terminator (:class:`optuna.terminator.RegretBoundEvaluator`;
  Makarova et al., "Automatic termination for hyperparameter optimization", AutoML 2022): an upper
  bound on how much the best validation MRR can still improve within the search space; below
  ``tolerance`` (validation MRR, default 0.002) the study stops;
* the sampler itself: ``repeats`` trials in a row (default 3) that proposed settings the study had
  already completed (stored as COMPLETE trials with user attr ``repeat_of``, counted in the budget):
  a converged GP proposes its optimum again and again.

The reason and the trial at which the study stopped are the study's user attr ``stop`` (shown by
``status`` and ``report``); a new ``launch``/``resume`` clears it and the rule is checked again after
each trial. ``stop: false`` in the spec (``--no-stop``) turns the rule off.
"""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from search.study.bounds import pending_growth

__all__ = ["STOP_ATTR", "StopRule", "stop_reason", "record_stop", "stop_record", "clear_stop"]

_logger = logging.getLogger(__name__)

#: Study user attr: ``{"reason": str, "trial": int}`` once the study stopped early.
STOP_ATTR = "stop"


@dataclass(frozen=True)
class StopRule:
    """enabled: apply the rule; min_complete: complete trials before it may fire; tolerance: the
    validation-MRR improvement still worth a trial; repeats: repeated proposals in a row that mean
    the sampler has converged."""

    enabled: bool = True
    min_complete: int = 20
    tolerance: float = 0.002
    repeats: int = 3

    @classmethod
    def of(cls, spec: Any) -> "StopRule":
        """The rule of a :class:`search.study.spec.StudySpec`."""
        return cls(spec.stop, spec.stop_min_trials, spec.stop_tolerance)


def _regret_bound(study: optuna.Study, rule: StopRule) -> float | None:
    from optuna.terminator import RegretBoundEvaluator

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings
            evaluator = RegretBoundEvaluator(min_n_trials=rule.min_complete, seed=0)
            bound = evaluator.evaluate(study.get_trials(deepcopy=False), study.direction)
    except Exception as exc:  # a GP fit that fails (e.g. all values equal) is no evidence either way
        _logger.debug("study %s: no regret bound (%s)", study.study_name, exc)
        return None
    return float(bound) if math.isfinite(bound) else None


def stop_reason(study: optuna.Study, rule: StopRule) -> str | None:
    """Why ``study`` should stop now, or None."""
    if not rule.enabled:
        return None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < rule.min_complete:
        return None
    if pending_growth(study):  # the best sits on a soft bound that grows before the next trial: not converged
        return None
    finished = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                      key=lambda t: t.number)[-rule.repeats:]
    if len(finished) == rule.repeats and all("repeat_of" in t.user_attrs for t in finished):
        numbers = ", ".join(str(t.number) for t in finished)
        return (f"converged: the sampler proposed already-evaluated settings {rule.repeats} times in a row "
                f"(trials {numbers})")
    bound = _regret_bound(study, rule)
    if bound is not None and bound < rule.tolerance:
        return (f"the GP regret bound {bound:.4f} is below the tolerance {rule.tolerance:g}: more trials are "
                f"unlikely to improve validation MRR by more than that")
    return None


def record_stop(study: optuna.Study, reason: str) -> dict[str, Any]:
    """Store that ``study`` stopped now, with ``reason``."""
    trials = study.get_trials(deepcopy=False)
    record = {"reason": reason, "trial": max((t.number for t in trials), default=-1),
              "complete": sum(t.state == TrialState.COMPLETE for t in trials)}
    study.set_user_attr(STOP_ATTR, record)
    _logger.info("study %s stops after trial %d: %s", study.study_name, record["trial"], reason)
    return record


def stop_record(study: optuna.Study) -> dict[str, Any] | None:
    """The study's stop record, or None when it has not stopped early."""
    record = study.user_attrs.get(STOP_ATTR)
    return record if isinstance(record, dict) and record else None


def clear_stop(study: optuna.Study) -> None:
    """Forget an earlier stop (a new run checks the rule again)."""
    if stop_record(study) is not None:
        study.set_user_attr(STOP_ATTR, {})
