"""Campaign command-line edges (issue 19 item 6), on real SQLite storages under tmp_path and real data.

* ``campaign status`` / ``report`` / ``resume`` / ``export`` given no name use the only campaign in the storage,
  and say in one line which campaigns there are when there are several (or none);
* the hint printed after Ctrl-C repeats the storage the run used when a command given no ``--storage`` would not
  find it;
* the campaign's progress bar is drawn with its total from the start and its "now:" names the dataset the
  process works on.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from search.campaign.members import tag_member
from search.campaign.spec import campaign_from_values
from search.cli import main
from search.options import LoadOptions
from search.runners.queue import CampaignProgress, Job, open_studies
from search.runners.setup import WorkerSetup
from search.storage import StorageURL, open_storage
from search.study.budget import FINISHED

optuna.logging.set_verbosity(optuna.logging.WARNING)

DATASET = "NELLInductive:v1"


def _campaign_storage(db: Path, names: list[str]) -> str:
    """A storage holding one study per campaign of ``names`` (each on its own dataset), tagged as a launch
    tags them; returns its URL."""
    url = f"sqlite:///{db}"
    storage = open_storage(StorageURL.parse(url))
    for name, dataset in zip(names, ("Metafam", "FBNELL", "NELLInductive:v2")):
        spec = campaign_from_values({"name": name, "datasets": dataset, "checkpoint": "fusion", "trials": 2}, "test")
        (study_name,) = spec.study_names
        tag_member(optuna.create_study(study_name=study_name, storage=storage, direction="maximize"), spec)
    return url


@pytest.mark.parametrize("command", ["status", "export", "report", "resume"])
def test_a_command_given_no_campaign_names_the_campaigns_there(command, tmp_path, capsys):
    url = _campaign_storage(tmp_path / "two.db", ["alpha", "beta"])
    extra = ["--out", str(tmp_path / "out")] if command in ("export", "report") else []
    assert main(["campaign", command, "--storage", url, *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"are-search campaign {command}: error: {url} holds 2 campaigns: name one of alpha, beta\n"
    assert not (tmp_path / "out").exists()


def test_status_given_no_campaign_uses_the_only_one(tmp_path, capsys):
    url = _campaign_storage(tmp_path / "one.db", ["alpha"])
    assert main(["campaign", "status", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "campaign alpha: 0/2 trials done (1 study, checkpoint fusion)" in out
    assert "Metafam:Metafam/fixed" in out
    optuna.create_study(study_name="plain", storage=open_storage(StorageURL.parse(url)))  # not a campaign's
    assert main(["campaign", "status", "--storage", url]) == 0
    empty = _campaign_storage(tmp_path / "none.db", [])
    optuna.create_study(study_name="plain", storage=open_storage(StorageURL.parse(empty)))
    assert main(["campaign", "status", "--storage", empty]) == 2
    start = ("start one with: are-search campaign launch --datasets A,B --checkpoint fusion (or a spec: are-search "
             "campaign launch campaigns/local-six.yaml), or pass the --storage that holds yours\n")
    err = capsys.readouterr().err
    assert err.endswith(f"are-search campaign status: error: no campaign in {empty}; {start}") and err.count("\n") == 1
    # a storage that does not exist: one line too, with the command that starts a campaign
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["campaign", "status", "--storage", missing]) == 2
    err = capsys.readouterr().err
    assert err == f"are-search campaign status: error: no campaign: storage {missing} (does not exist); {start}"
    assert not (tmp_path / "missing.db").exists()


def _setup(data_root, text_root, checkpoint_root, cache_dir) -> WorkerSetup:
    options = LoadOptions(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), offline=True, device="cpu")
    return WorkerSetup(str(checkpoint_root / "fusion.pth"), options, device="cpu")


def test_the_bar_starts_with_its_total_and_names_the_dataset_being_run(tmp_path, capsys, data_root, text_root,
                                                                     checkpoint_root, cache_dir):
    campaign = campaign_from_values({"name": "bar", "datasets": DATASET, "checkpoint": "fusion", "trials": 3},
                                    "test")
    job = Job(campaign, StorageURL.parse(f"sqlite:///{tmp_path / 'b.db'}"), tuple(campaign.study_specs()),
              _setup(data_root, text_root, checkpoint_root, cache_dir), {DATASET: 1})
    progress = CampaignProgress(job, open_studies(job), "bar")
    first = capsys.readouterr().err
    assert "0/3" in first and "trial [" not in first.split("\r")[1], first  # no empty bar (0trial [..]) first
    progress.now_on(DATASET)
    assert capsys.readouterr().err.rstrip().endswith(f"now: {DATASET}]")
    progress.close()
    assert capsys.readouterr().err.rstrip().endswith("now: -]")


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it (a suite started in the background inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running(db: Path) -> bool:
    """Whether a trial of the campaign's study in ``db`` is running its objective (has written its settings)."""
    if not db.exists():
        return False
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///file:{db}?mode=ro&uri=true")
        return any("settings" in t.user_attrs for s in storage.get_all_studies()
                   for t in storage.get_all_trials(s._study_id, deepcopy=False,
                                                   states=(optuna.trial.TrialState.RUNNING,)))
    except Exception:  # being created right now
        return False


def test_ctrl_c_names_the_storage_to_resume_and_resume_needs_no_name(tmp_path, data_root, text_root, checkpoint_root,
                                                                    cache_dir):
    db = tmp_path / "runs" / "c.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    inputs = ["--data-root", str(data_root), "--text-root", str(text_root), "--checkpoint-root", str(checkpoint_root),
              "--cache-dir", str(cache_dir), "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k != "ARE_STORAGE"}
    err = tmp_path / "launch.err"
    with open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "search", "campaign", "launch", "--name", "edge", "--datasets",
                                    DATASET, "--checkpoint", "fusion", "--trials", "2", "--pruner", "none",
                                    "--storage", url, *inputs], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=stderr, env=env, preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + 600
            while not _running(db):
                assert process.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=120) == 130, err.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    last = err.read_text().strip().splitlines()[-1]
    assert last.endswith(f"continue with: are-search campaign resume edge --storage '{url}'"), last
    # the hint, run as printed but without the name: the storage's only campaign runs its remaining budget
    resumed = subprocess.run([sys.executable, "-m", "search", "campaign", "resume", "--storage", url, *inputs],
                             cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "campaign edge:" in resumed.stdout
    study = optuna.load_study(study_name=f"{DATASET}/fixed", storage=f"sqlite:///file:{db}?mode=ro&uri=true")
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 2


@pytest.mark.parametrize("change, said", [
    (["--datasets", "FBNELL"], "this launch adds FBNELL:FBNELL_v1/fixed; drops Metafam:Metafam/fixed"),
    (["--datasets", "Metafam", "--modes", "fixed,learnable"], "this launch adds Metafam:Metafam/learnable"),
])
def test_a_relaunch_with_other_datasets_or_modes_is_refused_before_anything_runs(change, said, tmp_path, capsys):
    url = _campaign_storage(tmp_path / "one.db", ["alpha"])
    before = (tmp_path / "one.db").read_bytes()
    started = time.monotonic()
    assert main(["campaign", "launch", "--name", "alpha", "--checkpoint", "fusion", "--storage", url, *change]) == 2
    assert time.monotonic() - started < 10  # refused before any dataset or model is loaded
    assert capsys.readouterr().err == (
        f"are-search campaign launch: error: campaign 'alpha' in {url} has other datasets or modes ({said}): launch it under a "
        "new --name, or continue it as it is with are-search campaign resume alpha\n")
    assert (tmp_path / "one.db").read_bytes() == before
