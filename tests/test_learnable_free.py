"""``--mode learnable_free`` (issue 18 item 3, search part): a study mode that fine-tunes non-negative fusion
weights without the sum-to-one constraint (``AREModel.use_free_fusion``), on real Metafam files with fusion.pth.

* its space searches both initial weights (not a share) and the fusion learning rate, and starts from the
  checkpoint's own learned weights;
* a launched study is named ``<dataset>/learnable_free``; its trial's ``settings.learned_weights`` are the
  weights the fine-tune reached, off the simplex, and its value is theirs on validation;
* ``export`` writes them as the ARE code's fixed weights (``use_learnable_fusion: False``).
"""
from __future__ import annotations

import math

import optuna
import pytest
import yaml

import search
from are_model.pipeline import TextOptions
from search.errors import StudyError
from search.flags.export import flags_from_settings
from search.objectives.context import get_context
from search.options import LoadOptions
from search.study.names import StudyName
from search.study.settings import TrialSettings
from search.study.spaces import SearchSpace

SPEC = """\
dataset: metafam
checkpoint: fusion
mode: learnable_free
trials: 1
pruner: none
valid_pairs: 120
space:
  initial_similarity_weight: 0.225
  initial_prompt_weight: 0.775
  fusion_lr: 0.3
  body_lr: frozen
budget:
  epochs: 1
  batches_per_epoch: 2
  batch_size: 4
  negatives: 8
"""


def test_the_free_space_searches_both_initial_weights_and_the_lr():
    space = SearchSpace("learnable_free", soft_high=1.5)
    assert list(space.params) == ["initial_similarity_weight", "initial_prompt_weight", "fusion_lr", "body_lr"]
    start = space.params["initial_prompt_weight"]
    assert (start.low, start.high, start.hard_low, start.hard_high) == (0.01, 1.5, 1e-3, 4.0)
    assert space.params["fusion_lr"].log and space.grid(2)["body"] == ["frozen", "trained"]
    assert space.known_points((0.22501547634601593, 0.7749845385551453)) == [
        ("checkpoint", {"initial_similarity_weight": 0.22501547634601593, "initial_prompt_weight": 0.7749845385551453,
                        "fusion_lr": 5e-3, "body": "frozen"}),
        ("0.2/0.8", {"initial_similarity_weight": 0.2, "initial_prompt_weight": 0.8, "fusion_lr": 5e-3,
                     "body": "frozen"})]
    # a weight, not a share: above 1 is fine here, not in learnable mode; negative nowhere
    assert SearchSpace("learnable_free", {"initial_prompt_weight": [0.5, 3.0]}).params["initial_prompt_weight"].high == 3
    with pytest.raises(StudyError, match=r"strictly inside \(0, 1\)"):
        SearchSpace("learnable", {"initial_similarity_weight": [0.5, 3.0]})
    with pytest.raises(StudyError, match="space key 'initial_prompt_weight': expected a finite number >= 0, got -1"):
        SearchSpace("learnable_free", {"initial_prompt_weight": -1})

    study = optuna.create_study(direction="maximize")
    settings = TrialSettings.from_attr(space.suggest(study.ask()))
    assert settings.mode == "learnable_free" and settings.free_fusion is True
    assert [math.log1p(math.exp(v)) for v in settings.fusion_init_logits] == pytest.approx(list(settings.weights),
                                                                                         rel=1e-5)
    assert "free_fusion" not in TrialSettings(True, (0.2, 0.8), fusion_lr=0.1).to_attr()  # other modes: as before


def test_a_learnable_free_study_learns_weights_off_the_simplex_and_exports_them(tmp_path, data_root, text_root,
                                                                                 checkpoint_root, cache_dir):
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), device="cpu", threads=2, offline=True)
    (tmp_path / "free.yaml").write_text(SPEC)
    url = f"sqlite:///{tmp_path / 's.db'}"
    flags = tmp_path / "flags.yaml"
    result = search.launch(tmp_path / "free.yaml", storage=url, flags=flags, options=options)
    assert result.study == "Metafam:Metafam/learnable_free" and result.trials_added == 1
    assert StudyName.parse(result.study).mode == "learnable_free"
    study = optuna.load_study(study_name=result.study, storage=url)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [1]
    settings = TrialSettings.from_trial(trial)
    assert settings.mode == "learnable_free" and settings.weights == (0.225, 0.775) and settings.body_lr is None
    learned = settings.learned_weights
    assert min(learned) >= 0 and abs(sum(learned) - 1) > 0.05, learned     # off the simplex
    assert settings.fine_tune["batches_per_epoch"] == 2 and settings.fine_tune["budget"].startswith(
        "1 epoch x 2 batches (batches of 4 triples, 8 negatives each): Metafam:Metafam's official budget "
        "(run_many.py: 3 epochs x a full pass = 3456 batches), the spec's budget sets")
    # export: the learned weights, as the ARE code's fixed fusion applies them
    assert flags_from_settings(settings) == {"use_learnable_fusion": False,
                                             "similarity_enhancer_weight": learned[0],
                                             "prompt_enhancer_weight": learned[1]}
    written = yaml.safe_load(flags.read_text())
    assert written["use_learnable_fusion"] is False and "fusion_lr" not in written
    assert (written["similarity_enhancer_weight"], written["prompt_enhancer_weight"]) == tuple(learned)
    # the trial's value is the learned weights' validation MRR, as fixed weights (the body was frozen)
    ctx = get_context("Metafam", checkpoint_root / "fusion.pth", data_root=data_root,
                      text=TextOptions(root=str(text_root), cache_dir=str(cache_dir), download=False),
                      cache_dir=cache_dir)
    assert trial.value == pytest.approx(ctx.evaluate("valid", learned, sample=120)[0], abs=1e-6)
