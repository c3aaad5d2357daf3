"""Study specs: :class:`StudySpec`, one study as a reviewable file, validated once where it enters.

A spec comes from a YAML file (``studies/<dataset>.yaml``, read by :func:`search.flags.yamlio.read_yaml`),
from keyword arguments of the Python API, or from CLI flags; flags and keywords override the file
(:func:`merge_overrides`). Whatever the source, every value passes the same rules
(:mod:`search.values`), the dataset is stored in the loader's canonical spelling and the storage as
an absolute URL, so a spec that exists is valid. Errors name where the values came from (the spec
file's path, ``options`` for keyword arguments and flags, or a stored study) and the key.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from search.errors import AreSearchError, StudyError
from search.study.names import MODES, StudyName, canonical_dataset
from search.pruners import PRUNERS
from search.samplers import SAMPLERS
from search.values import (as_number, bounds, choice, non_empty_str, non_negative_int, positive_float, positive_int,
                           weight_bound)
from search.values import path as path_rule

__all__ = ["StudySpec", "SPEC_ATTR", "OPTIONS", "load_study_spec", "merge_overrides", "spec_from_values",
           "stored_spec", "DEFAULTS"]

#: The study user attr that stores the spec a study was launched with.
SPEC_ATTR = "spec"
#: ``where`` of values given as keyword arguments or CLI flags (not read from a file).
OPTIONS = "options"


@dataclass(frozen=True)
class StudySpec:
    """One study: what it searches (dataset, checkpoint, mode, space), how (sampler, pruner, seed,
    budget per trial) and how long (``trials``: finished trials to reach).

    dataset: canonical dataset name; checkpoint: a checkpoint name (``fusion``) or file path as given;
    space: parameter -> ``[low, high]`` (soft bounds), a pinned number, or ``frozen`` (see
    :mod:`search.study.spaces`); weight_cap / soft_high: a fixed weight's hard cap and default soft upper
    bound (see :mod:`search.study.bounds`); budget: what one trial may spend (see
    :class:`search.study.finetune.Budget`; a learnable mode's epochs and batches per epoch not given there are the
    dataset's official fine-tuning budget); budget_scale: S in (0, 1], the factor on the official batches per
    epoch of a learnable mode (1: the official budget; must be 1 in fixed mode); stop, stop_min_trials, stop_tolerance: the stopping rule
    (:mod:`search.study.stopping`; tolerance in validation MRR); settings_per_pass: fixed mode's trials a
    worker runs together, their settings ranked in shared entity passes (:mod:`search.runners.step`;
    1: one at a time); storage: the absolute storage URL a spec
    file names (None: the caller's default); warm_start_from, warm_start_k: a study created now first
    tries, after its known points, the best settings of the ``warm_start_k`` studies of
    ``warm_start_from`` (names ``<dataset>/<mode>`` in the same storage) whose graphs are nearest to
    its own (:mod:`search.study.warmstart`); valid_pairs: a validation budget, the number of (anchor, relation)
    pairs of the validation split every trial ranks: the first ``valid_pairs`` of the study's seeded order,
    stratified by relation (None: the whole split; see :func:`search.objectives.context.stage_plan`);
    from_flags: the absolute path of a user's flags file whose fusion weights a launch queues as a known point
    (:mod:`search.flags.current`; None: none).
    """

    dataset: str
    checkpoint: str
    mode: str = "fixed"
    trials: int = 40
    seed: int = 0
    sampler: str = "gp"
    pruner: str = "paired"
    space: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None
    weight_cap: float = 4.0
    soft_high: float = 1.0
    stop: bool = True
    stop_min_trials: int = 20
    stop_tolerance: float = 0.002
    settings_per_pass: int = 1
    from_flags: str | None = None
    warm_start_from: list[str] = field(default_factory=list)
    warm_start_k: int = 3
    valid_pairs: int | None = None
    budget_scale: float = 1.0

    @property
    def name(self) -> StudyName:
        """The study's name ``<dataset>/<mode>``."""
        return StudyName(self.dataset, self.mode)

    def search_space(self) -> Any:
        """This spec's :class:`search.study.spaces.SearchSpace`."""
        from search.study.spaces import SearchSpace

        return SearchSpace(self.mode, self.space, weight_cap=self.weight_cap, soft_high=self.soft_high)

    def fine_tune_budget(self) -> Any:
        """This study's :class:`search.study.finetune.Budget` (its dataset's official budget filled in)."""
        from search.study.finetune import parse_budget

        return parse_budget(self.mode, self.budget, self.dataset, self.budget_scale)

    def to_attr(self) -> dict[str, Any]:
        """The JSON-ready dict stored as the study's ``spec`` user attr (without the storage)."""
        values = dataclasses.asdict(self)
        values["storage"] = None  # where the study lives is not part of it
        return values


#: Defaults of the optional keys (shown by ``--help``).
DEFAULTS = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(StudySpec)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
_FIELDS = {f.name for f in dataclasses.fields(StudySpec)}
_REQUIRED = ("dataset", "checkpoint")


def _space(space: Any, where: str) -> dict[str, Any]:
    if not isinstance(space, Mapping):
        raise StudyError(f"{where}: key 'space': expected a mapping of parameter -> [low, high]")
    checked: dict[str, Any] = {}
    for key, raw in space.items():
        label = f"{where}: key 'space.{key}'"
        if not isinstance(key, str) or not key:
            raise StudyError(f"{label}: parameter names must be strings")
        if raw == "frozen":
            checked[key] = raw
        elif isinstance(raw, (list, tuple)):
            checked[key] = list(bounds(raw, label))
        else:
            number = as_number(raw)
            if number is None:
                raise StudyError(f"{label}: expected [low, high], a number or 'frozen', got {raw!r}")
            checked[key] = number
    return checked


def _budget(budget: Any, where: str) -> dict[str, int]:
    if not isinstance(budget, Mapping):
        raise StudyError(f"{where}: key 'budget': expected a mapping of name -> positive integer")
    return {str(key): positive_int(value, f"{where}: key 'budget.{key}'") for key, value in budget.items()}


def _study_names(value: Any, what: str) -> list[str]:
    """Study names ``<dataset>/<mode>`` (each checked as written, without a dataset lookup) from a list
    or one comma-separated string; None is none. StudyError naming ``what`` otherwise."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise StudyError(f"{what}: expected a list of study names <dataset>/<mode>, got {value!r}")
    names = [item.strip() for item in items if item.strip()]
    for name in names:
        try:
            StudyName.parse(name)
        except StudyError as exc:
            raise StudyError(f"{what}: {exc}") from None
    return names


def spec_from_values(values: Mapping[str, Any], where: str, *, base: Path | None = None) -> StudySpec:
    """Validate plain values into a StudySpec; errors name ``where`` (a file, or :data:`OPTIONS` for keyword
    arguments and flags) and the key.

    Relative storage paths resolve against ``base`` (default: the working directory). ``weight_cap`` and
    ``soft_high`` must be > 0 each and ``soft_high`` <= ``weight_cap``. Raises StudyError (one line).
    """
    from are_model.data import UnknownDatasetError
    from search.study.spaces import SearchSpace
    from search.storage import StorageURL

    for key in values:
        if key not in _FIELDS:
            raise StudyError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(_FIELDS))})")
    for key in _REQUIRED:
        if values.get(key) is None:
            raise StudyError(f"{where}: key {key!r} is required")
    out = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None or k == "storage"}}
    try:
        out["dataset"] = canonical_dataset(non_empty_str(out["dataset"], f"{where}: key 'dataset'"))
        out["checkpoint"] = non_empty_str(out["checkpoint"], f"{where}: key 'checkpoint'")
        out["mode"] = choice(out["mode"], MODES, f"{where}: key 'mode'")
        out["sampler"] = choice(out["sampler"], SAMPLERS, f"{where}: key 'sampler'")
        out["pruner"] = choice(out["pruner"], PRUNERS, f"{where}: key 'pruner'")
        out["trials"] = positive_int(out["trials"], f"{where}: key 'trials'")
        out["seed"] = non_negative_int(out["seed"], f"{where}: key 'seed'")
        out["space"] = _space(out["space"] if out["space"] is not None else {}, where)
        out["weight_cap"] = weight_bound(out["weight_cap"], f"{where}: key 'weight_cap'")
        out["soft_high"] = weight_bound(out["soft_high"], f"{where}: key 'soft_high'")
        if out["soft_high"] > out["weight_cap"]:
            default = " (the default)" if out["soft_high"] == DEFAULTS["soft_high"] else ""
            raise StudyError(f"{where}: keys 'soft_high' and 'weight_cap': soft_high {out['soft_high']:g}{default} "
                             f"is above weight_cap {out['weight_cap']:g}; a weight's first upper bound may not pass "
                             "its cap")
        if not isinstance(out["stop"], bool):
            raise StudyError(f"{where}: key 'stop': expected true or false, got {out['stop']!r}")
        out["stop_min_trials"] = positive_int(out["stop_min_trials"], f"{where}: key 'stop_min_trials'")
        out["stop_tolerance"] = positive_float(out["stop_tolerance"], f"{where}: key 'stop_tolerance'")
        out["settings_per_pass"] = positive_int(out["settings_per_pass"], f"{where}: key 'settings_per_pass'")
        if out["settings_per_pass"] > 1 and out["mode"] != "fixed":
            raise StudyError(f"{where}: key 'settings_per_pass': several settings per pass apply to fixed mode "
                             f"only (a learnable trial fine-tunes its own model), got {out['settings_per_pass']}")
        out["warm_start_from"] = _study_names(out["warm_start_from"], f"{where}: key 'warm_start_from'")
        out["warm_start_k"] = positive_int(out["warm_start_k"], f"{where}: key 'warm_start_k'")
        if out.get("from_flags") is not None:
            out["from_flags"] = str(path_rule(out["from_flags"], f"{where}: key 'from_flags'", base))
        if out.get("valid_pairs") is not None:
            out["valid_pairs"] = positive_int(out["valid_pairs"], f"{where}: key 'valid_pairs'")
        out["budget"] = _budget(out["budget"] if out["budget"] is not None else {}, where)
        from search.study.finetune import check_budget_scale

        out["budget_scale"] = check_budget_scale(out["budget_scale"], f"{where}: key 'budget_scale'")
        if out["budget_scale"] != 1 and out["mode"] == "fixed":
            raise StudyError(f"{where}: key 'budget_scale': scales the fine-tuning budget of the learnable modes, "
                             f"not fixed mode (got {out['budget_scale']:g})")
        if out.get("storage") is not None:
            if not isinstance(out["storage"], (str, os.PathLike)):
                raise StudyError(f"{where}: key 'storage': expected a URL string, got {out['storage']!r}")
            try:
                out["storage"] = StorageURL.parse(out["storage"], base).url
            except AreSearchError as exc:
                raise StudyError(f"{where}: key 'storage': {exc}") from None
    except AreSearchError as exc:
        raise StudyError(str(exc)) from None
    except UnknownDatasetError as exc:
        raise StudyError(f"{where}: key 'dataset': {exc}") from None
    try:
        SearchSpace(out["mode"], out["space"], weight_cap=out["weight_cap"],
                    soft_high=out["soft_high"])  # the space's own rules (names, log bounds, simplex, caps)
        from search.study.finetune import parse_budget

        parse_budget(out["mode"], out["budget"], out["dataset"], out["budget_scale"])
    except AreSearchError as exc:
        raise StudyError(f"{where}: {exc}") from None
    return StudySpec(**out)


def load_study_spec(path: str | os.PathLike) -> StudySpec:
    """Read and validate a study spec file; errors name the file, the line or the key (a file that
    holds no mapping, e.g. an empty one, is a StudyError saying what it holds)."""
    from search.flags.yamlio import kind_of, read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: the study spec is {kind_of(data)}: expected a mapping of keys "
                         "(dataset: ..., checkpoint: ...)")
    return spec_from_values(data, str(path))


def merge_overrides(spec: StudySpec, **overrides: Any) -> StudySpec:
    """A copy of ``spec`` with the given values (None means "not given"), validated again.

    ``space`` and ``budget`` update the spec's mappings key by key. Errors name :data:`OPTIONS`: the
    spec's own values passed once already, so a new error comes from what is given here.
    """
    values = dataclasses.asdict(spec)
    for key, value in overrides.items():
        if key not in _FIELDS:
            raise StudyError(f"{OPTIONS}: unknown study setting {key!r}")
        if value is None:
            continue
        values[key] = {**values[key], **value} if key in ("space", "budget") and isinstance(value, Mapping) else value
    return spec_from_values(values, OPTIONS)


def stored_spec(study: Any) -> StudySpec:
    """The StudySpec a study was launched with (its ``spec`` user attr); StudyError when it has none."""
    stored = study.user_attrs.get(SPEC_ATTR)
    if not isinstance(stored, Mapping) or "dataset" not in stored or "checkpoint" not in stored:
        raise StudyError(f"study {study.study_name} has no stored spec (it was not made by are-search); "
                         "launch it again with the same settings")
    values = {k: v for k, v in stored.items() if k in _FIELDS}
    values["storage"] = None
    if "budget_scale" not in stored and stored.get("mode", "fixed") != "fixed":
        # made before the official budgets: its trials ran the old default, and the rest of it must too
        from search.study.finetune import FALLBACK_BATCHES, FALLBACK_EPOCHS

        values["budget"] = {"epochs": FALLBACK_EPOCHS, "batches_per_epoch": FALLBACK_BATCHES,
                            **(stored.get("budget") or {})}
    return spec_from_values(values, f"study {study.study_name}")
