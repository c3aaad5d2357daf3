"""A study's cost probe: seconds per validation pair on this worker's device, measured before its first trial.

A timed campaign (:mod:`search.campaign.timing`) needs each study's cost before it can share time out; the
worker that first takes a study up calls :func:`probe_cost` with its warm context. The probe ranks
the first pairs of the study's seeded validation order (no study trial, nothing written to the trials): one
untimed pass of a batch (warm-up: kernels, allocator), then a timed run of two batches. A learnable study's
trial also fine-tunes: its probe times that too (:func:`measure_fine_tuning`: one training batch untimed, two
timed, on a fresh copy of the model), and its record says how many batches and validations a trial runs
(``seconds_per_batch``, ``batches``, ``validations``), so that its cost is not taken for a validation pass
alone (the fusion-modes campaign's learnable trials cost 30-40 times that). It stores the
study's user attr ``cost`` and, when the time share calls for it, the study's validation budget -- only
while the study has no trial that ran, so a sample never changes under finished trials.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import optuna

from search.campaign.timing import COST_ATTR, choose_valid_pairs, graph_size
from search.objectives.context import SearchContext
from search.objectives.fusion import SPLIT
from search.study.spec import SPEC_ATTR, StudySpec

__all__ = ["measure_pass", "measure_fine_tuning", "probe_cost", "add_setup_seconds"]

_logger = logging.getLogger(__name__)


def _synchronize(context: SearchContext) -> None:
    """Wait for ``context``'s CUDA device to finish its queued work (nothing on the CPU), so a timer reads it."""
    if context.device.type == "cuda":
        import torch

        torch.cuda.synchronize(context.device)


def measure_pass(context: SearchContext, limit: int | None = None) -> tuple[float, int]:
    """(seconds per validation pair, pairs timed) on ``context``'s device: one warm-up batch untimed, then two
    batches (at most the split's pairs, or ``limit``) timed. The model's own fusion weights are used (a
    trial's weights cost the same)."""
    split_pairs = len(context.pairs(SPLIT))
    pairs = min(split_pairs, 2 * context.batch_size, limit or split_pairs)
    context.evaluate(SPLIT, sample=min(pairs, context.batch_size))
    _synchronize(context)
    start = time.perf_counter()
    context.evaluate(SPLIT, sample=pairs)
    _synchronize(context)
    return (time.perf_counter() - start) / max(1, pairs), pairs


def measure_fine_tuning(context: SearchContext, spec: StudySpec) -> dict[str, Any]:
    """What a learnable (``learnable``, ``learnable_free``) trial of ``spec`` fine-tunes, and at what speed on
    ``context``'s device: ``{"seconds_per_batch", "batches" (epochs x batches per epoch of the study's budget),
    "validations" (one per epoch)}``.

    One batch untimed (warm-up), then two timed, on a fresh copy of the checkpoint with the mode's fusion at
    the checkpoint's own weights and the body trained: the dearer case (a trial that freezes the body still
    back-propagates through it to the fusion weights). Nothing of the study's model or trials changes.
    """
    from dataclasses import replace

    from are_model.train import fine_tune

    budget = spec.fine_tune_budget()
    train = context.split("train")
    trial = budget.fine_tune_config(int(train.triples.shape[0]), fusion_lr=1e-3, body_lr=1e-6, seed=spec.seed)
    model = context.fresh_model()
    if spec.mode == "learnable_free":
        model.use_free_fusion()
    else:
        model.use_learnable_fusion()

    def run(count: int) -> None:
        fine_tune(model, train, replace(trial, epochs=1, batches_per_epoch=count))

    run(1)
    _synchronize(context)
    start = time.perf_counter()
    run(2)
    _synchronize(context)
    return {"seconds_per_batch": (time.perf_counter() - start) / 2, "batches": trial.epochs * trial.batches_per_epoch,
            "validations": trial.epochs}


def probe_cost(study: optuna.Study, spec: StudySpec, context: SearchContext, *, share: float, floor: int,
               setup_s: float) -> dict[str, Any]:
    """Measure ``study``'s cost on ``context`` and store it (user attr ``cost``); returns the record.

    share: the study's time share in seconds (:func:`search.campaign.timing.allocate_time`); floor: its
    floor of trials; setup_s: the seconds its set-up took (context, relation side), added to the record's
    ``setup_s`` with the probe's own time. A study none of whose trials ran yet gets the validation budget
    :func:`search.campaign.timing.choose_valid_pairs` picks (stored in its ``spec`` user attr too);
    otherwise its budget stays as it is. The record also holds the size of the validation graph the probe
    ranked on (``entities``, ``relations`` with inverses, ``edges`` with inverses:
    :func:`search.campaign.timing.graph_size`), which a report reads instead of preparing the split.
    """
    start = time.perf_counter()
    per_pair, timed = measure_pass(context, spec.valid_pairs)
    split_pairs = len(context.pairs(SPLIT))
    untouched = all(t.datetime_start is None for t in study.get_trials(deepcopy=False))
    valid_pairs = spec.valid_pairs
    tuning = measure_fine_tuning(context, spec) if spec.mode != "fixed" else {}
    if untouched:  # what a trial's validations may cost: the share less the fine-tuning of its floor of trials
        tuned = float(tuning.get("seconds_per_batch", 0.0)) * int(tuning.get("batches", 0))
        valid_pairs = choose_valid_pairs(share - setup_s - floor * tuned, per_pair * int(tuning.get("validations", 1)),
                                         split_pairs, floor, spec.valid_pairs)
    old = study.user_attrs.get(COST_ATTR) or {}
    record = {"seconds_per_pair": per_pair, "timed_pairs": timed, "split_pairs": split_pairs,
              "pairs": min(split_pairs, valid_pairs or split_pairs), "valid_pairs": valid_pairs,
              "device": str(context.device), **graph_size(context.split(SPLIT).graph),
              "setup_s": float(old.get("setup_s", 0.0)) + setup_s + time.perf_counter() - start}
    record.update(tuning)
    study.set_user_attr(COST_ATTR, record)
    stored = study.user_attrs.get(SPEC_ATTR)
    if untouched and isinstance(stored, Mapping) and stored.get("valid_pairs") != valid_pairs:
        study.set_user_attr(SPEC_ATTR, {**stored, "valid_pairs": valid_pairs})
    _logger.info("study %s: %.4f s per validation pair on %s; a trial ranks %d of %d pairs%s", study.study_name,
                 per_pair, context.device, record["pairs"], split_pairs,
                 f", {record['validations']} times, after {record['batches']} fine-tuning batches in all at "
                 f"{record['seconds_per_batch']:.2f} s" if "batches" in record else "")
    return record


def add_setup_seconds(study: optuna.Study, seconds: float) -> None:
    """Add ``seconds`` of set-up (a worker taking a measured study up again) to its ``cost`` record."""
    old = study.user_attrs.get(COST_ATTR)
    if isinstance(old, Mapping):
        study.set_user_attr(COST_ATTR, {**old, "setup_s": float(old.get("setup_s", 0.0)) + seconds})
