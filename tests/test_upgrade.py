"""Studies and campaigns written by an earlier are-search open, resume, export and report with this one.

The storage ``tests/oldstudies.py`` rebuilds from ``fixtures/studies-0.2.0.sql`` was written by are-search 0.2.0 (commit 03945a1, before search/ was regrouped
into folders) from the CLI, on the real Metafam files with fusion.pth::

    are-search launch --dataset Metafam --checkpoint fusion --mode fixed --trials 4 --storage old.db
    are-search campaign launch fixtures/studies-0.2.0.yaml --storage old.db

It holds ``Metafam:Metafam/fixed`` (4 complete trials, the 3 known points first) and
``Metafam:Metafam/learnable`` (4 trials of 1 epoch x 1 batch), both members of the campaign ``oldcamp``
(the fixed study adopted by it). Each test works on a copy.
"""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import search
import search.campaign
from oldstudies import write_old_studies
from search.options import LoadOptions

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXED, LEARNABLE = "Metafam:Metafam/fixed", "Metafam:Metafam/learnable"


@pytest.fixture
def old_storage(tmp_path) -> str:
    copy = write_old_studies(tmp_path / "old.db")
    return f"sqlite:///{copy}"


@pytest.fixture(scope="module")
def options(data_root, text_root, checkpoint_root, cache_dir, require_dataset) -> LoadOptions:
    require_dataset("Metafam")
    return LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                       cache_dir=str(cache_dir), device="cpu", threads=2)


def _values(storage: str, name: str) -> dict[int, float]:
    study = optuna.load_study(study_name=name, storage=storage)
    return {t.number: t.value for t in study.get_trials(deepcopy=False) if t.value is not None}


def test_the_old_storage_is_read_as_it_was_written(old_storage):
    status = search.status(storage=old_storage)
    assert status.state == "ready"
    by_name = {s.study: s for s in status.studies}
    assert set(by_name) == {FIXED, LEARNABLE}
    assert by_name[FIXED].counts == {"COMPLETE": 4} and by_name[FIXED].best is not None
    assert by_name[FIXED].checkpoint == "fusion" and by_name[FIXED].budget == 4
    assert set(by_name[FIXED].space) == set(by_name[FIXED].best.params)       # the stored range, per parameter
    campaign = search.campaign.status("oldcamp", storage=old_storage)
    assert {s.study for s in campaign.studies} == {FIXED, LEARNABLE}
    assert campaign.done == campaign.total_budget == 8


@pytest.mark.slow
def test_an_old_study_resumes_exports_and_reports(old_storage, options, tmp_path):
    before = _values(old_storage, FIXED)
    resumed = search.resume("Metafam/fixed", trials=5, storage=old_storage, options=options)
    assert resumed.study == FIXED and not resumed.created
    assert resumed.trials_added == 1 and sum(resumed.counts.get(s, 0) for s in ("COMPLETE", "PRUNED")) == 5
    after = _values(old_storage, FIXED)
    assert {n: after[n] for n in before} == before                              # old trials untouched

    flags = tmp_path / "flags.yaml"
    exported = search.export("Metafam/fixed", flags=flags, storage=old_storage)
    assert exported.written and flags.read_text(encoding="utf-8").strip()

    report = search.report("Metafam/fixed", out=tmp_path / "report", n_boot=200, storage=old_storage, options=options)
    assert report.study == FIXED
    assert (tmp_path / "report" / "summary.md").is_file()
    assert report.summary["best"]["trial"] in after


@pytest.mark.slow
def test_an_old_campaign_resumes_and_reports(old_storage, options, tmp_path):
    resumed = search.campaign.resume("oldcamp", trials=5, storage=old_storage, options=options)
    assert {s.study for s in resumed.studies} == {FIXED, LEARNABLE}
    assert resumed.trials_added == 2                                            # one more trial per study
    assert all(sum(s.counts.get(k, 0) for k in ("COMPLETE", "PRUNED")) == 5 for s in resumed.studies)

    report = search.campaign.report("oldcamp", out=tmp_path / "campaign", n_boot=200, storage=old_storage,
                                    options=options)
    assert (tmp_path / "campaign" / "campaign.md").is_file()
    text = (tmp_path / "campaign" / "campaign.md").read_text(encoding="utf-8")
    assert "Metafam" in text and report.files


def test_a_relaunch_with_another_space_names_what_differs(old_storage, options):
    from search.errors import StudyError

    with pytest.raises(StudyError) as info:
        search.launch(dataset="Metafam", checkpoint="fusion", trials=5, soft_high=0.5, storage=old_storage,
                      options=options)
    assert str(info.value) == (f"study {FIXED} was run with another search space (prompt_enhancer_weight: soft_high "
                               "1, now 0.5; similarity_enhancer_weight: soft_high 1, now 0.5); use another --storage")
    assert _values(old_storage, FIXED) and search.status(storage=old_storage).studies[0].counts == {"COMPLETE": 4}
