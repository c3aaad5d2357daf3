"""The cross-dataset report of a campaign: one row per study (dataset, mode), group means, wins, figures.

:func:`write_campaign_report` writes each study's own report (exactly what ``are-search report`` writes,
through the same function, :func:`search.api.report_study`) into ``<out>/studies/<dataset>_<mode>/``
and reads every row's numbers from that report's summary, so a row equals the study's report. Then, in
``<out>`` itself:

* ``campaign.md`` -- a table of every study (best setting, validation and test MRR, Hits@10, and the
  test-MRR difference best − each baseline with its 95% paired-bootstrap interval; a validation MRR on a
  study's validation sample is marked and the sample named under the table, with the standard error of a
  paired MRR difference at its size), the per-group means, the win/tie/loss counts and the figures with a
  caption each;
* ``campaign.csv`` -- the same rows, flat columns, one row per (dataset, mode);
* the figures of :mod:`search.reports.campaign_figures`: ``delta_test_mrr.png``, ``weight_plane.png`` and, when
  some dataset ran in both modes, ``fixed_vs_learnable.png``.

The baselines are those of a study report (:func:`search.reports.study.baseline_settings`): the
checkpoint's own fusion weights (``checkpoint``), the fixed ``0.2/0.8`` and no enhancement (``0/0``).
A difference's interval is the paired percentile bootstrap over test queries (Efron & Tibshirani, *An
Introduction to the Bootstrap*, 1993; :func:`search.reports.stats.paired_bootstrap`). Against each baseline a
study is a **win** when the interval lies above 0, a **loss** when it lies below 0 and a **tie** when it
contains 0. Groups are the benchmark's (:data:`are_model.data.registry.GROUPS`, the group column of
``are-search datasets``): the four groups in which ULTRA (Galkin et al., *Towards Foundation Models for
Knowledge Graph Reasoning*, ICLR 2024, arXiv:2310.04562) and the SEMMA / ARE tables after it report their
57 graphs; group means are unweighted over the datasets of a group, per mode. A learnable study's best
setting is, as in its report, the fusion weights its best trial learned, evaluated as fixed weights on
the checkpoint's model.

Every evaluation's ranks are cached (:mod:`search.reports.rankcache`), so a second report of a campaign runs no
entity pass. The test split is used only here and in the study reports, to report settings chosen on
validation.
"""
from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from are_model.fileio import atomic_write_bytes
from search.errors import StudyError
from search.reports.campaign_text import BASELINES, STATES, campaign_markdown
from search.reports.published import published_mean
from search.study.fusion_terms import FUSION_TERMS, NONE_LABEL, REFERENCE_LABEL
from search.study.names import MODES, StudyName

if TYPE_CHECKING:
    from search.options import LoadOptions

__all__ = [
    "BASELINES",
    "CAMPAIGN_MD",
    "CAMPAIGN_CSV",
    "STUDIES_DIR",
    "CampaignReport",
    "write_campaign_report",
    "study_folder",
    "verdict",
]

_logger = logging.getLogger(__name__)

#: The files written directly in the report folder.
CAMPAIGN_MD = "campaign.md"
CAMPAIGN_CSV = "campaign.csv"
#: The folder (under the report folder) of the studies' own reports.
STUDIES_DIR = "studies"
#: The columns of ``campaign.csv`` on a study's validation sample (empty for a study on the whole split): its
#: pairs and queries, the split's, and the standard error of a paired MRR difference at that size.
_SAMPLE_COLUMNS = ("valid_sample_pairs", "valid_split_pairs", "valid_sample_queries", "valid_split_queries",
                   "valid_paired_se", "test_sample_pairs", "test_split_pairs", "test_sample_queries",
                   "test_split_queries", "valid_entities", "valid_edges", "test_entities", "test_edges",
                   "seconds_per_pair", "cost_device")


@dataclass(frozen=True)
class CampaignReport:
    """What :func:`write_campaign_report` wrote.

    rows: one JSON-ready dict per study (see :func:`write_campaign_report`); groups: per (group, mode)
    means; wins: per baseline the win / tie / loss counts (overall and ``by_mode``); files: every file
    written (the campaign's own first, then the studies' reports); figures: the matplotlib figures
    saved, by file name; omitted: figure file name -> why it was not drawn; bootstrap: resamples, seed
    and confidence of the intervals.
    """

    name: str | None
    out_dir: Path
    rows: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    wins: dict[str, dict[str, Any]]
    files: list[Path]
    figures: dict[str, Any] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The one JSON object of ``campaign report --json``: ``campaign``, ``rows``, ``groups``, ``wins``,
        ``files`` (absolute paths as strings), ``omitted`` and ``bootstrap``."""
        return {"campaign": self.name, "rows": self.rows, "groups": self.groups, "wins": self.wins,
                "files": [str(path) for path in self.files], "omitted": dict(self.omitted),
                "bootstrap": dict(self.bootstrap)}


# ---------------------------------------------------------------------------------------------
# rows


def study_folder(name: StudyName) -> str:
    """The folder of a study's report under ``<out>/studies``: ``<dataset with ':' -> '_'>_<mode>``."""
    return f"{name.dataset.replace(':', '_')}_{name.mode}"


def verdict(low: float, high: float) -> str:
    """``win`` (interval above 0), ``loss`` (below 0) or ``tie`` (it contains 0)."""
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "tie"


def _group_of(dataset: str) -> str:
    """The benchmark group of ``dataset`` (any accepted spelling); ``other`` when it is not registered."""
    from are_model.data import DATASETS, resolve_dataset_name
    from are_model.data.registry import OTHER_GROUP

    try:
        return DATASETS[resolve_dataset_name(dataset)].group
    except Exception:  # an old or foreign study name: reported, in no benchmark group
        return OTHER_GROUP


def _numbers(setting: dict[str, Any]) -> dict[str, Any]:
    """A report setting's weights, validation MRR (and where it came from) and test MRR / Hits@10."""
    return {"weights": list(setting["weights"]), "valid_mrr": setting["valid_mrr"],
            "valid_source": setting["valid_source"], "test_mrr": setting["test"]["mrr"],
            "test_hits@10": setting["test"]["hits@10"]}


def _row_from_summary(name: StudyName, summary: dict[str, Any], folder: str) -> dict[str, Any]:
    """The campaign row of a study from its report's summary (every number taken as it is)."""
    settings = summary["settings"]
    best_setting, by_label = settings[0], {s["label"]: s for s in settings[1:]}
    baselines = {key: _numbers(by_label[label]) for key, label in BASELINES.items()}
    deltas = {}
    mixed = {entry["against"]: entry["worse_on"] for entry in summary.get("mixed") or []}
    for key, label in BASELINES.items():
        diff = by_label[label]["diff_vs_best"]
        deltas[key] = {"delta": diff["diff"], "low": diff["low"], "high": diff["high"],
                       "verdict": verdict(diff["low"], diff["high"]), "mixed": mixed.get(label)}
    best = {"trial": summary["best"]["trial"], "trial_value": summary["best"]["value"],
            "params": summary["best"]["params"], "settings": summary["best"]["settings"],
            "weights_kind": "fixed" if name.mode == "fixed" else "learned", **_numbers(best_setting)}
    return {
        "dataset": name.dataset,
        "mode": name.mode,
        "study": str(name),
        "group": _group_of(name.dataset),
        "checkpoint": summary["checkpoint"],
        "profile": summary["profile"],
        "encoder": summary["encoder"],
        "trials": dict(summary["trials"]),
        "best": best,
        "baselines": baselines,
        "ci95": {"low": deltas["checkpoint"]["low"], "high": deltas["checkpoint"]["high"]},
        "deltas": deltas,
        "test_queries": best_setting["test"]["num_queries"],
        "report": f"{STUDIES_DIR}/{folder}",
        "valid_sample": summary.get("valid_sample"),
        "test_sample": summary.get("test_sample"),
        "graphs": summary.get("graphs"),
        "known_points_only": bool(summary.get("known_points_only")),
        "note": summary.get("note"),
    }


def _empty_row(name: StudyName, study: Any, note: str) -> dict[str, Any]:
    """The row of a study with nothing to report (no complete trial, or a report that failed)."""
    from search.study.budget import trial_counts
    from search.study.prepare import LAUNCH_ATTR
    from search.reports.study import file_name
    from search.study.spec import SPEC_ATTR

    stored = study.user_attrs.get(SPEC_ATTR)
    launch = study.user_attrs.get(LAUNCH_ATTR)
    return {
        "dataset": name.dataset,
        "mode": name.mode,
        "study": str(name),
        "group": _group_of(name.dataset),
        "checkpoint": file_name(stored.get("checkpoint")) if isinstance(stored, dict) else None,
        "profile": None,
        "encoder": launch.get("encoder_name") if isinstance(launch, dict) else None,
        "trials": trial_counts(study, interrupted=True),
        "best": None,
        "baselines": None,
        "ci95": None,
        "deltas": None,
        "test_queries": None,
        "report": None,
        "valid_sample": _stored_sample(stored),
        "test_sample": None,
        "graphs": None,
        "cost": _cost_of(study),
        "known_points_only": False,
        "note": note,
    }


def _cost_of(study: Any) -> dict[str, Any] | None:
    """The study's cost record as a time-budgeted campaign's probe stored it (:data:`search.campaign.timing.COST_ATTR`:
    ``seconds_per_pair``, ``pairs``, ``device``, ...), or None."""
    from search.campaign.timing import COST_ATTR

    cost = study.user_attrs.get(COST_ATTR)
    return dict(cost) if isinstance(cost, dict) else None


def _stored_sample(stored: Any) -> dict[str, Any] | None:
    """What a study's stored spec says of its validation sample when no report measured it: ``{"pairs": N}``
    (None for the whole split)."""
    pairs = stored.get("valid_pairs") if isinstance(stored, dict) else None
    return None if pairs is None else {"pairs": pairs}


def _order(row: dict[str, Any]) -> tuple:
    from are_model.data.registry import GROUP_ORDER

    group = GROUP_ORDER.index(row["group"]) if row["group"] in GROUP_ORDER else len(GROUP_ORDER)
    return group, row["dataset"].lower(), MODES.index(row["mode"]) if row["mode"] in MODES else len(MODES)


# ---------------------------------------------------------------------------------------------
# groups and wins


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def group_means(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (group, mode), over the rows with a best setting: how many datasets, and the unweighted means of
    the best's validation MRR, test MRR and Hits@10, of each baseline's test MRR and Hits@10, and of the
    difference best − baseline; ``published``: the group's published zero-shot mean
    (:func:`search.reports.published.published_mean`, None where none is published). Groups in
    :data:`GROUP_ORDER`, modes fixed then learnable."""
    from are_model.data.registry import GROUP_ORDER

    done = [row for row in rows if row["best"] is not None]
    keys = sorted({(row["group"], row["mode"]) for row in done},
                  key=lambda k: (GROUP_ORDER.index(k[0]) if k[0] in GROUP_ORDER else len(GROUP_ORDER),
                                 MODES.index(k[1]) if k[1] in MODES else len(MODES)))
    groups = []
    for group, mode in keys:
        members = [row for row in done if row["group"] == group and row["mode"] == mode]
        groups.append({
            "group": group,
            "mode": mode,
            "datasets": len(members),
            "names": [row["dataset"] for row in members],
            "best": {"valid_mrr": _mean([r["best"]["valid_mrr"] for r in members]),
                     "test_mrr": _mean([r["best"]["test_mrr"] for r in members]),
                     "test_hits@10": _mean([r["best"]["test_hits@10"] for r in members])},
            "baselines": {key: {"test_mrr": _mean([r["baselines"][key]["test_mrr"] for r in members]),
                                "test_hits@10": _mean([r["baselines"][key]["test_hits@10"] for r in members])}
                          for key in BASELINES},
            "delta": {key: _mean([r["deltas"][key]["delta"] for r in members]) for key in BASELINES},
            "published": published_mean(group),
        })
    return groups


def win_counts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per baseline: ``win`` / ``tie`` / ``loss`` counts of the best setting over the rows that searched (a
    row of known points only searched nothing: counted apart, as ``known_only``, never as a win), and the same
    per mode (``by_mode``). A win is an interval above 0, a loss below 0, a tie one that contains 0;
    ``mixed`` counts the searched rows whose best is better on test MRR but worse on test MR or Hits@10 than
    that baseline (:func:`search.reports.study.mixed_verdicts`)."""
    wins: dict[str, dict[str, Any]] = {}
    for key in BASELINES:
        total = {"win": 0, "tie": 0, "loss": 0, "mixed": 0, "known_only": 0}
        by_mode: dict[str, dict[str, int]] = {}
        for row in rows:
            if row["deltas"] is None:
                continue
            mode = by_mode.setdefault(row["mode"], {"win": 0, "tie": 0, "loss": 0, "mixed": 0, "known_only": 0})
            outcome = "known_only" if row.get("known_points_only") else row["deltas"][key]["verdict"]
            outcomes = [outcome] + (["mixed"] if outcome != "known_only" and row["deltas"][key].get("mixed") else [])
            for counted in outcomes:
                total[counted] += 1
                mode[counted] += 1
        wins[key] = {**total, "by_mode": by_mode}
    return wins


# ---------------------------------------------------------------------------------------------
# campaign.csv


def _csv_name(key: str) -> str:
    return {"checkpoint": "own", REFERENCE_LABEL: "fixed_" + REFERENCE_LABEL.replace("/", "_"),
            NONE_LABEL: "none_" + NONE_LABEL.replace("/", "_")}[key]


def csv_columns() -> list[str]:
    """The columns of ``campaign.csv`` (weights and differences per baseline: ``own``, ``fixed_0.2_0.8``,
    ``none_0_0``; one weight column per fusion term: ``best_w_sim``, ``best_w_prompt``, ...)."""
    columns = ["dataset", "mode", "study", "group", "checkpoint", "encoder"]
    columns += [f"trials_{state.lower()}" for state in STATES]
    columns += ["best_trial", "best_kind", *(f"best_{term.symbol}" for term in FUSION_TERMS), "best_valid_mrr",
                "best_test_mrr", "best_test_hits@10"]
    for key in BASELINES:
        slug = _csv_name(key)
        columns += [*(f"{slug}_{term.symbol}" for term in FUSION_TERMS), f"{slug}_valid_mrr", f"{slug}_test_mrr",
                    f"{slug}_test_hits@10", f"delta_vs_{slug}", f"delta_vs_{slug}_low", f"delta_vs_{slug}_high",
                    f"verdict_vs_{slug}"]
    columns += ["test_queries", *_SAMPLE_COLUMNS, "time_s", "time_share_s", "trial_s", "report", "note"]
    return columns


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {key: row[key] for key in ("dataset", "mode", "study", "group", "checkpoint", "encoder")}
    for state in STATES:
        flat[f"trials_{state.lower()}"] = row["trials"].get(state, 0)
    best = row["best"]
    if best is not None:
        flat.update({"best_trial": best["trial"], "best_kind": best["weights_kind"],
                     **{f"best_{term.symbol}": w for term, w in zip(FUSION_TERMS, best["weights"])},
                     "best_valid_mrr": best["valid_mrr"], "best_test_mrr": best["test_mrr"],
                     "best_test_hits@10": best["test_hits@10"]})
        for key in BASELINES:
            slug, base, delta = _csv_name(key), row["baselines"][key], row["deltas"][key]
            flat.update({**{f"{slug}_{term.symbol}": w for term, w in zip(FUSION_TERMS, base["weights"])},
                         f"{slug}_valid_mrr": base["valid_mrr"], f"{slug}_test_mrr": base["test_mrr"],
                         f"{slug}_test_hits@10": base["test_hits@10"], f"delta_vs_{slug}": delta["delta"],
                         f"delta_vs_{slug}_low": delta["low"], f"delta_vs_{slug}_high": delta["high"],
                         f"verdict_vs_{slug}": delta["verdict"]})
    sample = row.get("valid_sample") or {}
    paired = sample.get("paired") or {}
    flat.update({"valid_sample_pairs": sample.get("pairs"), "valid_split_pairs": sample.get("split_pairs"),
                 "valid_sample_queries": sample.get("queries"), "valid_split_queries": sample.get("split_queries"),
                 "valid_paired_se": paired.get("se")})
    test = row.get("test_sample") or {}
    flat.update({"test_sample_pairs": test.get("pairs"), "test_split_pairs": test.get("split_pairs"),
                 "test_sample_queries": test.get("queries"), "test_split_queries": test.get("split_queries")})
    graphs, cost = row.get("graphs") or {}, row.get("cost") or {}
    for split in ("valid", "test"):
        size = graphs.get(split) or {}
        flat.update({f"{split}_entities": size.get("entities"), f"{split}_edges": size.get("edges")})
    flat.update({"seconds_per_pair": cost.get("seconds_per_pair"), "cost_device": cost.get("device")})
    time = row.get("time") or {}
    flat.update({"time_s": time.get("seconds"), "time_share_s": time.get("share"), "trial_s": time.get("per_trial")})
    flat.update({"test_queries": row["test_queries"], "report": row["report"], "note": row["note"]})
    return {key: ("" if value is None else repr(value) if isinstance(value, float) else value)
            for key, value in flat.items()}


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(), restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_row(row))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# campaign.md


# ---------------------------------------------------------------------------------------------
# the report


def write_campaign_report(studies: Sequence[Any], out_dir: str | Path, *, options: "LoadOptions", n_boot: int = 2000,
                          seed: int = 0, progress: bool = False, name: str | None = None,
                          times: Mapping[str, dict[str, Any]] | None = None,
                          test_pairs: int | None = None) -> CampaignReport:
    """Write the cross-dataset report of ``studies`` into ``out_dir``; see the module doc for the files.

    studies: ``optuna.Study`` objects named ``<dataset>/<mode>`` (opened read-only is enough); options:
    the resolved :class:`search.options.LoadOptions` (data, texts, checkpoints, cache, device); n_boot,
    seed: the paired bootstrap's resamples and seed (as ``are-search report``); progress: bars on stderr;
    name: the campaign's name (title and ``campaign`` of the JSON); times: study name -> its time record
    (``seconds`` spent, ``share`` of the time budget or None, ``per_trial`` seconds or None; see
    :func:`search.campaign.api.status`), shown as each row's ``time`` (None where not given); test_pairs:
    each study's test split is ranked on a sample of this many pairs where it has more (as ``report
    --test-pairs``; None: whole splits).

    Each row (``CampaignReport.rows``) holds ``dataset`` (the study name's dataset part, verbatim),
    ``mode``, ``study``, ``group``, ``checkpoint`` (file name), ``profile``, ``encoder``, ``trials``
    (counts by trial state), ``best`` (``trial``, ``trial_value`` -- the trial's validation MRR, after
    fine-tuning in learnable mode --, ``params``, ``settings`` -- the trial's stored settings --,
    ``weights_kind`` -- ``fixed`` or ``learned`` --, ``weights`` [E] (w_sim, w_prompt) as evaluated,
    ``valid_mrr``, ``valid_source``, ``test_mrr``, ``test_hits@10``), ``baselines`` (``checkpoint``,
    ``0.2/0.8``, ``0/0`` -> ``weights``, ``valid_mrr``, ``valid_source``, ``test_mrr``,
    ``test_hits@10``), ``deltas`` (per baseline: ``delta`` = test MRR best − baseline, its interval
    ``low`` / ``high`` and ``verdict`` win / tie / loss), ``ci95`` (``low`` / ``high`` of the difference
    against the checkpoint's own setting), ``test_queries``, ``report`` (the study's report folder,
    relative to ``out_dir``), ``valid_sample`` (the report's: the validation sample the study searched on,
    its size and the standard error of a paired MRR difference at that size; None for the whole split),
    ``test_sample`` (the test sample the report ranked, None for the whole split), ``graphs`` (``valid`` /
    ``test`` -> entities, relations, edges of the split's graph, inverse edges included; ``valid`` as the cost
    record holds it where it does, :func:`search.reports.study.graph_sizes`), ``cost`` (the
    study's cost record from a time-budgeted campaign's probe: ``seconds_per_pair`` on ``device``..., or
    None) and
    ``note``. MRRs are fractions in [0, 1]; every number is the one of the
    study's ``summary.json``. A study without a complete trial gets ``best``, ``baselines``, ``deltas``,
    ``ci95`` None and a ``note`` saying why (likewise a study whose report fails with a one-line
    StudyError); the others are reported all the same.

    Raises UsageError for no studies or two studies of one name, and the errors of a study report that
    are not about the study itself (a missing checkpoint or dataset: CheckpointError, DatasetError).
    """
    from search.reports import plots as study_plots
    from search.reports import campaign_figures
    from search.errors import UsageError
    from search.api import report_study
    from search.results import best_of
    from search.reports.study import CONFIDENCE

    if not studies:
        raise UsageError("a campaign report needs at least one study")
    names = [StudyName.parse(study.study_name) for study in studies]
    seen: set[str] = set()
    for study_name in names:
        if str(study_name) in seen:
            raise UsageError(f"study {study_name} is given twice")
        seen.add(str(study_name))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    study_files: list[Path] = []
    for index, (study, study_name) in enumerate(zip(studies, names), start=1):
        if best_of(study) is None:
            _logger.warning("campaign report: %s has no complete trial; its row is empty", study_name)
            rows.append(_empty_row(study_name, study, "no complete trial: nothing to report"))
            continue
        folder = study_folder(study_name)
        _logger.info("campaign report: study %d/%d, %s", index, len(studies), study_name)
        try:
            written = report_study(study, out / STUDIES_DIR / folder, options=options, n_boot=n_boot, seed=seed,
                                   progress=progress, test_pairs=test_pairs)
        except StudyError as error:
            _logger.warning("campaign report: %s not reported: %s", study_name, error)
            rows.append(_empty_row(study_name, study, f"not reported: {error}"))
            continue
        rows.append({**_row_from_summary(study_name, written.summary, folder), "cost": _cost_of(study)})
        study_files += list(written.files)
    for row in rows:
        row["time"] = (times or {}).get(row["study"])
    rows.sort(key=_order)
    groups = group_means(rows)
    wins = win_counts(rows)
    bootstrap = {"n_boot": int(n_boot), "seed": int(seed), "confidence": CONFIDENCE, "method": "paired, percentile",
                 "metric": "test MRR, best - baseline"}

    drawn = campaign_figures.campaign_figures(rows)
    omitted = dict(drawn.omitted)
    files: list[Path] = []
    for file_name in campaign_figures.FIGURES:
        if file_name in drawn.figures:
            files.append(study_plots.save_png(drawn.figures[file_name], out / file_name))
        else:
            (out / file_name).unlink(missing_ok=True)  # an older report's figure would be stale
    atomic_write_bytes(out / CAMPAIGN_MD, campaign_markdown(name, rows, groups, wins, campaign_figures.CAPTIONS, omitted,
                                                    bootstrap).encode("utf-8"))
    atomic_write_bytes(out / CAMPAIGN_CSV, _csv(rows).encode("utf-8"))
    files = [out / CAMPAIGN_MD, out / CAMPAIGN_CSV] + files
    _logger.info("campaign report of %d studies written to %s", len(rows), out)
    return CampaignReport(name, out, rows, groups, wins, files + study_files, dict(drawn.figures), omitted, bootstrap)
