"""Samplers of are-search beyond Optuna's own (those are built by :func:`search.studies.make_sampler`)."""
from search.samplers.staged_gp import StagedGPSampler, estimate_pruned

__all__ = ["StagedGPSampler", "estimate_pruned"]
