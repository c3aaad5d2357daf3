"""A study report's summary in words: ``summary.md`` from the numbers of ``summary.json`` (:func:`summary_markdown`),
and the sentences about a validation sample and the search range."""
from __future__ import annotations

from typing import Any

from search.study.fusion_terms import FUSION_TERMS, NONE_LABEL, REFERENCE_LABEL, joined
from search.study.spaces import SearchSpace

__all__ = ["HISTORY_PNG", "WEIGHTS_PNG", "IMPORTANCES_PNG", "IMPORTANCE_METHOD_TEXT", "space_text", "fmt",
           "interval_text",
           "summary_markdown", "known_points_only_text", "mixed_text", "sample_text", "sample_size_text", "test_sample_text",
           "sample_paragraph"]

#: The figure files of a report.
HISTORY_PNG = "optimization_history.png"
WEIGHTS_PNG = "weights_scatter.png"
IMPORTANCES_PNG = "param_importances.png"


def space_text(space: SearchSpace) -> str:
    parts = []
    for name, param in space.params.items():
        parts.append(f"{name} [{param.low:g}, {param.high:g}]{' (log)' if param.log else ''}" if param.searched
                     else f"{name} = {param.value}")
    return ", ".join(parts)


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def interval_text(diff: float, low: float, high: float) -> str:
    """A paired difference with its interval, ``+0.0052 [+0.0013, +0.0091]``; ``0 (same ranks)`` when the
    difference and both ends are exactly 0: the two settings ranked every test query alike (the best setting
    is that baseline, as when a known point wins), which is no tie of two measurements."""
    if diff == low == high == 0:
        return "0 (same ranks)"
    return f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"


def summary_markdown(summary: dict[str, Any]) -> str:
    boot = summary["bootstrap"]
    trials = ", ".join(f"{k.lower()} {v}" for k, v in summary["trials"].items())
    sample = summary.get("valid_sample")
    validation = f"a sample: {sample_size_text(sample)}" if sample else "the whole split"
    lines = [
        f"# Study {summary['study']}",
        "",
        "| | |",
        "|---|---|",
        f"| are-search version | {summary['version']} |",
        f"| dataset / mode | {summary['dataset']} / {summary['mode']} |",
        f"| checkpoint | {summary['checkpoint']} (profile {summary['profile']}) |",
        f"| text encoder | {summary['encoder'] or '— (none)'} |",
        f"| sampler | {summary['sampler']} |",
        f"| pruner | {summary['pruner']} |",
        f"| seed | {summary['seed']} (study); bootstrap seed {boot['seed']} |",
        f"| search space | {summary['space_text']} |",
        f"| trials | {trials} |",
        f"| validation | {validation} |",
        f"| test | {test_sample_text(summary.get('test_sample'))} |",
        *([f"| fine-tuning budget | {summary['budget_text']} |"] if summary.get("budget_text") else []),
        f"| best | trial {summary['best']['trial']}, validation MRR {summary['best']['value']:.4f} |",
        "",
        "Settings are chosen on the validation split; the test split is used here only to report them.",
    ]
    if summary.get("known_points_only"):
        lines += ["", known_points_only_text(summary)]
    if sample:
        lines += ["", sample_paragraph(sample)]
    if summary.get("test_sample"):
        test = summary["test_sample"]
        lines += ["", f"**Tested on a sample:** every setting below was ranked on the same {test['pairs']} of the "
                      f"{test['split_pairs']} test (anchor, relation) pairs ({test['queries']} of {test['split_queries']} "
                      f"queries; seeded with {test['seed']}, stratified by relation and direction), so every test "
                      "figure and interval here is the sample's (`report --test-pairs`)."]
    for growth in summary.get("growth") or []:
        lines += ["", f"**Range grown:** {growth['param']} {growth['side']} bound {growth['from']:g} → {growth['to']:g} "
                      f"before trial {growth['trial']}, because the best trial ({growth['best_trial']}, validation "
                      f"MRR {growth['best_value']:.4f}) sat on it."]
    if summary.get("stop"):
        lines += ["", f"**Stopped early** after trial {summary['stop']['trial']}: {summary['stop']['reason']}."]
    if summary.get("note"):
        lines += ["", f"**Note:** {summary['note']}"]
    lines += [
        "",
        f"| setting | {' | '.join(term.symbol for term in FUSION_TERMS)} | valid MRR | valid from | test MRR | test MR "
        f"| test H@1 | test H@3 | test H@10 | test Δ MRR best − setting [{round(boot['confidence'] * 100)}% CI] |",
        "|---|" + "---|" * len(FUSION_TERMS) + "---|---|---|---|---|---|---|---|",
    ]
    for row in summary["settings"]:
        test = row["test"]
        diff = row["diff_vs_best"]
        delta = "—" if diff is None else interval_text(diff["diff"], diff["low"], diff["high"])
        lines.append(
            f"| {row['label']} | {joined(row['weights'], sep=' | ')} | {fmt(row['valid_mrr'])} "
            f"| {row['valid_source']} | {fmt(test['mrr'])} | {fmt(test['mr'], 1)} | {fmt(test['hits@1'])} "
            f"| {fmt(test['hits@3'])} | {fmt(test['hits@10'])} | {delta} |"
        )
    for mixed in summary.get("mixed") or []:
        lines += ["", mixed_text(mixed)]
    lines += [
        "",
        f"Test queries: {summary['settings'][0]['test']['num_queries']}. Intervals: paired bootstrap over test "
        f"queries ({boot['n_boot']} resamples, seed {boot['seed']}, percentile method); an interval that "
        "excludes 0 marks a difference larger than the split's sampling noise.",
        "",
        "## Figures",
    ]
    captions = {
        HISTORY_PNG: ("Validation MRR per trial",
                      "Each complete trial's validation MRR by trial number: known points (the checkpoint's own "
                      f"setting, {REFERENCE_LABEL}, {NONE_LABEL}) are named, the red line is the best so far and the "
                      "horizontal lines are the baselines' validation MRR. A pruned trial has no value comparable "
                      "with these, so it is drawn apart, in a panel below on the same trial axis: a trial stopped "
                      "by the paired race at its mean difference of reciprocal ranks against the best at the time "
                      "on the queries it ranked (± one standard error), a trial stopped by a stage pruner at the "
                      "MRR of the stages it ran (a partial split: not comparable)."),
        WEIGHTS_PNG: ("Where the trials ran",
                      "The study's whole search space (dashed): each complete trial coloured by its validation "
                      "MRR, pruned trials as hollow grey circles (no value), the reference settings as open "
                      "markers, the best trial starred. With four or more complete trials the colour scale spans "
                      "the upper three quarters of their values (from the lower quartile up), so the good trials "
                      "differ in colour; trials below it are drawn light grey, as the colour bar says."),
        IMPORTANCES_PNG: ("Parameter importances",
                          IMPORTANCE_METHOD_TEXT),
    }
    for name, (title, caption) in captions.items():
        lines += ["", f"### {title}", ""]
        if name in summary["plots"]:
            lines += [f"![{title}]({name})", "", caption]
        else:
            lines.append(f"`{name}`: {summary['omitted'].get(name, 'not drawn')}.")
    lines.append("")
    return "\n".join(lines)


#: What the importance figure measures, and why optuna-dashboard may rank the parameters otherwise.
IMPORTANCE_METHOD_TEXT = (
    "fANOVA importance of each searched parameter for the validation MRR (Optuna's FanovaImportanceEvaluator: a "
    "random forest fitted to all complete trials, its variance split among the parameters; Hutter et al., ICML "
    "2014). optuna-dashboard shows PED-ANOVA by default (Watanabe et al., IJCAI 2023), which asks how far the "
    "best trials' parameter values (a top quantile) differ from all trials': a parameter can matter for where "
    "the best trials lie while explaining little of the overall variance, so the two rankings can differ.")


def known_points_only_text(summary: dict[str, Any]) -> str:
    """The summary.md sentence of a study whose finished trials are all known points (nothing searched)."""
    return (f"**Known points only:** every finished trial is one of the known points (the checkpoint's own "
            f"setting, {REFERENCE_LABEL}, {NONE_LABEL}), so the budget searched nothing: the best below is the best "
            "known setting, not a searched one, and its differences to the baselines are not gains of a search. "
            "Give a budget of more trials than known points to search.")


def mixed_text(mixed: dict[str, Any]) -> str:
    """``**Mixed verdict against 0.2/0.8:** the best is better on test MRR (0.3974 vs 0.3951) but worse on
    test MR (75.7 vs 74.8)`` for one entry of a report's ``mixed`` (:func:`search.reports.study.mixed_verdicts`);
    "ties on test MRR" where the MRR difference's interval contains 0."""
    names = {"mr": ("MR", 1), "hits@10": ("Hits@10", 4)}
    worse = " and ".join(f"test {names[key][0]} ({fmt(a, names[key][1])} vs {fmt(b, names[key][1])}"
                         f"{', lower is better' if key == 'mr' else ''})" for key, (a, b) in mixed["worse_on"].items())
    best, other = mixed["mrr"]
    if mixed.get("tie"):  # a higher point estimate whose interval contains 0 is no win
        return (f"**Mixed verdict against {mixed['against']}:** the best ties on test MRR ({fmt(best)} vs "
                f"{fmt(other)}, its interval contains 0) and is worse on {worse}.")
    return (f"**Mixed verdict against {mixed['against']}:** the best is better on test MRR ({fmt(best)} vs "
            f"{fmt(other)}) but worse on {worse}.")


def sample_text(sample: dict[str, Any] | None) -> str | None:
    """``validation sample: 64 of 624 pairs (87 of 828 queries)`` for a report's ``valid_sample``; None for
    a study searched on the whole split."""
    return None if not sample else f"validation sample: {sample_size_text(sample)}"


def test_sample_text(sample: dict[str, Any] | None) -> str:
    """``the whole split`` or ``a sample: 500 of 9,000 pairs (...)`` for a report's ``test_sample``."""
    return "the whole split" if not sample else f"a sample: {sample_size_text(sample)}"


def sample_size_text(sample: dict[str, Any]) -> str:
    return (f"{sample['pairs']} of {sample['split_pairs']} pairs ({sample['queries']} of {sample['split_queries']} "
            "queries)")


def sample_paragraph(sample: dict[str, Any]) -> str:
    text = (f"**Searched on a validation sample:** every trial ranked the same {sample['pairs']} of the "
            f"{sample['split_pairs']} validation (anchor, relation) pairs ({sample['queries']} of "
            f"{sample['split_queries']} queries; a sample seeded with the study's seed {sample['seed']} and "
            "stratified by relation), so every validation MRR in this report is the sample's.")
    paired = sample.get("paired")
    if paired is not None:
        text += (f" At this size a paired difference of validation MRRs has a standard error of about "
                 f"{paired['se']:.4f}: {paired['setting']} − {paired['against']} on the sample's queries is "
                 f"{paired['delta']:+.4f} ± {paired['se']:.4f} (finite-population corrected against the split's "
                 f"{sample['split_queries']} queries), so settings closer than about {2 * paired['se']:.4f} are "
                 "not told apart by the sample.")
    return text + " The test numbers below are on the whole test split."
