"""A campaign report in words: ``campaign.md`` from its rows, group means and wins (:func:`campaign_markdown`)."""
from __future__ import annotations

from typing import Any, Sequence

from search.study.fusion_terms import FUSION_TERMS, NONE_LABEL, REFERENCE_LABEL, joined, symbols
from search.reports.study_text import interval_text
from search.study.names import MODES

__all__ = ["BASELINES", "BASELINE_TITLES", "STATES", "fmt", "delta_text", "mixed_note", "trials_text", "sample_mark",
           "test_mark", "sample_note", "weights_text", "modes_section", "published_section", "campaign_markdown"]

#: Baseline key (in rows, groups and wins) -> its label in a study report's ``settings`` ("0.2/0.8" and
#: "0/0" are the fusion terms' reference point and no enhancement, :mod:`search.study.fusion_terms`).
BASELINES: dict[str, str] = {"checkpoint": "checkpoint", REFERENCE_LABEL: REFERENCE_LABEL, NONE_LABEL: "no enhancement"}
#: How tables and figures name each baseline.
BASELINE_TITLES: dict[str, str] = {"checkpoint": "own", REFERENCE_LABEL: REFERENCE_LABEL, NONE_LABEL: NONE_LABEL}
#: The trial states counted in ``campaign.csv`` (one column each).
STATES = ("COMPLETE", "PRUNED", "FAIL", "INTERRUPTED", "RUNNING", "WAITING")


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def delta_text(delta: dict[str, Any], known_only: bool = False) -> str:
    """A Δ cell: ``+0.0052 [+0.0013, +0.0091]``, bold with its verdict when the interval excludes 0 (a row of
    known points only never says win or loss: nothing was searched), ``‡ mixed`` when the best is worse on
    test MR or Hits@10 than that baseline."""
    text = interval_text(delta["delta"], delta["low"], delta["high"])
    if delta["verdict"] != "tie" and not known_only:
        text = f"**{text}** {delta['verdict']}"
    return text + (" ‡ mixed" if delta.get("mixed") else "")


def mixed_note(row: dict[str, Any]) -> str | None:
    """``vs own: better on test MRR but worse on test MR (75.7 vs 74.8)`` for each baseline of ``row`` with a mixed
    verdict ("a higher test MRR, a tie," where the Δ interval contains 0), or None."""
    parts = []
    for key, title in BASELINE_TITLES.items():
        delta = (row.get("deltas") or {}).get(key) or {}
        worse = delta.get("mixed")
        if worse:
            metrics = " and ".join(f"test {'MR' if m == 'mr' else 'Hits@10'} ({a:.{1 if m == 'mr' else 4}f} vs "
                                   f"{b:.{1 if m == 'mr' else 4}f})" for m, (a, b) in worse.items())
            mrr = "better on test MRR" if delta.get("verdict") == "win" else "a higher test MRR, a tie,"
            parts.append(f"vs {title}: {mrr} but worse on {metrics}")
    return "; ".join(parts) or None


def trials_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[state]} {state.lower()}" for state in STATES if counts.get(state)]
    parts += [f"{n} {state.lower()}" for state, n in counts.items() if state not in STATES and n]
    return ", ".join(parts) or "none"


def sample_mark(row: dict[str, Any]) -> str:
    return " †" if row.get("valid_sample") else ""


def test_mark(row: dict[str, Any]) -> str:
    """`` §`` after a test figure ranked on the study's test sample (``report --test-pairs``)."""
    return " §" if row.get("test_sample") else ""


def sample_note(sample: dict[str, Any]) -> str:
    """A study's validation sample in words: its size, and the standard error of a paired MRR difference."""
    if "split_pairs" not in sample:
        return f"searched on a validation sample of {sample['pairs']} pairs"
    text = (f"searched on a validation sample of {sample['pairs']} of {sample['split_pairs']} pairs "
            f"({sample['queries']} of {sample['split_queries']} queries)")
    paired = sample.get("paired")
    if paired is not None:
        text += (f"; standard error of a paired validation-MRR difference at this size {paired['se']:.4f} "
                 f"({paired['setting']} − {paired['against']}: {paired['delta']:+.4f})")
    return text


def time_note(counts: dict[str, int], time: dict[str, Any]) -> str:
    """``8 trials in 48 s of a 50 s share, 5.1 s a trial`` (share and cost per trial where known)."""
    done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    text = f"{done} trial{'' if done == 1 else 's'} in {time['seconds']:.0f} s"
    if time.get("share") is not None:
        text += f" of a {time['share']:.0f} s share"
    if time.get("per_trial") is not None:
        text += f", {time['per_trial']:.1f} s a trial"
    return text


def weights_text(row: dict[str, Any]) -> str:
    best = row["best"]
    text = joined(best["weights"])
    return f"learned {text}" if best["weights_kind"] == "learned" else text


#: How the modes section names each fusion mode.
MODE_TITLES = {"fixed": "best fixed", "learnable": "best learnable (softmax)", "learnable_free": "best learnable (free)"}


def modes_section(rows: Sequence[dict[str, Any]], level: int) -> list[str]:
    """``## Fusion modes side by side``: one line per dataset that ran more than one mode, with the checkpoint's
    own weights and 0.2/0.8 (test MRR), then per mode the best setting (learned weights for a learnable mode),
    its test MRR and its paired Δ vs own -- every number the one of the study's row (its own report). [] when
    no dataset ran two modes."""
    by_dataset: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], {})[row["mode"]] = row
    shown = {dataset: modes for dataset, modes in by_dataset.items() if len(modes) > 1}
    if not shown:
        return []
    modes = [mode for mode in MODES if any(mode in m for m in shown.values())]
    lines = ["", "## Fusion modes side by side", "",
             "Per dataset: the checkpoint's own fusion weights and the fixed reference point, then each mode's best "
             f"setting ({symbols()}; a learnable mode's are the weights its best trial learned, evaluated as fixed "
             f"weights), its test MRR and its Δ vs own [{level}% paired CI]. A learnable (softmax) mode's weights sum "
             "to 1; the free mode's need not; fixed weights range over the search space.", "",
             f"| dataset | own {symbols()} : test MRR | {REFERENCE_LABEL} test MRR | "
             + " | ".join(MODE_TITLES[m] for m in modes) + " |",
             "|---|---|---|" + "---|" * len(modes)]
    for dataset, by_mode in shown.items():
        done = [row for row in by_mode.values() if row["best"] is not None]
        if done:
            base = done[0]["baselines"]
            own = f"{joined(base['checkpoint']['weights'])} : {fmt(base['checkpoint']['test_mrr'])}"
            reference = fmt(base[REFERENCE_LABEL]["test_mrr"])
        else:
            own = reference = "—"
        cells = []
        for mode in modes:
            row = by_mode.get(mode)
            if row is None:
                cells.append("not run")
            elif row["best"] is None:
                cells.append("no complete trial")
            else:
                known_only = bool(row.get("known_points_only"))
                cells.append(f"{joined(row['best']['weights'])} : {fmt(row['best']['test_mrr'])}, Δ "
                             + delta_text(row["deltas"]["checkpoint"], known_only)
                             + (" (known points only)" if known_only else ""))
        lines.append(f"| {dataset} | {own} | {reference} | " + " | ".join(cells) + " |")
    return lines


def published_section(groups: Sequence[dict[str, Any]]) -> list[str]:
    """The lines that set each group mean next to the group's published zero-shot mean
    (:mod:`search.reports.published`), with how many of the group's graphs each mean runs over; none when no
    group of the campaign has a published mean."""
    from search.reports.published import PUBLISHED_CHECKPOINT, PUBLISHED_SOURCE

    rows = [g for g in groups if g.get("published")]
    if not rows:
        return []
    lines = ["", f"Published zero-shot means of `{PUBLISHED_CHECKPOINT}` ({PUBLISHED_SOURCE}), the body every ARE "
             "checkpoint starts from: no ARE or SEMMA group means are published. The published mean runs over all "
             "the group's graphs, ours over those the campaign ran, so the two differ in population as well as in "
             "model.", "",
             f"| group | mode | graphs (ours / published) | own test MRR | best test MRR | "
             f"published {PUBLISHED_CHECKPOINT} test MRR | own test H@10 | best test H@10 "
             f"| published {PUBLISHED_CHECKPOINT} test H@10 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for g in rows:
        pub, own = g["published"], g["baselines"]["checkpoint"]
        lines.append(f"| {g['group']} | {g['mode']} | {g['datasets']} / {pub['graphs']} | {fmt(own['test_mrr'])} "
                     f"| {fmt(g['best']['test_mrr'])} | {pub['test_mrr']:.3f} | {fmt(own['test_hits@10'])} "
                     f"| {fmt(g['best']['test_hits@10'])} | {pub['test_hits@10']:.3f} |")
    return lines


def campaign_markdown(report_name: str | None, rows: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]],
              wins: dict[str, dict[str, Any]], plots: dict[str, tuple[str, str]], omitted: dict[str, str],
              bootstrap: dict[str, Any]) -> str:
    level = round(bootstrap["confidence"] * 100)
    studies = len(rows)
    done = sum(1 for row in rows if row["best"] is not None)
    datasets = len({row["dataset"] for row in rows})
    lines = [
        f"# Campaign {report_name}" if report_name else "# Campaign report",
        "",
        f"{studies} stud{'y' if studies == 1 else 'ies'} over {datasets} dataset{'s' if datasets != 1 else ''} "
        f"({done} with a complete trial). Settings are chosen on each dataset's validation split; the test split "
        "is used only to report them. Each study's own report (figures, all metrics) is linked in the last column.",
        "",
        "## Studies",
        "",
        f"Δ = test MRR of the best setting − the baseline's, with its {level}% paired-bootstrap interval over test "
        f"queries ({bootstrap['n_boot']} resamples, seed {bootstrap['seed']}). Baselines: **own** = the checkpoint's "
        f"own fusion weights, **{REFERENCE_LABEL}** = fixed "
        + ", ".join(f"{term.symbol} {term.reference:g}" for term in FUSION_TERMS)
        + f", **{NONE_LABEL}** = no enhancement. An interval "
        "above 0 is a **win**, below 0 a **loss** (both in bold), one that contains 0 a tie. A learnable study's best "
        "setting is the fusion weights its best trial learned, evaluated as fixed weights.",
        "",
        f"| dataset | group | mode | trials | best {symbols()} | valid MRR | test MRR | test H@10 "
        f"| Δ vs own [{level}% CI] | Δ vs {REFERENCE_LABEL} [{level}% CI] | Δ vs {NONE_LABEL} [{level}% CI] "
        "| report |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        best = row["best"]
        if best is None:
            lines.append(f"| {row['dataset']} | {row['group']} | {row['mode']} | {trials_text(row['trials'])} "
                         f"| — | — | — | — | — | — | — | {row['note']} |")
            continue
        known_only = bool(row.get("known_points_only"))
        deltas = [delta_text(row["deltas"][key], known_only) for key in BASELINES]
        lines.append(f"| {row['dataset']} | {row['group']} | {row['mode']} | {trials_text(row['trials'])}"
                     f"{' (known points only)' if known_only else ''} "
                     f"| {weights_text(row)} | {fmt(best['valid_mrr'])}{sample_mark(row)} | {fmt(best['test_mrr'])}{test_mark(row)} "
                     f"| {fmt(best['test_hits@10'])} | {' | '.join(deltas)} "
                     f"| [summary]({row['report']}/summary.md) |")
    owns = sorted({(row["checkpoint"], tuple(row["baselines"]["checkpoint"]["weights"]))
                   for row in rows if row["best"] is not None})
    if owns:
        lines += ["", f"Own fusion weights ({symbols()}): "
                  + "; ".join(f"{checkpoint} {joined(w)}" for checkpoint, w in owns) + "."]
    sampled = [row for row in rows if row.get("valid_sample")]
    if sampled:
        lines += ["", "Validation samples (a valid MRR marked † is on the study's sample, not the whole split):", ""]
        lines += [f"* {row['study']}: {sample_note(row['valid_sample'])}" for row in sampled]
    tested = [row for row in rows if row.get("test_sample")]
    if tested:
        lines += ["", "Test samples (a test MRR marked § and its Δ intervals are on the same seeded, stratified "
                      "sample of the study's test pairs for every setting, not the whole split: "
                      "`campaign report --test-pairs`):", ""]
        lines += [f"* {row['study']}: {t['pairs']} of {t['split_pairs']} pairs ({t['queries']} of "
                  f"{t['split_queries']} queries), seed {t['seed']}" for row in tested if (t := row['test_sample'])]
    else:
        lines += ["", "Test numbers are the whole test split's."]
    timed = [row for row in rows if row.get("time")]
    if timed:
        lines += ["", "Time per study (set-up and trials; a share is the study's part of the campaign's time "
                      "budget, see docs/campaigns.md):", ""]
        lines += [f"* {row['study']}: {time_note(row['trials'], row['time'])}" for row in timed]
    known = [row["study"] for row in rows if row.get("known_points_only")]
    if known:
        lines += ["", f"**Known points only:** {', '.join(known)} ran only the known points (the checkpoint's own "
                      f"setting, {REFERENCE_LABEL}, {NONE_LABEL}): nothing was searched, so their best is the best known "
                      "setting, and their rows count as no win, tie or loss. Give them more trials than known points "
                      "to search."]
    mixed = [(row["study"], note) for row in rows if row["best"] is not None and (note := mixed_note(row))]
    if mixed:
        lines += ["", "‡ **Mixed verdicts** (a higher test MRR, a win or a tie as its Δ cell says, but worse on another "
                      "test metric; MR: lower is better):",
                  ""] + [f"* {study}: {note}" for study, note in mixed]
    notes = [row for row in rows if row["note"] and row["best"] is not None]
    if notes:
        lines += ["", "Notes:", ""] + [f"* {row['study']}: {row['note']}" for row in notes]

    lines += modes_section(rows, level)
    lines += ["", "## Group means", ""]
    if groups:
        lines += [
            "Unweighted means over the datasets of a benchmark group, per mode. The groups are the four in which "
            "ULTRA (Galkin et al., ICLR 2024, arXiv:2310.04562) reports its 57 graphs; `are-search datasets` "
            "lists each dataset's group (are_model/data/registry.py, GROUPS).",
            "",
            f"| group | mode | datasets | best valid MRR | best test MRR | own test MRR | {REFERENCE_LABEL} test MRR "
            f"| {NONE_LABEL} test MRR | mean Δ vs own | mean Δ vs {REFERENCE_LABEL} | mean Δ vs {NONE_LABEL} "
            "| best test H@10 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in groups:
            base, delta = g["baselines"], g["delta"]
            lines.append(f"| {g['group']} | {g['mode']} | {g['datasets']} | {fmt(g['best']['valid_mrr'])} "
                         f"| {fmt(g['best']['test_mrr'])} | {fmt(base['checkpoint']['test_mrr'])} "
                         f"| {fmt(base[REFERENCE_LABEL]['test_mrr'])} | {fmt(base[NONE_LABEL]['test_mrr'])} "
                         f"| {delta['checkpoint']:+.4f} | {delta[REFERENCE_LABEL]:+.4f} | {delta[NONE_LABEL]:+.4f} "
                         f"| {fmt(g['best']['test_hits@10'])} |")
        lines += published_section(groups)
    else:
        lines.append("No study has a complete trial.")

    lines += ["", "## Wins, ties and losses", "",
              f"Best setting against each baseline, by its {level}% interval of Δ test MRR: win above 0, loss "
              "below 0, tie containing 0; a study of known points only searched nothing and is counted apart; "
              "mixed: of the others, those with a higher test MRR (a win or a tie) but worse on test MR or Hits@10.", "",
              "| baseline | mode | win | tie | loss | known points only | mixed |", "|---|---|---|---|---|---|---|"]
    modes = sorted({mode for w in wins.values() for mode in w["by_mode"]},
                   key=lambda m: MODES.index(m) if m in MODES else len(MODES))
    for key, counts in wins.items():
        for mode in modes:
            c = counts["by_mode"].get(mode, {})
            lines.append(f"| {BASELINE_TITLES[key]} | {mode} | {c.get('win', 0)} | {c.get('tie', 0)} "
                         f"| {c.get('loss', 0)} | {c.get('known_only', 0)} | {c.get('mixed', 0)} |")
        if len(modes) != 1:
            lines.append(f"| {BASELINE_TITLES[key]} | all | {counts['win']} | {counts['tie']} | {counts['loss']} "
                         f"| {counts.get('known_only', 0)} | {counts.get('mixed', 0)} |")

    lines += ["", "## Figures"]
    for file_name, (title, caption) in plots.items():
        lines += ["", f"### {title}", ""]
        if file_name in omitted:
            lines.append(f"`{file_name}`: {omitted[file_name]}.")
        else:
            lines += [f"![{title}]({file_name})", "", caption]
    lines.append("")
    return "\n".join(lines)
