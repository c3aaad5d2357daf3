"""search.report: the paired bootstrap on synthetic ranks, and `are-search report` on a small real study."""
from __future__ import annotations

import json

import pytest
import torch

from search.cli import main
from search.report import baseline_settings, paired_bootstrap

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


# -------------------------------------------------------------------------------- paired bootstrap


def _ranks(n: int, seed: int, high: int = 50) -> torch.Tensor:
    return torch.randint(1, high, (n,), generator=torch.Generator().manual_seed(seed))


def test_identical_rank_vectors_give_zero_interval():
    ranks = _ranks(500, 0)
    interval = paired_bootstrap(ranks, ranks.clone(), n_boot=1000, seed=3)
    assert (interval.diff, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.excludes_zero


def test_clear_improvement_excludes_zero_and_brackets_the_known_difference():
    worse = _ranks(800, 1, high=20) + 1             # ranks 2..20
    better = torch.ones_like(worse)                  # every query at rank 1
    expected = float((1.0 / better.double() - 1.0 / worse.double()).mean())
    interval = paired_bootstrap(better, worse, n_boot=2000, seed=0)
    assert interval.diff == pytest.approx(expected, abs=1e-12)
    assert 0 < interval.low < interval.diff < interval.high
    assert interval.excludes_zero
    reverse = paired_bootstrap(worse, better, n_boot=2000, seed=0)
    assert reverse.high < 0 and reverse.diff == pytest.approx(-expected)


def test_small_difference_on_few_queries_does_not_exclude_zero():
    # two queries of 200 move from rank 2 to rank 1 and two from rank 1 to rank 3: noise, not a gain
    base = _ranks(200, 5, high=10)
    other = base.clone()
    other[:2], base[:2] = 1, 2
    other[2:4], base[2:4] = 3, 1
    interval = paired_bootstrap(other, base, n_boot=2000, seed=0)
    assert interval.low < 0 < interval.high


def test_bootstrap_is_seeded_and_paired():
    a, b = _ranks(300, 7), _ranks(300, 8)
    first = paired_bootstrap(a, b, n_boot=1500, seed=11)
    assert paired_bootstrap(a, b, n_boot=1500, seed=11) == first
    assert paired_bootstrap(a, b, n_boot=1500, seed=12) != first
    # plain lists give the same interval as tensors
    assert paired_bootstrap(a.tolist(), b.tolist(), n_boot=1500, seed=11) == first


def test_bootstrap_in_blocks_matches_interval_width():
    # many queries: the index matrix is drawn in blocks; the interval still shrinks like 1/sqrt(Q)
    a, b = _ranks(40_000, 1), _ranks(40_000, 2)
    wide = paired_bootstrap(a[:400], b[:400], n_boot=400, seed=0)
    narrow = paired_bootstrap(a, b, n_boot=400, seed=0)
    assert narrow.low <= narrow.diff <= narrow.high
    assert (narrow.high - narrow.low) < (wide.high - wide.low) / 5


@pytest.mark.parametrize("a, b", [([1, 2], [1]), ([], []), ([0, 1], [1, 1])])
def test_bootstrap_rejects_bad_ranks(a, b):
    with pytest.raises(ValueError):
        paired_bootstrap(torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long))


def test_baselines_are_checkpoint_02_08_and_none():
    assert baseline_settings((0.225, 0.775)) == [("checkpoint", (0.225, 0.775)), ("0.2/0.8", (0.2, 0.8)),
                                                 ("no enhancement", (0.0, 0.0))]


# ---------------------------------------------------------------------------------- report command


@pytest.fixture(scope="module")
def study_url(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir) -> str:
    # the same tiny Metafam/fixed study as test_cli (same folder: built once per session)
    from test_cli import small_study

    return small_study(tmp_path_factory, data_root, text_root, checkpoint_root, cache_dir)


def test_report_writes_plots_and_summaries(capsys, monkeypatch, tmp_path, study_url, data_root, text_root,
                                           cache_dir):
    monkeypatch.chdir(tmp_path)  # the default output folder is ./studies/reports/<dataset>_<mode>/
    status = main(["report", "Metafam/fixed", "--storage", study_url, "--data-root", str(data_root),
                   "--text-root", str(text_root), "--cache-dir", str(cache_dir), "--device", "cpu",
                   "--threads", "2", "--n-boot", "1000"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    out = tmp_path / "studies" / "reports" / "Metafam_fixed"
    for name in ("optimization_history.png", "weights_scatter.png", "param_importances.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_HEADER) and len(data) > 2000, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["study"] == "Metafam/fixed" and summary["profile"] == "are-fusion"
    assert summary["bootstrap"]["n_boot"] == 1000
    rows = {row["label"]: row for row in summary["settings"]}
    best_label = f"best (trial {summary['best']['trial']})"
    assert set(rows) == {best_label, "checkpoint", "0.2/0.8", "no enhancement"}
    assert rows["checkpoint"]["weights"] == pytest.approx([0.2250, 0.7750], abs=5e-5)
    assert rows["no enhancement"]["weights"] == [0.0, 0.0]
    best = rows[best_label]
    assert best["valid_mrr"] == pytest.approx(summary["best"]["value"]) and best["diff_vs_best"] is None
    for label, row in rows.items():
        assert row["test"]["num_queries"] == 368, label
        assert 0 < row["test"]["mrr"] < 1
        # the known points ran as trials, so every validation number comes from the study
        assert row["valid_source"].startswith("trial "), label
        assert row["valid_mrr"] <= summary["best"]["value"] + 1e-12
        if row is not best:
            diff = row["diff_vs_best"]
            assert diff["low"] <= diff["diff"] <= diff["high"]
            assert diff["diff"] == pytest.approx(best["test"]["mrr"] - row["test"]["mrr"], abs=1e-9)
    markdown = (out / "summary.md").read_text()
    for label in rows:
        assert f"| {label} |" in markdown
    assert "test MRR" in markdown and "95% CI" in markdown
    assert f"{rows['no enhancement']['test']['mrr']:.4f}" in markdown
    # stdout: the table and where the report went
    assert "no enhancement" in captured.out and "studies/reports/Metafam_fixed" in captured.out
