"""One-off commands on a checkpoint: :func:`evaluate` (ranking metrics on one split) and
:func:`inspect_checkpoint` (profile, size, fusion). Both return plain result dicts for the CLI."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search.errors import UsageError
from search.options import LoadOptions
from search.study.fusion_terms import ENHANCERS, FUSION_TERMS, options_text

__all__ = ["SPLITS", "FUSIONS", "evaluate", "inspect_checkpoint"]

SPLITS = ("valid", "test")
FUSIONS = ("checkpoint", "fixed", "learned")


def evaluate(dataset: str, checkpoint: str, options: LoadOptions, *, split: str = "test", fusion: str = "checkpoint",
             weights: Sequence[float | None] | None = None, progress: bool = False) -> dict[str, Any]:
    """Filtered-ranking metrics (MRR, MR, Hits@1/3/10; both directions, ULTRA's protocol) of one
    checkpoint on one split, with its own fusion, fixed weights or the learned ones.

    weights: with ``fusion="fixed"``, one weight per fusion term (w_sim, w_prompt; the evaluate
    command's ``--w-sim``/``--w-prompt``, :mod:`search.study.fusion_terms`); None entries are options
    not given. Returns dataset, split, checkpoint, profile, encoder, fusion, fusion_weights [E],
    num_queries, mrr, mr, hits@k, device, seconds. Raises UsageError for inconsistent options.
    """
    import torch

    from are_model.data import resolve_dataset_name
    from are_model.pipeline import evaluate_split
    from search.objectives.context import SearchContext
    from search.inputs.checkpoints import checkpoint_file, profile_of

    start = time.perf_counter()
    given = list(weights) if weights is not None else [None] * len(ENHANCERS)
    if len(given) != len(ENHANCERS):
        raise UsageError(f"expected {len(ENHANCERS)} fusion weights ({options_text()}), got {len(given)}")
    if fusion != "fixed" and any(w is not None for w in given):
        raise UsageError(f"{'/'.join(term.option for term in FUSION_TERMS)} apply only with --fusion fixed")
    if fusion == "fixed" and any(w is None for w in given):
        raise UsageError(f"--fusion fixed needs {'both ' if len(given) == 2 else ''}{options_text()}")
    resolve_dataset_name(dataset)  # an unknown name fails before anything is loaded
    path = checkpoint_file(checkpoint, options)
    profile = profile_of(path)
    if fusion == "fixed" and profile not in ("are-mix", "are-fusion"):
        raise UsageError(f"--fusion fixed needs an ARE checkpoint (are-mix or are-fusion); {path.name} is {profile}")
    if fusion == "learned" and profile != "are-fusion":
        raise UsageError(f"--fusion learned needs a checkpoint with learned fusion weights (are-fusion); "
                         f"{path.name} is {profile}")
    device = options.resolved_device()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    context = SearchContext(dataset, path, data_root=options.data_root, text=options.text(), device=device,
                            batch_size=options.batch_size, cache_dir=options.cache_dir, download=options.download)
    model = context.model
    fixed = None
    if fusion == "fixed":
        fixed = torch.tensor(given, dtype=torch.float32, device=context.device)
        applied = [float(w) for w in given]
    else:  # the checkpoint's own fusion ("learned" is the same for an are-fusion checkpoint)
        applied = [float(w) for w in model.checkpoint_fusion_weights()] if model.has_enhancers else None
    prepared = context.split(split)
    metrics, _ = evaluate_split(model, prepared, weights=fixed, side=context.relation_side(split),
                                batch_size=context.batch_size, progress=progress)
    return {
        "dataset": context.dataset,
        "split": split,
        "checkpoint": str(path),
        "profile": context.profile,
        "encoder": prepared.encoder,
        "fusion": None if applied is None else ("fixed" if fusion == "fixed" else "checkpoint"),
        "fusion_weights": applied,
        **metrics,
        "device": str(context.device),
        "seconds": round(time.perf_counter() - start, 3),
    }


def inspect_checkpoint(checkpoint: str, options: LoadOptions) -> dict[str, Any]:
    """Profile, sha256, size and fusion of a checkpoint (file or known name).

    Returns checkpoint (path), known_name, sha256, profile, num_parameters, num_keys, fusion
    (``learned``/``fixed``/None), fusion_weights [E] (w_sim, w_prompt), fusion_logits [E], similarity_enhancer
    (variant, theta, lambda, lambda_used, tau, kappa).
    """
    import torch

    from are_model.checkpoint import load_checkpoint
    from search.inputs.checkpoints import KNOWN_CHECKPOINTS, sha256_of
    from search.inputs.checkpoints import checkpoint_file

    path: Path = checkpoint_file(checkpoint, options)
    model, info = load_checkpoint(path)
    digest = sha256_of(path)
    known = next((name for name, entry in KNOWN_CHECKPOINTS.items() if entry.sha256 == digest), None)
    result: dict[str, Any] = {
        "checkpoint": str(path), "known_name": known, "sha256": digest, "profile": info.profile,
        "num_parameters": info.num_parameters, "num_keys": info.num_keys, "fusion": None, "fusion_weights": None,
        "fusion_logits": None, "similarity_enhancer": None,
    }
    if model.has_enhancers:
        result["fusion"] = "learned" if info.profile == "are-fusion" else "fixed"
        result["fusion_weights"] = [float(w) for w in model.checkpoint_fusion_weights()]
        if info.profile == "are-fusion":
            result["fusion_logits"] = [float(v) for v in model.fusion_weights_logits.detach()]
        enhancer = model.similarity_enhancer
        with torch.no_grad():
            result["similarity_enhancer"] = {
                "variant": enhancer.variant, "theta": float(enhancer.threshold), "lambda": float(enhancer.strength),
                "lambda_used": enhancer.variant == "mix", "tau": float(enhancer.temperature.clamp(0.1, 10.0)),
                "kappa": float(enhancer.similarity_weight_scale),
            }
    return result
