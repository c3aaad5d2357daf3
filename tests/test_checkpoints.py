"""The five published checkpoints load strictly; anything else gets a one-line error naming keys."""
from __future__ import annotations

import os
import re

import pytest
import torch

from are_model.checkpoint import CheckpointError, detect_profile, load_checkpoint, read_state_dict, save_checkpoint

EXPECTED = {  # spec §10.2: profile, parameter count, key count
    "ultra_3g": ("ultra", 168_705, 82),
    "semma": ("semma", 227_649, 114),
    "ARE-V3": ("are-mix", 252_550, 130),
    "ARE-V5": ("are-mix", 252_550, 130),
    "fusion": ("are-fusion", 252_552, 131),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_checkpoints_load_strictly(checkpoint_root, name):
    model, info = load_checkpoint(checkpoint_root / f"{name}.pth")
    profile, parameters, keys = EXPECTED[name]
    assert (info.profile, info.num_parameters, info.num_keys) == (profile, parameters, keys)
    state = read_state_dict(checkpoint_root / f"{name}.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not model.training


def test_fusion_checkpoint_learned_weights(checkpoint_root):
    model, _ = load_checkpoint(checkpoint_root / "fusion.pth")
    w_sim, w_prompt = model.checkpoint_fusion_weights()
    assert round(w_sim, 4) == 0.2250 and round(w_prompt, 4) == 0.7750
    assert model.learnable_fusion
    similarity = model.similarity_enhancer   # trained values of spec §3.1
    assert similarity.threshold.item() == pytest.approx(0.6894, abs=1e-4)
    assert similarity.temperature.item() == pytest.approx(0.3414, abs=1e-4)


def test_mismatched_checkpoint_names_the_keys(checkpoint_root, tmp_path):
    state = read_state_dict(checkpoint_root / "semma.pth")
    del state["combiner.fc.bias"]
    state["semantic_model.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "missing keys: combiner.fc.bias" in message and "unexpected keys: semantic_model.extra.weight" in message


def test_wrong_shape_and_garbage_files(checkpoint_root, tmp_path):
    state = read_state_dict(checkpoint_root / "ultra_3g.pth")
    state["entity_model.mlp.2.bias"] = torch.zeros(2)
    torch.save({"model": state}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"entity_model\.mlp\.2\.bias \(2,\) != \(1,\)"):
        load_checkpoint(tmp_path / "shape.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable torch checkpoint"):
        load_checkpoint(tmp_path / "text.pth")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")
    torch.save({"model": {"foo": torch.zeros(1)}}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="no ULTRA/SEMMA/ARE keys"):
        load_checkpoint(tmp_path / "foreign.pth")


def test_save_round_trip_keeps_layout(checkpoint_root, tmp_path):
    model, _ = load_checkpoint(checkpoint_root / "fusion.pth")
    save_checkpoint(model, tmp_path / "copy.pth")
    reloaded, info = load_checkpoint(tmp_path / "copy.pth")
    assert info.profile == "are-fusion"
    assert list(read_state_dict(tmp_path / "copy.pth"))[0] == "fusion_weights_logits"   # own parameter first
    assert detect_profile(read_state_dict(tmp_path / "copy.pth").keys()) == "are-fusion"


def test_save_is_atomic_and_a_failed_save_leaves_the_old_file(checkpoint_root, tmp_path, monkeypatch):
    model, _ = load_checkpoint(checkpoint_root / "fusion.pth")
    target = tmp_path / "copy.pth"
    save_checkpoint(model, target)
    target.chmod(0o640)
    before = target.read_bytes()

    def failing_save(obj, file):  # a disk that fills up halfway through the write
        with open(file, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(model, target)
    assert target.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["copy.pth"]
    monkeypatch.undo()
    save_checkpoint(model, target)                       # replaced through fileio.atomic_write: mode kept
    assert (target.stat().st_mode & 0o777) == 0o640 and sorted(os.listdir(tmp_path)) == ["copy.pth"]
    assert load_checkpoint(target)[1].profile == "are-fusion"


def test_a_checkpoint_with_nan_weights_is_refused_naming_them(checkpoint_root, tmp_path):
    """fusion.pth with NaN in one tensor used to evaluate to a silently wrong MRR; now every reader refuses it in
    one line naming the tensor, and the CLI exits 2."""
    import subprocess
    import sys

    content = torch.load(checkpoint_root / "fusion.pth", map_location="cpu", weights_only=True)
    state = content.get("model", content)
    name = next(key for key, value in state.items() if value.is_floating_point() and value.numel() > 10)
    state[name] = state[name].clone()
    state[name].view(-1)[:3] = float("nan")
    broken = tmp_path / "nan.pth"
    torch.save(content, broken)
    with pytest.raises(CheckpointError, match=rf"non-finite weights \(NaN or inf\) in {re.escape(name)} \(3 of "):
        load_checkpoint(broken)
    result = subprocess.run([sys.executable, "-m", "search", "inspect", str(broken)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "non-finite weights" in result.stderr and "Traceback" not in result.stderr
