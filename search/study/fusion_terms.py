"""The fusion terms: one row per enhancer of the model, from which every name of a fusion weight derives.

The model fuses Z̃ = Z + Σ_e w_e·Δ_e on the query relation's row, one weight per enhancer in the order
of ``are_model.model.ENHANCERS`` (``AREModel.enhancer_names``). :data:`FUSION_TERMS` holds one
:class:`FusionTerm` per enhancer, in that order, so a weight vector [E] (K settings: [K, E]) is indexed
by it, and every place that names a weight iterates over it instead of naming two:

* the search spaces (:mod:`search.study.spaces`): fixed mode's Optuna parameter per term (``param``),
  learnable mode's initial share per term but the last (``initial_param``, stick-breaking, see
  :func:`weights_from_shares`), the known points (``reference``: the paper's 0.2/0.8);
* a trial's stored ``settings`` (:mod:`search.study.settings`): one key per term (``param``);
* flags.yaml (:mod:`search.flags.export`): one key per term (``flag_key``);
* the evaluate command: one option per term (``option``, ``--w-sim``);
* figures, tables, CSV columns and log lines (:mod:`search.reports`, the CLI): ``symbol`` and ``label``.

The names of the two existing terms are those studies, settings and flags files already hold
(``similarity_enhancer_weight``, ``prompt_enhancer_weight``, ``initial_similarity_weight``, ``w_sim``...):
they must never change, or stored studies would no longer open.

Adding a third enhancer weight touches five files: ``are_model/enhancers.py`` (the enhancer module, its
delta [U, d] for row q), ``are_model/model.py`` (its name in ``ENHANCERS``, its initial share in
``DEFAULT_FUSION``, building it and its delta in ``AREModel._enhancer_deltas``), ``are_model/checkpoint.py``
(the key layout of checkpoints that carry it, and loading older ones without it), one row here (with
``absent=0.0``, so studies stored before it still read), and ``tests/test_enhancers.py``. Spaces,
settings, flags, plots, reports and the CLI follow from this table. One set of terms holds for every ARE
checkpoint a search handles; a model whose enhancers differ from this table is refused by
:func:`check_enhancers` (a search would otherwise mislabel its weights).

This module is torch-free: a CLI that only reads studies does not load the model.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.errors import StudyError

__all__ = [
    "FusionTerm",
    "FUSION_TERMS",
    "ENHANCERS",
    "WEIGHT_PARAMS",
    "SHARE_PARAMS",
    "INITIAL_PARAMS",
    "WEIGHT_FLAG_KEYS",
    "REFERENCE_LABEL",
    "NONE_LABEL",
    "KNOWN_WEIGHTS",
    "check_enhancers",
    "required",
    "weights_of",
    "params_of",
    "weights_text",
    "joined",
    "symbols",
    "options_text",
    "weights_from_shares",
    "shares_from_weights",
]


@dataclass(frozen=True)
class FusionTerm:
    """One enhancer's fusion weight and every name it goes by (dimensionless weight w_e ≥ 0).

    enhancer: the model's name of the enhancer (``AREModel.enhancer_names``); param: fixed mode's Optuna
    parameter and the key of a trial's ``settings``; flag_key: its flags.yaml key; symbol: its short
    name in tables, CSV columns, log lines and the evaluate option (``w_sim`` -> ``--w-sim``); label:
    its name in words (axis labels, help); reference: its weight at the paper's known point 0.2/0.8;
    initial_param: learnable mode's parameter for its initial share (stick-breaking; the last term's
    is implied, never searched); absent: the weight a stored record without this term's key stands
    for (None: the key is required). A term added after studies exist gives 0.0, the enhancer off,
    which is what those studies ran, so their trials still read.
    """

    enhancer: str
    param: str
    flag_key: str
    symbol: str
    label: str
    reference: float
    initial_param: str
    absent: float | None = None

    @property
    def option(self) -> str:
        """The evaluate command's option for this weight: ``--w-sim``."""
        return "--" + self.symbol.replace("_", "-")


#: One row per enhancer, in the model's order (``are_model.model.ENHANCERS``).
FUSION_TERMS: tuple[FusionTerm, ...] = (
    FusionTerm("similarity", "similarity_enhancer_weight", "similarity_enhancer_weight", "w_sim",
               "similarity enhancer weight", 0.2, "initial_similarity_weight"),
    FusionTerm("prompt", "prompt_enhancer_weight", "prompt_enhancer_weight", "w_prompt",
               "prompt enhancer weight", 0.8, "initial_prompt_weight"),
)
#: The enhancer names the table expects of a model, in order.
ENHANCERS: tuple[str, ...] = tuple(term.enhancer for term in FUSION_TERMS)
#: Fixed mode's parameters, also the weight keys of a trial's settings.
WEIGHT_PARAMS: tuple[str, ...] = tuple(term.param for term in FUSION_TERMS)
#: Learnable mode's initial-share parameters (E − 1: the last share is what the others leave).
SHARE_PARAMS: tuple[str, ...] = tuple(term.initial_param for term in FUSION_TERMS[:-1])
#: Learnable_free mode's initial-weight parameters: all E (the free weights have no sum to leave a rest).
INITIAL_PARAMS: tuple[str, ...] = tuple(term.initial_param for term in FUSION_TERMS)
#: The flags.yaml keys of the weights.
WEIGHT_FLAG_KEYS: tuple[str, ...] = tuple(term.flag_key for term in FUSION_TERMS)
#: The name of the paper's known point ("0.2/0.8") and of no enhancement as a weight text ("0/0").
REFERENCE_LABEL = "/".join(f"{term.reference:g}" for term in FUSION_TERMS)
NONE_LABEL = "/".join("0" for _ in FUSION_TERMS)
#: Known settings every new study tries first, besides the checkpoint's own: name -> weights [E].
KNOWN_WEIGHTS: dict[str, tuple[float, ...]] = {
    REFERENCE_LABEL: tuple(float(term.reference) for term in FUSION_TERMS),
    "no enhancement": tuple(0.0 for _ in FUSION_TERMS),
}


def check_enhancers(names: Sequence[str], where: str) -> None:
    """Raise StudyError naming ``where`` when a model's enhancer names are not this table's, in order."""
    if tuple(names) != ENHANCERS:
        raise StudyError(f"{where}: the model's enhancers ({', '.join(names) or 'none'}) are not the fusion terms "
                         f"are-search knows ({', '.join(ENHANCERS)}); see search/study/fusion_terms.py")


def required(key: str = "param") -> tuple[str, ...]:
    """The names (under ``key``: ``param`` or ``flag_key``) a stored record must hold: the terms without ``absent``."""
    return tuple(getattr(term, key) for term in FUSION_TERMS if term.absent is None)


def weights_of(values: Mapping[str, Any], key: str = "param") -> tuple[Any, ...]:
    """The E values of ``values`` under each term's ``key`` attribute (``param`` or ``flag_key``), in order.

    Values are returned as stored (not converted); a missing term with an ``absent`` weight gets it.
    Raises KeyError for a missing required term.
    """
    return tuple(values[getattr(term, key)] if term.absent is None or getattr(term, key) in values else term.absent
                 for term in FUSION_TERMS)


def params_of(weights: Sequence[Any], key: str = "param") -> dict[str, Any]:
    """``{term.<key>: weight}`` of E weights, in term order; ValueError for a number other than E."""
    if len(weights) != len(FUSION_TERMS):
        raise ValueError(f"expected {len(FUSION_TERMS)} fusion weights ({', '.join(ENHANCERS)}), got {len(weights)}")
    return {getattr(term, key): weight for term, weight in zip(FUSION_TERMS, weights)}


def weights_text(weights: Sequence[float], digits: int = 4, sep: str = " ", assign: str = "=") -> str:
    """``w_sim=0.2000 w_prompt=0.8000``: each term's symbol and weight (``sep``, ``assign`` between them)."""
    return sep.join(f"{term.symbol}{assign}{float(w):.{digits}f}" for term, w in zip(FUSION_TERMS, weights))


def joined(weights: Sequence[float], spec: str = ".4f", sep: str = " / ") -> str:
    """The weights alone, formatted with ``spec`` and joined: ``0.2000 / 0.8000``."""
    return sep.join(format(float(w), spec) for w in weights)


def symbols(sep: str = " / ") -> str:
    """The terms' symbols joined: ``w_sim / w_prompt``."""
    return sep.join(term.symbol for term in FUSION_TERMS)


def options_text(conjunction: str = "and") -> str:
    """The evaluate options in words: ``--w-sim and --w-prompt`` (``--a, --b and --c`` for three)."""
    options = [term.option for term in FUSION_TERMS]
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} {conjunction} {options[-1]}"


def weights_from_shares(shares: Sequence[float]) -> tuple[float, ...]:
    """E initial weights summing to 1 from E − 1 shares in (0, 1), by stick-breaking.

    Term k takes share k of what the terms before it left; the last term takes the rest. For two terms
    this is (s, 1 − s), computed as exactly those floats. ValueError for a number of shares other than E − 1.
    """
    if len(shares) != len(FUSION_TERMS) - 1:
        raise ValueError(f"expected {len(FUSION_TERMS) - 1} initial shares, got {len(shares)}")
    weights, left = [], 1.0
    for share in shares:
        weight = left * float(share)
        weights.append(weight)
        left = left - weight
    return (*weights, left)


def shares_from_weights(weights: Sequence[float]) -> tuple[float, ...] | None:
    """The E − 1 stick-breaking shares of E weights (inverse of :func:`weights_from_shares` up to scale).

    Share k is w_k / (w_k + ... + w_{E−1}); 0.5 where the terms from k on are all 0. None when every
    weight is 0 (no learnable start corresponds: softmax weights are positive).
    """
    weights = [float(w) for w in weights]
    if sum(weights) <= 0:
        return None
    shares = []
    for k in range(len(weights) - 1):
        rest = sum(weights[k:])
        shares.append(weights[k] / rest if rest > 0 else 0.5)
    return tuple(shares)
