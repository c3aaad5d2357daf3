"""The schema of a trial's record: :class:`TrialSettings`, stored as the trial's user attr ``settings``.

One writer (the objective, :mod:`search.objectives.fusion`) and every reader (export, report, status, the
campaign tables) go through this class, so a field renamed or added here is renamed everywhere. The
fusion weights are one vector [E] in the order of :data:`search.study.fusion_terms.FUSION_TERMS`; in the
stored attr each weight sits under its term's ``param`` key (``similarity_enhancer_weight``,
``prompt_enhancer_weight``), right after ``use_learnable_fusion``, as every earlier version wrote it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from search.errors import StudyError
from search.study import fusion_terms
from search.study.fusion_terms import WEIGHT_PARAMS

__all__ = ["SETTINGS_ATTR", "TrialSettings"]

#: The user attr that holds a trial's settings.
SETTINGS_ATTR = "settings"


@dataclass
class TrialSettings:
    """Everything needed to re-run one trial, and what it learned.

    ``weights`` [E] are dimensionless fusion weights (``r + Σ_e w_e·Δ_e``, here ``w_sim·Δsim +
    w_prompt·Δprompt``), in fusion-term order (numbers as floats, anything else as stored); in
    learnable mode they are the *initial* weights (softmax of ``fusion_init_logits``) and
    ``learned_weights`` [E] the weights after fine-tuning. ``free_fusion`` marks a learnable_free trial
    (weights softplus of ``fusion_init_logits``, no sum-to-one constraint; stored only when true, so the
    records of the other modes are what they always were). Learning rates are per optimiser step; ``body_lr`` None is a frozen body.
    ``encoder`` is the text encoder actually used (e.g. ``minilm``), ``split`` the split the trial's
    value was measured on (always ``valid``).
    """

    use_learnable_fusion: bool
    weights: tuple[float, ...]
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
    free_fusion: bool = False

    def __post_init__(self) -> None:
        # numbers become floats (as the objective wrote them); anything else stays, for export to name it
        self.weights = tuple(float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else w
                             for w in self.weights)
        if len(self.weights) != len(WEIGHT_PARAMS):
            raise StudyError(f"trial settings need {len(WEIGHT_PARAMS)} fusion weights ({', '.join(WEIGHT_PARAMS)}), "
                             f"got {len(self.weights)}")

    @property
    def mode(self) -> str:
        """``fixed``, ``learnable`` or ``learnable_free``."""
        if not self.use_learnable_fusion:
            return "fixed"
        return "learnable_free" if self.free_fusion is True else "learnable"

    @property
    def effective_weights(self) -> tuple[float, ...]:
        """The weights [E] the trial's model ranked with at the end: learned ones when there are."""
        if self.learned_weights is not None and len(self.learned_weights) == len(self.weights):
            return tuple(float(w) for w in self.learned_weights)
        return tuple(float(w) for w in self.weights)

    def weights_text(self, digits: int = 4) -> str:
        """``w_sim=0.2000 w_prompt=0.8000``: each weight with its term's symbol."""
        return fusion_terms.weights_text(self.weights, digits)

    def to_attr(self) -> dict[str, Any]:
        """A JSON-ready dict for ``trial.set_user_attr(SETTINGS_ATTR, ...)``: one key per fusion term."""
        values = dataclasses.asdict(self)
        del values["weights"]
        if not values["free_fusion"]:
            del values["free_fusion"]
        learnable = values.pop("use_learnable_fusion")
        return {"use_learnable_fusion": learnable, **fusion_terms.params_of(self.weights), **values}

    @classmethod
    def from_attr(cls, value: Any, where: str = "trial") -> "TrialSettings":
        """Read a stored ``settings`` attr; unknown keys are ignored (newer versions may add some).

        Raises StudyError naming ``where`` when ``value`` is not a mapping or lacks a required key.
        """
        if not isinstance(value, Mapping):
            raise StudyError(f"{where} has no '{SETTINGS_ATTR}' user attr (not run by are-search)")
        missing = [k for k in ("use_learnable_fusion", *fusion_terms.required()) if k not in value]
        if missing:
            raise StudyError(f"{where}: '{SETTINGS_ATTR}' lacks {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)} - {"weights"}
        return cls(weights=fusion_terms.weights_of(value), **{k: v for k, v in value.items() if k in known})

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
