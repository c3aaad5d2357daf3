"""What one trial may spend: :class:`Budget`, read from a study spec's ``budget`` by :func:`parse_budget`.

A fixed-mode trial ranks the validation split in ``stages`` (the pruners' time axis); a trial of a learnable
mode (``learnable``, ``learnable_free``) fine-tunes for ``epochs`` x ``batches_per_epoch`` batches of
``batch_size`` training triples with ``negatives`` negatives each, and reports once per epoch.

**The official budgets.** A learnable trial's epochs and batches per epoch default to the fine-tuning budget
the ULTRA authors used per graph: :data:`OFFICIAL_FINETUNING`, keyed like ``default_finetuning_config`` of
ULTRA's ``script/run_many.py`` (the class name of the dataset; one entry covers every version of a class, as
there). ``None`` batches per epoch (run_many's ``'null'``) is a full pass over the training triples,
ceil(triples / batch_size) batches. Two things scale it down, and only these:

* ``budget_scale`` S (spec key, ``--budget-scale``; 0 < S <= 1, default 1): the batches per epoch taken from
  the table become max(1, round(S x batches)); the epochs stay (each epoch ends with a validation, which
  pruners judge);
* the spec's ``budget``: a key given there (``epochs``, ``batches_per_epoch``, ``batch_size``, ``negatives``) is
  used as given, not scaled. ``budget: {epochs: 2, batches_per_epoch: 50}`` is the default of are-search
  before the official budgets (what studies made then ran; :func:`search.study.spec.stored_spec` keeps it
  for them).

A dataset the table does not name (ATOMIC is in the table but not in are-search's catalogue; every graph of
the catalogue is named) falls back to :data:`FALLBACK_EPOCHS` x :data:`FALLBACK_BATCHES`. The report says
which budget ran (:meth:`Budget.describe`, stored with each trial's ``settings.fine_tune``).

Notes on the official recipe, read from ``script/run.py`` and ``config/*/inference.yaml``: the inductive config
fine-tunes with batch 16 (the transductive one with 8; are-search's ``batch_size`` default is 16 for both);
``run_many.py`` as published calls ``train_and_validate`` without ``batch_per_epoch``, so its runs take a full
pass whatever the table says (``run.py`` does pass the config's ``bpe``); the table's numbers are what its
authors set per graph, and what :data:`OFFICIAL_FINETUNING` holds.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search.errors import StudyError, UsageError
from search.values import as_number, positive_int

__all__ = ["Budget", "OFFICIAL_FINETUNING", "FALLBACK_EPOCHS", "FALLBACK_BATCHES", "official_key", "official_budget",
           "parse_budget", "check_budget_scale"]

_FIXED_BUDGET = ("stages",)
_LEARNABLE_BUDGET = ("epochs", "batches_per_epoch", "batch_size", "negatives")

#: ULTRA's official fine-tuning budgets (``script/run_many.py``, ``default_finetuning_config``): dataset class ->
#: (epochs, batches per epoch; None: a full pass over the training triples). Written from that file; the test
#: ``tests/test_budgets.py`` parses the official file and compares.
OFFICIAL_FINETUNING: dict[str, tuple[int, int | None]] = {
    # transductive: standard graphs
    "CoDExSmall": (1, 4000), "CoDExMedium": (1, 4000), "CoDExLarge": (1, 2000),
    "FB15k237": (1, None), "WN18RR": (1, None), "YAGO310": (1, 2000), "DBpedia100k": (1, 1000),
    "AristoV4": (1, 2000), "ConceptNet100k": (1, 2000), "ATOMIC": (1, 200),
    # transductive: tail-only graphs
    "NELL995": (1, None), "Hetionet": (1, 4000),
    # transductive: sparse graphs
    "WDsinger": (3, None), "FB15k237_10": (1, None), "FB15k237_20": (1, None), "FB15k237_50": (1, 1000),
    "NELL23k": (3, None),
    # inductive: GraIL (every version), ILPC, InGram, MTDEA, Hamaguchi
    "FB15k237Inductive": (1, None), "WN18RRInductive": (1, None), "NELLInductive": (3, None),
    "ILPC2022SmallInductive": (3, None), "ILPC2022LargeInductive": (1, 1000),
    "NLIngram": (3, None), "FBIngram": (3, None), "WKIngram": (3, None),
    "WikiTopicsMT1": (3, None), "WikiTopicsMT2": (3, None), "WikiTopicsMT3": (3, None), "WikiTopicsMT4": (3, None),
    "Metafam": (3, None), "FBNELL": (3, None),
    "HM": (1, 100),
}
#: are-search's dataset names whose official key is not their class name.
_ALIASES = {"ILPC2022:small": "ILPC2022SmallInductive", "ILPC2022:large": "ILPC2022LargeInductive"}
#: The budget of a learnable trial on a dataset without an official one (are-search's default before them).
FALLBACK_EPOCHS = 2
FALLBACK_BATCHES = 50


def official_key(dataset: str) -> str:
    """The key of ``dataset`` (canonical name, ``Class[:version]``) in :data:`OFFICIAL_FINETUNING`: its class."""
    return _ALIASES.get(dataset, dataset.partition(":")[0])


def official_budget(dataset: str | None) -> tuple[int, int | None] | None:
    """(epochs, batches per epoch or None for a full pass) of ``dataset``'s official fine-tuning, None if none."""
    return None if dataset is None else OFFICIAL_FINETUNING.get(official_key(dataset))


def check_budget_scale(value: Any, what: str = "budget_scale") -> float:
    """``value`` (a number, or a numeric string as a flag gives it) as a budget scale S with 0 < S <= 1;
    UsageError (one line naming ``what`` and the value) otherwise."""
    number = as_number(value)
    if number is None or not 0 < number <= 1:
        shown = value.strip() if isinstance(value, str) and number is not None else repr(value)
        raise UsageError(f"{what}: expected a number in (0, 1], got {shown}")
    return float(number)


@dataclass(frozen=True)
class Budget:
    """What one trial may spend: ``stages`` of validation (fixed), or fine-tuning steps (learnable modes).

    epochs; batches_per_epoch: batches per epoch before scaling (None: a full pass over the training
    triples); batch_size: training triples per batch; negatives: negatives per triple; scale: the
    ``budget_scale`` applied to batches per epoch not given in the spec; dataset: the study's dataset;
    official: its row of :data:`OFFICIAL_FINETUNING` (None: not in the table); given: the keys the spec's
    ``budget`` gave (used as given).
    """

    stages: int = 4
    epochs: int = FALLBACK_EPOCHS
    batches_per_epoch: int | None = FALLBACK_BATCHES
    batch_size: int = 16
    negatives: int = 64
    scale: float = 1.0
    dataset: str | None = None
    official: tuple[int, int | None] | None = None
    given: tuple[str, ...] = ()

    def for_mode(self, mode: str) -> dict[str, Any]:
        """The keys of this budget that ``mode`` uses, with their values (defaults filled in; a learnable
        mode's ``batches_per_epoch`` before scaling, None for a full pass, and its ``budget_scale``)."""
        if mode == "fixed":
            return {key: getattr(self, key) for key in _FIXED_BUDGET}
        return {**{key: getattr(self, key) for key in _LEARNABLE_BUDGET}, "budget_scale": self.scale}

    def steps(self, mode: str) -> int:
        """How many intermediate values a trial of ``mode`` reports (the pruners' time axis)."""
        return self.stages if mode == "fixed" else self.epochs

    def batches(self, train_triples: int) -> int:
        """The batches per epoch a trial runs on a training split of ``train_triples`` triples (>= 1)."""
        if "batches_per_epoch" in self.given:
            return int(self.batches_per_epoch)
        full = self.batches_per_epoch if self.batches_per_epoch is not None else -(-train_triples // self.batch_size)
        return max(1, round(self.scale * full))

    def fine_tune_config(self, train_triples: int, **optimiser: Any) -> Any:
        """The :class:`are_model.train.FineTuneConfig` of a trial under this budget on a training split of
        ``train_triples`` triples: its epochs, batches per epoch (:meth:`batches`), batch size and negatives,
        with ``optimiser``'s keys (fusion_lr, body_lr, fusion_weight_decay, seed, ...) as given."""
        from are_model.train import FineTuneConfig

        return FineTuneConfig(epochs=self.epochs, batches_per_epoch=self.batches(train_triples),
                              batch_size=self.batch_size, num_negatives=self.negatives, **optimiser)

    def runs_as(self) -> tuple[Any, ...]:
        """What decides the batches a trial runs, whatever the dataset's size: (epochs, batch_size, negatives,
        per epoch), per epoch being ``("given", n)`` or ``("scaled", table's batches or None, scale)``. Two
        budgets with equal values fine-tune alike (:func:`search.study.prepare.check_compatible`)."""
        per_epoch = (("given", self.batches_per_epoch) if "batches_per_epoch" in self.given
                     else ("scaled", self.batches_per_epoch, self.scale))
        return self.epochs, self.batch_size, self.negatives, per_epoch

    def describe(self, train_triples: int | None = None) -> str:
        """This learnable budget in words: what runs and where it comes from, e.g. ``3 epochs x 6 batches (batches
        of 16 triples, 64 negatives each): Metafam:Metafam's official budget (run_many.py: 3 epochs x a full pass
        = 63 batches), batches per epoch x budget_scale 0.1``. train_triples: the training split's size (None: a
        full pass is named, not counted)."""
        if train_triples is None and self.batches_per_epoch is None and "batches_per_epoch" not in self.given:
            per_epoch = "a full pass" if self.scale == 1 else f"{self.scale:g} of a full pass"
        else:
            per_epoch = f"{self.batches(train_triples or 0)} batches"
        ran = (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} x {per_epoch} (batches of {self.batch_size} "
               f"triples, {self.negatives} negatives each)")
        if self.official is None:
            source = (f"no official budget for {self.dataset}: are-search's {FALLBACK_EPOCHS} epochs x "
                      f"{FALLBACK_BATCHES} batches" if self.dataset else "are-search's default")
        else:
            epochs, batches = self.official
            if batches is None:
                full = "a full pass" + ("" if train_triples is None else
                                        f" = {-(-train_triples // self.batch_size)} batches")
            else:
                full = f"{batches} batches"
            source = f"{self.dataset}'s official budget (run_many.py: {epochs} epoch{'s' if epochs != 1 else ''} x {full})"
        changes = []
        if self.scale != 1 and "batches_per_epoch" not in self.given:
            changes.append(f"batches per epoch x budget_scale {self.scale:g}")
        if self.given:
            changes.append(f"the spec's budget sets {', '.join(self.given)}")
        return f"{ran}: {source}" + (f", {'; '.join(changes)}" if changes else "")


def parse_budget(mode: str, budget: Mapping[str, Any] | None, dataset: str | None = None,
                 scale: float = 1.0) -> Budget:
    """A study spec's ``budget`` for ``mode`` on ``dataset`` (canonical name), with ``budget_scale`` ``scale``.

    A learnable mode's epochs and batches per epoch not given in ``budget`` come from the dataset's official
    budget (:data:`OFFICIAL_FINETUNING`; without a dataset or an entry: 2 x 50). Unknown keys, non-positive
    values or a scale outside (0, 1] raise StudyError (one line naming the key).
    """
    known = _FIXED_BUDGET if mode == "fixed" else _LEARNABLE_BUDGET
    values: dict[str, int] = {}
    for key, value in (budget or {}).items():
        if key not in known:
            raise StudyError(f"budget key {key!r} does not apply to {mode} mode (expected one of: {', '.join(known)})")
        values[key] = positive_int(value, f"budget key {key!r}")
    try:
        scale = check_budget_scale(scale)
    except UsageError as exc:
        raise StudyError(str(exc)) from None
    if mode == "fixed":
        return Budget(**values, scale=scale, dataset=dataset, given=tuple(values))
    official = official_budget(dataset)
    defaults: dict[str, Any] = {} if official is None else {"epochs": official[0], "batches_per_epoch": official[1]}
    return Budget(**{**defaults, **values}, scale=scale, dataset=dataset, official=official, given=tuple(values))
