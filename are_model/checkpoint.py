"""Load and save checkpoints with the published key layout; the profile follows from the keys."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .fileio import atomic_write
from .fusion import FREE_FUSION_KEY
from .model import AREModel


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message is one line naming the file and the keys."""


# A key that only a given profile has decides it (checked in this order).
_PROFILE_MARKERS = (
    ("are-fusion", "fusion_weights_logits"),
    ("are-mix", "similarity_enhancer.similarity_threshold_raw"),
    ("semma", "combiner.fc.weight"),
    ("ultra", "entity_model.mlp.0.weight"),
)


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    profile: str
    num_parameters: int
    num_keys: int


def detect_profile(keys: set[str] | list[str]) -> str | None:
    """The profile whose marker key is present, or None."""
    keys = set(keys)
    for profile, marker in _PROFILE_MARKERS:
        if marker in keys:
            return profile
    return None


def _describe(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model state dict of a checkpoint file ({"model": ...} or a bare state dict), on the CPU.

    Raises CheckpointError (one line) for a missing or unloadable file, a file without a state dict of
    tensors, and floating-point tensors holding NaN or inf (naming them)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; report one line
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({first_line})") from None
    state = content.get("model", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict of tensors")
    # A NaN or infinite weight ranks every query by garbage scores without any error: refuse it here, where
    # every reader of a checkpoint passes (load, profile detection, inspect).
    broken = [f"{name} ({int((~torch.isfinite(tensor)).sum())} of {tensor.numel()} values)"
              for name, tensor in state.items()
              if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        raise CheckpointError(f"{path}: non-finite weights (NaN or inf) in {_describe(broken, 3)}")
    return state


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[AREModel, CheckpointInfo]:
    """Build the model the checkpoint's keys describe and load it with a strict key and shape match.

    The profile follows from the keys (:func:`detect_profile`). A checkpoint written with the free fusion
    (``AREModel.use_free_fusion``) holds one more top-level tensor, ``fusion_weights_free`` [E]
    (:data:`are_model.fusion.FREE_FUSION_KEY`): the model is then built with the free fusion, which the
    loaded model uses (w = softplus of it); without it the published layout is loaded as it is. Raises
    CheckpointError (one line naming the file and the keys) for missing, unexpected or misshapen keys.
    """
    state = read_state_dict(path)
    profile = detect_profile(state.keys())
    if profile is None:
        raise CheckpointError(f"{path}: no ULTRA/SEMMA/ARE keys found (e.g. entity_model.mlp.0.weight); "
                              f"keys start with {_describe(list(state.keys()))}")
    model = AREModel(profile)
    if FREE_FUSION_KEY in state and model.has_enhancers:
        model.use_free_fusion()  # the extra [E] tensor of a free-fusion checkpoint: expected, then loaded
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_describe(unexpected)}")
        raise CheckpointError(f"{path}: does not match the {profile} layout; " + "; ".join(parts))
    wrong_shape = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                   if state[k].shape != v.shape]
    if wrong_shape:
        raise CheckpointError(f"{path}: wrong shapes for the {profile} layout: {_describe(wrong_shape, 2)}")
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    info = CheckpointInfo(str(path), profile, sum(p.numel() for p in model.parameters()), len(state))
    return model, info


def save_checkpoint(model: AREModel, path: str | os.PathLike, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write {"model": state_dict, "optimizer": ...} in the published format (:func:`atomic_write`)."""
    content = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if optimizer is not None:
        content["optimizer"] = optimizer.state_dict()
    atomic_write(path, lambda tmp: torch.save(content, tmp))
