"""Ray asked for what it cannot give (issue 19 fault): a study or a campaign launched with ``--ray`` on a cluster
without the GPUs (or CPUs) one trial asks for fails at once in one line instead of waiting for them forever, and
an ``--address`` nobody answers at fails within a bounded wait. A real local Ray (``ray.init(num_cpus=1)``, no
GPU), real launches on NELLInductive:v1 with fusion.pth; what a failed launch made is removed again.
"""
from __future__ import annotations

import socket
import time

import pytest

import search
import search.campaign
from search.cli import main
from search.errors import UsageError

ray = pytest.importorskip("ray")

DATASET = "NELLInductive:v1"


def _inputs(data_root, text_root, checkpoint_root, cache_dir) -> dict:
    return dict(data_root=str(data_root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                cache_dir=str(cache_dir), offline=True)


def test_more_gpus_or_cpus_than_the_cluster_has_is_one_line(tmp_path, data_root, text_root, checkpoint_root,
                                                            cache_dir):
    inputs = _inputs(data_root, text_root, checkpoint_root, cache_dir)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.cluster_resources().get("GPU", 0) == 0
        db = tmp_path / "s.db"
        with pytest.raises(UsageError) as error:
            search.launch(dataset=DATASET, checkpoint="fusion", trials=2, ray=True, gpus_per_trial=1,
                          storage=f"sqlite:///{db}", **inputs)
        assert str(error.value) == "--gpus-per-trial 1 but the Ray cluster has 0 GPUs"
        assert not db.exists()  # the study the launch made is removed again, and the file it made
        with pytest.raises(UsageError) as error:
            search.launch(dataset=DATASET, checkpoint="fusion", trials=2, ray=True, cpus_per_trial=2,
                          storage=f"sqlite:///{db}", **inputs)
        assert str(error.value) == "--cpus-per-trial 2 but the Ray cluster has 1 CPU"
        with pytest.raises(UsageError) as error:
            search.campaign.launch(name="c", datasets=DATASET, checkpoint="fusion", trials=2, ray=True,
                                   gpus_per_trial=0.5, storage=f"sqlite:///{tmp_path / 'c.db'}", **inputs)
        assert str(error.value) == "--gpus-per-trial 0.5 but the Ray cluster has 0 GPUs"
        assert ray.is_initialized()  # a cluster the caller started is left to the caller
    finally:
        ray.shutdown()


def test_an_address_nobody_answers_at_fails_within_a_bounded_wait(tmp_path, capsys, data_root, text_root,
                                                                  checkpoint_root, cache_dir):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    db = tmp_path / "s.db"
    inputs = _inputs(data_root, text_root, checkpoint_root, cache_dir)
    argv = ["launch", "--dataset", DATASET, "--checkpoint", "fusion", "--trials", "2", "--ray", "--address",
            f"127.0.0.1:{port}", "--storage", str(db), "--offline", "--data-root", inputs["data_root"],
            "--text-root", inputs["text_root"], "--checkpoint-root", inputs["checkpoint_root"],
            "--cache-dir", inputs["cache_dir"]]
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 180  # loading included; Ray's own retries take minutes
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"are-search launch: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused (--address)")
    assert not db.exists()
    assert not ray.is_initialized()
