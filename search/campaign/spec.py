"""Campaign specs: :class:`CampaignSpec`, many datasets and modes of one checkpoint as one reviewable file.

A campaign spec (``campaigns/<name>.yaml``) names the datasets (``datasets``: a list, or ``groups``:
benchmark groups such as ``inductive_e`` or ``all``, see ``are_model.data.registry.GROUPS``), the
checkpoint, the modes (``modes``: a list, or a mapping mode -> ``all`` or the datasets it runs on), the
trial budget (``trials`` per study, or ``total_trials`` split across the studies) and the study settings
every study shares (``seed``, ``sampler``, ``pruner``, ``weight_cap``, ``soft_high``, ``stop``,
``stop_min_trials``, ``stop_tolerance``, ``budget`` per mode), the storage and the warm start
(``warm_start_from``: study names or ``campaign``; ``warm_start_k``), a validation budget every study
ranks at most (``valid_pairs``), fixed mode's settings per entity pass (``settings_per_pass``) and a
time budget (``time_budget``: ``90s``, ``10m``, ``3h``; see :mod:`search.campaign.timing`). Keyword arguments of
:mod:`search.campaign` and CLI flags override the file, as for a study spec; every value passes the
rules of :mod:`search.values` and :func:`search.study.spec.spec_from_values`.

``mode_datasets`` (mode -> datasets) is the stored form of a ``modes`` mapping: :meth:`CampaignSpec.to_attr`
writes ``modes`` as a list and the restricted modes there, and a campaign read back from its studies
passes it in again. A spec file may give it too: ``modes: [fixed, learnable]`` with ``mode_datasets:
{learnable: [Metafam]}`` is ``modes: {fixed: all, learnable: [Metafam]}``; for a mode restricted in
both, the ``modes`` entry wins.

The campaign's studies are :meth:`CampaignSpec.study_specs`: one :class:`search.study.spec.StudySpec` per
(dataset, mode), named exactly as a single ``launch`` names it.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from search.errors import AreSearchError, StudyError
from search.study.names import MODES, canonical_dataset
from search.study.spec import DEFAULTS as STUDY_DEFAULTS
from search.study.spec import OPTIONS, StudySpec, spec_from_values
from search.values import choice, duration, duration_text, non_empty_str, positive_int

__all__ = ["CampaignSpec", "CAMPAIGN_ATTR", "WARM_FROM_CAMPAIGN", "campaign_from_values", "load_campaign_spec",
           "merge_campaign_overrides", "group_datasets", "split_names"]

#: The study user attr holding ``{campaign name: campaign spec}`` for every campaign a study belongs to.
CAMPAIGN_ATTR = "campaigns"
#: ``warm_start_from: campaign``: warm-start from the campaign's own finished studies.
WARM_FROM_CAMPAIGN = "campaign"
#: Keys a study spec takes from the campaign unchanged.
_SHARED = ("seed", "sampler", "pruner", "weight_cap", "soft_high", "stop", "stop_min_trials", "stop_tolerance")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class CampaignSpec:
    """One campaign: ``name``; ``datasets`` (canonical names, in the order given; groups expanded);
    ``checkpoint`` (a name or a path as given); ``modes``; ``trials`` per study or ``total_trials`` for
    all (exactly one is set once validated); the shared study settings (see :mod:`search.study.spec`);
    ``budget``: mode -> a study's per-trial budget; ``storage``: the absolute storage URL a spec file
    names (None: the caller's default); ``warm_start_from``: study names, or ``("campaign",)``;
    ``warm_start_k``: how many similar studies' best settings a new study tries first; ``valid_pairs``: the
    validation budget of every study (None: the whole split; a time budget may set a smaller one per study);
    ``settings_per_pass``: fixed-mode trials a worker runs together (learnable studies run one at a time);
    ``time_budget``: seconds of worker time for the whole campaign (None: no clock; see
    :mod:`search.campaign.timing`); ``budget_scale``: the learnable studies' factor S on the official
    fine-tuning batches per epoch (:mod:`search.study.finetune`; fixed-mode studies ignore it)."""

    name: str
    datasets: tuple[str, ...]
    checkpoint: str
    modes: tuple[str, ...] = ("fixed",)
    trials: int | None = None
    total_trials: int | None = None
    seed: int = STUDY_DEFAULTS["seed"]
    sampler: str = STUDY_DEFAULTS["sampler"]
    pruner: str = STUDY_DEFAULTS["pruner"]
    weight_cap: float = STUDY_DEFAULTS["weight_cap"]
    soft_high: float = STUDY_DEFAULTS["soft_high"]
    stop: bool = STUDY_DEFAULTS["stop"]
    stop_min_trials: int = STUDY_DEFAULTS["stop_min_trials"]
    stop_tolerance: float = STUDY_DEFAULTS["stop_tolerance"]
    budget: dict[str, dict[str, int]] = field(default_factory=dict)
    storage: str | None = None
    warm_start_from: tuple[str, ...] = ()
    warm_start_k: int = 3
    mode_datasets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    valid_pairs: int | None = None
    settings_per_pass: int = 1
    time_budget: float | None = None
    budget_scale: float = 1.0

    def pairs(self) -> list[tuple[str, str]]:
        """The campaign's (dataset, mode) pairs: datasets in order, modes in order within a dataset; a mode
        restricted by ``mode_datasets`` runs on those datasets only."""
        return [(dataset, mode) for dataset in self.datasets for mode in self.modes
                if mode not in self.mode_datasets or dataset in self.mode_datasets[mode]]

    @property
    def study_names(self) -> list[str]:
        """``<dataset>/<mode>`` of every study, in campaign order."""
        return [f"{dataset}/{mode}" for dataset, mode in self.pairs()]

    def study_specs(self, budgets: Mapping[str, int] | None = None) -> list[StudySpec]:
        """One StudySpec per (dataset, mode), datasets in order, modes in order within a dataset.

        budgets: study name -> its trial budget (default: ``trials``, or an even split of ``total_trials``,
        see :func:`search.campaign.allocation.initial_budgets`).
        """
        from search.campaign.allocation import initial_budgets

        pairs = self.pairs()
        names = self.study_names
        budgets = dict(budgets) if budgets is not None else initial_budgets(self, names)
        shared = {key: getattr(self, key) for key in _SHARED}
        return [spec_from_values({"dataset": dataset, "checkpoint": self.checkpoint, "mode": mode,
                                  "trials": budgets[name], "budget": self.budget.get(mode, {}), **shared,
                                  "valid_pairs": self.valid_pairs,
                                  "settings_per_pass": self.settings_per_pass if mode == "fixed" else 1,
                                  "budget_scale": 1.0 if mode == "fixed" else self.budget_scale},
                                 f"campaign {self.name}")
                for (dataset, mode), name in zip(pairs, names)]

    def to_attr(self) -> dict[str, Any]:
        """JSON-ready values (lists for tuples; the storage left out: where it lives is not part of it)."""
        values = dataclasses.asdict(self)
        values.update(datasets=list(self.datasets), modes=list(self.modes), warm_start_from=list(self.warm_start_from),
                      storage=None, mode_datasets={m: list(d) for m, d in self.mode_datasets.items()},
                      time_budget=None if self.time_budget is None else duration_text(self.time_budget))
        return values


_FIELDS = {f.name for f in dataclasses.fields(CampaignSpec)}
#: Keys of a campaign spec file: the fields, ``groups`` (expanded into ``datasets``).
KEYS = sorted(_FIELDS | {"groups"})


def _modes(raw: Any, restricted: Any, datasets: tuple[str, ...],
           where: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``modes`` as a list (``fixed,learnable``: every dataset) or a mapping mode -> ``all`` or a list of
    datasets (``{fixed: all, learnable: [NELLInductive:v1, Metafam]}``); ``mode_datasets`` is the stored
    form of such restrictions. Returns (modes, mode -> canonical datasets of a restricted mode); a dataset
    that is unknown or not the campaign's is a StudyError naming ``modes.<mode>`` (or
    ``mode_datasets.<mode>``)."""
    what = f"{where}: key 'modes'"
    if restricted is not None and not isinstance(restricted, Mapping):
        raise StudyError(f"{where}: key 'mode_datasets': expected a mapping of mode -> datasets, got {restricted!r}")
    restrictions = {mode: (chosen, f"{where}: key 'mode_datasets.{mode}'")
                    for mode, chosen in (restricted or {}).items()}
    if isinstance(raw, Mapping):
        names = list(raw)
        for mode, chosen in raw.items():
            if chosen != "all":
                restrictions[mode] = (chosen, f"{where}: key 'modes.{mode}'")
    else:
        names = split_names(raw, what)
    modes = tuple(dict.fromkeys(choice(m, MODES, what) for m in names))
    out: dict[str, tuple[str, ...]] = {}
    for mode, (chosen, label) in restrictions.items():
        if mode not in modes:
            raise StudyError(f"{where}: key 'mode_datasets': {mode!r} is not one of the campaign's modes "
                             f"({', '.join(modes)})")
        picked = tuple(dict.fromkeys(_dataset(d, label) for d in split_names(chosen, label)))
        stray = [d for d in picked if d not in datasets]
        if stray:
            raise StudyError(f"{label}: {stray[0]} is not one of the campaign's datasets")
        out[mode] = picked
    return modes, out


def _dataset(name: str, what: str) -> str:
    """The canonical spelling of dataset ``name``; StudyError naming ``what`` for an unknown one."""
    from are_model.data import UnknownDatasetError

    try:
        return canonical_dataset(name)
    except UnknownDatasetError as exc:
        raise StudyError(f"{what}: {exc}") from None


def _mode_budget(mode: str, raw: Any, where: str) -> dict[str, int]:
    """``budget.<mode>``: one mode's per-trial budget, name -> positive integer with the names of that mode
    (:func:`search.study.finetune.parse_budget`); StudyError naming ``budget.<mode>`` or ``budget.<mode>.<name>``."""
    from search.study.finetune import parse_budget

    what = f"{where}: key 'budget.{mode}'"
    if not isinstance(raw, Mapping):
        raise StudyError(f"{what}: expected a mapping of name -> positive integer, got {raw!r}")
    checked = {str(key): positive_int(value, f"{where}: key 'budget.{mode}.{key}'") for key, value in raw.items()}
    try:
        parse_budget(mode, checked)
    except AreSearchError as exc:
        raise StudyError(f"{what}: {exc}") from None
    return checked


def split_names(value: Any, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string (``"A,B"``); StudyError when empty."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [non_empty_str(item, what).strip() if not isinstance(item, str) else item.strip() for item in value]
    else:
        raise StudyError(f"{what}: expected a list or a comma-separated string, got {value!r}")
    items = [item for item in items if item]
    if not items:
        raise StudyError(f"{what}: expected at least one name")
    return items


def group_datasets(groups: Sequence[str], what: str) -> list[str]:
    """The datasets of benchmark ``groups`` (``all``: every group), in the tables' order."""
    from are_model.data.registry import GROUPS

    known = tuple(GROUPS) + ("all",)
    names: list[str] = []
    for group in groups:
        choice(group, known, what)
        for name in (n for g in GROUPS for n in GROUPS[g]) if group == "all" else GROUPS[group]:
            if name not in names:
                names.append(name)
    return names


def campaign_from_values(values: Mapping[str, Any], where: str, *, base: Path | None = None,
                         default_name: str | None = None) -> CampaignSpec:
    """Validate plain values into a CampaignSpec; errors name ``where`` (a file, or
    :data:`search.study.spec.OPTIONS` for keyword arguments and flags) and the key (StudyError, one line).

    ``datasets`` and ``groups`` may both be given (their union, datasets first); ``trials`` and
    ``total_trials`` may not. Datasets are stored in the loader's canonical spelling, once each.
    """
    from search.storage import StorageURL

    unknown = [key for key in values if key not in KEYS]
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    given = {key: value for key, value in values.items() if value is not None}
    try:
        name = non_empty_str(given.get("name", default_name or "default"), f"{where}: key 'name'")
        if not _NAME.match(name):
            raise StudyError(f"{where}: key 'name': {name!r}: use letters, digits, '_', '.' and '-'")
        names: list[str] = []
        if "datasets" in given:
            names += [canonical_dataset(d) for d in split_names(given["datasets"], f"{where}: key 'datasets'")]
        if "groups" in given:
            names += [canonical_dataset(d) for d in group_datasets(split_names(given["groups"], f"{where}: key 'groups'"),
                                                                    f"{where}: key 'groups'")]
        if not names:
            raise StudyError(f"{where}: key 'datasets' or 'groups' is required")
        datasets = tuple(dict.fromkeys(names))
        if "checkpoint" not in given:
            raise StudyError(f"{where}: key 'checkpoint' is required")
        checkpoint = non_empty_str(given["checkpoint"], f"{where}: key 'checkpoint'")
        modes, mode_datasets = _modes(given.get("modes", "fixed"), given.get("mode_datasets"), datasets, where)
        if "trials" in given and "total_trials" in given:
            raise StudyError(f"{where}: give 'trials' (per study) or 'total_trials' (for the campaign), not both")
        trials = positive_int(given["trials"], f"{where}: key 'trials'") if "trials" in given else None
        total = positive_int(given["total_trials"], f"{where}: key 'total_trials'") if "total_trials" in given else None
        if trials is None and total is None:
            trials = STUDY_DEFAULTS["trials"]
        count = sum(1 for d in datasets for m in modes if m not in mode_datasets or d in mode_datasets[m])
        if count == 0:
            raise StudyError(f"{where}: key 'modes': no (dataset, mode) left to run")
        if total is not None and total < count:
            raise StudyError(f"{where}: key 'total_trials': {total} is fewer than the campaign's "
                             f"{count} studies (one trial each at least)")
        budget = given.get("budget", {})
        if not isinstance(budget, Mapping) or any(k not in MODES for k in budget):
            raise StudyError(f"{where}: key 'budget': expected a mapping of mode ({', '.join(MODES)}) -> "
                             "{name: positive integer}")
        budget = {mode: _mode_budget(mode, raw, where) for mode, raw in budget.items()}
        warm = tuple(split_names(given["warm_start_from"], f"{where}: key 'warm_start_from'")) \
            if given.get("warm_start_from") else ()
        warm_k = positive_int(given.get("warm_start_k", 3), f"{where}: key 'warm_start_k'")
        valid_pairs = positive_int(given["valid_pairs"], f"{where}: key 'valid_pairs'") \
            if "valid_pairs" in given else None
        per_pass = positive_int(given.get("settings_per_pass", 1), f"{where}: key 'settings_per_pass'")
        time_budget = duration(given["time_budget"], f"{where}: key 'time_budget'") if "time_budget" in given else None
        from search.study.finetune import check_budget_scale

        budget_scale = check_budget_scale(given.get("budget_scale", 1.0), f"{where}: key 'budget_scale'")
        if budget_scale != 1 and not any(mode != "fixed" for mode in modes):
            raise StudyError(f"{where}: key 'budget_scale': scales the fine-tuning budget of the learnable modes, "
                             f"and the campaign has none (modes: {', '.join(modes)}; got {budget_scale:g})")
        storage = None
        if given.get("storage") is not None:
            storage = StorageURL.parse(given["storage"], base).url
        shared = {key: given[key] for key in _SHARED if key in given}
        spec = CampaignSpec(name=name, datasets=datasets, checkpoint=checkpoint, modes=modes, trials=trials,
                            total_trials=total, budget=budget, storage=storage,
                            warm_start_from=warm, warm_start_k=warm_k, mode_datasets=mode_datasets,
                            valid_pairs=valid_pairs, settings_per_pass=per_pass, time_budget=time_budget,
                            budget_scale=budget_scale, **shared)
        # the study settings pass the study spec's own rules (names the key in the campaign's words)
        spec_from_values({"dataset": datasets[0], "checkpoint": checkpoint, "mode": modes[0], **shared,
                          "budget": spec.budget.get(modes[0], {})}, where)
        for mode in modes[1:]:
            spec_from_values({"dataset": datasets[0], "checkpoint": checkpoint, "mode": mode,
                              "budget": spec.budget.get(mode, {})}, where)
    except StudyError:
        raise
    except AreSearchError as exc:  # a value rule's error: it names the key already
        text = str(exc)
        raise StudyError(text if text.startswith(where) else f"{where}: {text}") from None
    except Exception as exc:  # an unknown dataset name from the loader
        from are_model.data import UnknownDatasetError

        if isinstance(exc, UnknownDatasetError):
            raise StudyError(f"{where}: key 'datasets': {exc}") from None
        raise
    return spec


def load_campaign_spec(path: str | os.PathLike) -> CampaignSpec:
    """Read and validate ``campaigns/<name>.yaml``; the name defaults to the file's stem. A file that holds
    no mapping (an empty one, a list, text) is a StudyError saying what it holds."""
    from search.flags.yamlio import kind_of, read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: the campaign spec is {kind_of(data)}: expected a mapping of keys "
                         "(datasets: ..., checkpoint: ...)")
    return campaign_from_values(data, str(path), base=Path(path).resolve().parent, default_name=Path(path).stem)


def merge_campaign_overrides(spec: CampaignSpec, **overrides: Any) -> CampaignSpec:
    """A copy of ``spec`` with the given values (None: not given), validated again.

    ``datasets`` or ``groups`` replace the spec's datasets; ``trials`` replaces ``total_trials`` and the
    other way round. Errors name :data:`search.study.spec.OPTIONS`.
    """
    values = spec.to_attr()
    values["storage"] = spec.storage
    given = {key: value for key, value in overrides.items() if value is not None}
    if "datasets" in given or "groups" in given:
        values.pop("datasets")
    if "modes" in given:
        values["mode_datasets"] = None
    if "trials" in given:
        values["total_trials"] = None
    if "total_trials" in given:
        values["trials"] = None
    values.update(given)
    return campaign_from_values(values, OPTIONS)
