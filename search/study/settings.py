"""The schema of a trial's record: :class:`TrialSettings`, stored as the trial's user attr ``settings``.

One writer (the objective, :mod:`search.objectives.fusion`) and every reader (export, report, status, the
campaign tables) go through this class, so a field renamed or added here is renamed everywhere.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from search.errors import StudyError

__all__ = ["SETTINGS_ATTR", "TrialSettings"]

#: The user attr that holds a trial's settings.
SETTINGS_ATTR = "settings"


@dataclass
class TrialSettings:
    """Everything needed to re-run one trial, and what it learned.

    Weights are dimensionless fusion weights (``r + w_sim·Δsim + w_prompt·Δprompt``); in learnable
    mode they are the *initial* weights (softmax of ``fusion_init_logits``) and ``learned_weights``
    the weights after fine-tuning. Learning rates are per optimiser step; ``body_lr`` None is a
    frozen body. ``encoder`` is the text encoder actually used (e.g. ``minilm``), ``split`` the split
    the trial's value was measured on (always ``valid``).
    """

    use_learnable_fusion: bool
    similarity_enhancer_weight: float
    prompt_enhancer_weight: float
    fusion_lr: float | None = None
    fusion_weight_decay: float | None = None
    body_lr: float | None = None
    fusion_init_logits: list[float] | None = None
    fine_tune: dict[str, Any] | None = None
    learned_weights: list[float] | None = None
    dataset: str | None = None
    checkpoint: str | None = None
    checkpoint_path: str | None = None
    encoder: str | None = None
    split: str | None = None

    @property
    def mode(self) -> str:
        """``learnable`` or ``fixed``."""
        return "learnable" if self.use_learnable_fusion else "fixed"

    @property
    def weights(self) -> tuple[float, float]:
        """(w_sim, w_prompt): the fixed weights, or the initial ones in learnable mode."""
        return float(self.similarity_enhancer_weight), float(self.prompt_enhancer_weight)

    @property
    def effective_weights(self) -> tuple[float, float]:
        """The weights the trial's model ranked with at the end: learned ones when there are."""
        if self.learned_weights is not None and len(self.learned_weights) == 2:
            return float(self.learned_weights[0]), float(self.learned_weights[1])
        return self.weights

    def to_attr(self) -> dict[str, Any]:
        """A JSON-ready dict for ``trial.set_user_attr(SETTINGS_ATTR, ...)``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, value: Any, where: str = "trial") -> "TrialSettings":
        """Read a stored ``settings`` attr; unknown keys are ignored (newer versions may add some)."""
        if not isinstance(value, Mapping):
            raise StudyError(f"{where} has no '{SETTINGS_ATTR}' user attr (not run by are-search)")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("use_learnable_fusion", "similarity_enhancer_weight", "prompt_enhancer_weight")
                   if k not in value]
        if missing:
            raise StudyError(f"{where}: '{SETTINGS_ATTR}' lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in value.items() if k in known})

    @classmethod
    def from_trial(cls, trial: Any, study_name: str | None = None) -> "TrialSettings":
        """The settings of an Optuna (frozen) trial."""
        where = f"study {study_name}: trial {trial.number}" if study_name else f"trial {trial.number}"
        return cls.from_attr(trial.user_attrs.get(SETTINGS_ATTR), where)

    @classmethod
    def maybe_from_trial(cls, trial: Any) -> "TrialSettings | None":
        """Like :meth:`from_trial`, None for a trial without settings (e.g. failed before sampling)."""
        try:
            return cls.from_trial(trial)
        except StudyError:
            return None
