"""What a running study shows on stderr: a bar on a terminal, one line per finished trial elsewhere.

``mode``: ``"bar"`` (a tqdm bar of the trials *this run* finishes out of those it has left, with the
best validation MRR so far), ``"lines"`` (one line per finished trial: number, value or pruned, the
weights, seconds -- so a run logged to a file is not silent for minutes), or None/False (nothing).
``True`` means ``"bar"``.
"""
from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from search.study.budget import FINISHED
from search.study.settings import TrialSettings

__all__ = ["progress_bar", "trial_line"]


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """One line for a finished trial: number, validation MRR (or where it was pruned), its weights, seconds."""
    settings = TrialSettings.maybe_from_trial(trial)
    weights = "" if settings is None else f" {settings.weights_text()}"
    if settings is not None and settings.use_learnable_fusion and settings.fusion_lr:
        weights += f" fusion_lr={settings.fusion_lr:.3g}"
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else float("nan")
    if trial.state == TrialState.COMPLETE:
        outcome = f"validation MRR {trial.value:.4f}" + (f" (repeat of trial {trial.user_attrs['repeat_of']})"
                                                          if "repeat_of" in trial.user_attrs else "")
    else:
        step = max(trial.intermediate_values, default=None)
        outcome = "pruned" + ("" if step is None else f" after step {step} (MRR {trial.intermediate_values[step]:.4f})")
    return f"trial {trial.number}: {outcome},{weights} {seconds:.1f} s"


class progress_bar:
    """Progress of ``study`` towards ``spec.trials`` finished trials, as ``mode`` says (see module doc)."""

    def __init__(self, study: optuna.Study, spec: Any, mode: bool | str | None) -> None:
        self.mode = "bar" if mode is True else (mode or None)
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        self._seen = {t.number for t in finished}
        self._bar = None
        if self.mode == "bar":
            left = max(spec.trials - len(finished), 0)
            self._bar = tqdm(total=left, desc=str(spec.name), unit="trial", leave=True)
        self.refresh_from(study)

    def refresh_from(self, study: optuna.Study) -> None:
        """Show what finished since the last call."""
        if self.mode is None:
            return
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
                sys.stderr.write(f"{study.study_name} {trial_line(trial)}\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Close the bar (if any)."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "progress_bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
