"""The ``are-search`` command line: evaluate, inspect, launch, resume, export, status, report.

Results go to stdout (a plain-text table, or one JSON document with ``--json``); diagnostics go to
the log on stderr (``-v`` for more, ``-q`` for errors only). A problem with the input -- a missing
checkpoint, an unknown dataset, a malformed flags.yaml or study spec, a bad storage URL -- ends the
command with one line ``are-search: error: ...`` on stderr and exit status 2, never a traceback.

Defaults that depend on where the command runs are resolved here and nowhere else: the studies
folder ``./studies``, the storage (the SQLite file in it), the checkpoint root
(``--checkpoint-root`` or ``$ARE_CHECKPOINT_ROOT``). Every library call gets them as arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "DEFAULT_STUDIES_DIR"]

_logger = logging.getLogger("search.cli")

#: The folder of study specs, the default storage and reports, relative to the working directory.
DEFAULT_STUDIES_DIR = Path("studies")
PROG = "are-search"
_SPLITS = ("valid", "test")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``are-search <cmd>: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


class UsageError(ValueError):
    """A combination of options that cannot work (one line)."""


# ---------------------------------------------------------------------------------------------
# small helpers


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return text or type(error).__name__


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_are_search", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler._are_search = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Python warnings of the libraries (deprecations and the like) go to the log, shown from -v on.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if verbose and not quiet else logging.ERROR)
    try:
        import optuna

        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()
        optuna.logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
    except ImportError:  # pragma: no cover - optuna is a dependency
        pass


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and not args.no_progress and sys.stderr.isatty()


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _emit_json(value: Any) -> None:
    _emit(json.dumps(value, indent=2, default=str))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """A plain-text table: columns padded to their widest cell."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(len(r) for r in cells))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _float(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _storage_url(args: argparse.Namespace, spec_storage: str | None = None) -> str:
    from search.studies import default_storage_url

    return getattr(args, "storage", None) or spec_storage or default_storage_url(DEFAULT_STUDIES_DIR)


def _storage_missing(url: str) -> bool:
    """True when ``url`` names a local SQLite or journal file that does not exist (nothing to read)."""
    if url.startswith("sqlite:///"):
        database = url[len("sqlite:///"):]
        return bool(database) and not database.startswith((":memory:", "file:")) and not Path(database).exists()
    if url.startswith("journal:"):
        return not Path(url[len("journal:"):]).exists()
    if "://" not in url and url.endswith((".log", ".jsonl")):
        return not Path(url).exists()
    return False


def _checkpoint_root(args: argparse.Namespace) -> str | None:
    return getattr(args, "checkpoint_root", None) or os.environ.get("ARE_CHECKPOINT_ROOT") or None


def _resolve_checkpoint(args: argparse.Namespace, value: str) -> Path:
    from search.checkpoints import resolve_checkpoint

    return resolve_checkpoint(value, root=_checkpoint_root(args), download=not args.offline)


def _device(args: argparse.Namespace) -> str:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise UsageError(f"bad --device {device!r}: {_one_line(error)}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    return device


def _apply_threads(args: argparse.Namespace) -> None:
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _text_options(args: argparse.Namespace, encoder: str | None = None) -> Any:
    from are_model.pipeline import TextOptions

    return TextOptions(root=args.text_root, encoder=encoder or args.encoder or "auto",
                       cache_dir=args.cache_dir, download=not args.offline)


def _profile_of(path: Path) -> str:
    """The profile of a checkpoint file, read from its keys (cheap: no model is built)."""
    from are_model.checkpoint import CheckpointError, detect_profile, read_state_dict

    profile = detect_profile(read_state_dict(path).keys())
    if profile is None:
        raise CheckpointError(f"{path}: no ULTRA/SEMMA/ARE keys found")
    return profile


def _checked_number(cast, accept, expected: str):
    """An argparse type: ``cast`` the text, then require ``accept(value)``; the error says ``expected``."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _checked_number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked_number(int, lambda v: v >= 0, "an integer >= 0")
_weight = _checked_number(float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------
# studies in a storage


def _open_existing_study(url: str, name_text: str) -> Any:
    """The study ``<dataset>/<mode>`` from the storage at ``url``; StudyError when it is not there."""
    import optuna

    from search.studies import StudyError, StudyName, open_storage

    name = StudyName.parse(name_text)
    if _storage_missing(url):
        raise StudyError(f"no study {name}: storage {url} does not exist (launch it first)")
    storage = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if str(name) not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyError(f"no study {name} in {url} (studies there: {known})")
    return optuna.load_study(study_name=str(name), storage=storage)


def _stored_spec(study: Any) -> Any:
    """The StudySpec that launched ``study`` (its user attr ``spec``)."""
    from search.studies import StudyError, StudySpec, merge_overrides

    stored = study.user_attrs.get("spec")
    if not isinstance(stored, dict) or "dataset" not in stored or "checkpoint" not in stored:
        raise StudyError(f"study {study.study_name} has no stored spec (it was not launched by are-search launch); "
                         "launch it again with the same settings")
    known = {f.name for f in dataclasses.fields(StudySpec)}
    values = {k: v for k, v in stored.items() if k in known}
    return merge_overrides(StudySpec(values.pop("dataset"), values.pop("checkpoint")), **values)


def _best_or_none(study: Any) -> Any:
    from search.export import best_trial
    from search.studies import StudyError

    try:
        return best_trial(study)
    except StudyError:
        return None


def _best_description(study: Any) -> dict[str, Any] | None:
    trial = _best_or_none(study)
    if trial is None:
        return None
    return {"trial": trial.number, "value": trial.value, "params": dict(trial.params),
            "settings": trial.user_attrs.get("settings")}


def _settings_text(settings: dict[str, Any] | None) -> str:
    if not isinstance(settings, dict):
        return "-"
    parts = [f"w_sim={_float(settings.get('similarity_enhancer_weight'))}",
             f"w_prompt={_float(settings.get('prompt_enhancer_weight'))}"]
    if settings.get("use_learnable_fusion"):
        parts.append(f"fusion_lr={settings.get('fusion_lr'):.3g}" if settings.get("fusion_lr") else "fusion_lr=-")
        body = settings.get("body_lr")
        parts.append("body=frozen" if body is None else f"body_lr={body:.3g}")
        learned = settings.get("learned_weights")
        if isinstance(learned, (list, tuple)) and len(learned) == 2:
            parts.append(f"learned={learned[0]:.4f}/{learned[1]:.4f}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.fusion != "fixed" and (args.w_sim is not None or args.w_prompt is not None):
        raise UsageError("--w-sim/--w-prompt apply only with --fusion fixed")
    if args.fusion == "fixed" and (args.w_sim is None or args.w_prompt is None):
        raise UsageError("--fusion fixed needs both --w-sim and --w-prompt")
    from are_model.data import resolve_dataset_name

    resolve_dataset_name(args.dataset)  # an unknown name fails before anything is loaded
    path = _resolve_checkpoint(args, args.checkpoint)
    profile = _profile_of(path)
    if args.fusion == "fixed" and profile not in ("are-mix", "are-fusion"):
        raise UsageError(f"--fusion fixed needs an ARE checkpoint (are-mix or are-fusion); {path.name} is {profile}")
    if args.fusion == "learned" and profile != "are-fusion":
        raise UsageError(f"--fusion learned needs a checkpoint with learned fusion weights (are-fusion); "
                         f"{path.name} is {profile}")
    device = _device(args)
    _apply_threads(args)

    import torch

    from are_model.pipeline import evaluate_split
    from search.engine import SearchContext

    context = SearchContext(args.dataset, path, data_root=args.data_root, text=_text_options(args), device=device,
                            batch_size=args.batch_size, cache_dir=args.cache_dir, download=not args.offline)
    model = context.model
    weights = None
    if args.fusion == "fixed":
        weights = torch.tensor([args.w_sim, args.w_prompt], dtype=torch.float32, device=context.device)
        applied = [float(args.w_sim), float(args.w_prompt)]
    else:  # the checkpoint's own fusion ("learned" is the same for an are-fusion checkpoint)
        applied = [float(w) for w in model.checkpoint_fusion_weights()] if model.has_enhancers else None
    prepared = context.split(args.split)
    metrics, _ = evaluate_split(model, prepared, weights=weights, side=context.relation_side(args.split),
                                batch_size=context.batch_size, progress=_show_progress(args))
    result = {
        "dataset": context.dataset,
        "split": args.split,
        "checkpoint": str(path),
        "profile": context.profile,
        "encoder": prepared.encoder,
        "fusion": None if applied is None else ("fixed" if args.fusion == "fixed" else "checkpoint"),
        "fusion_weights": applied,
        **metrics,
        "device": str(context.device),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if args.json:
        _emit_json(result)
        return 0
    rows = [("dataset", result["dataset"]), ("split", result["split"]),
            ("checkpoint", f"{result['checkpoint']} ({result['profile']})"),
            ("encoder", result["encoder"] or "- (ULTRA: no text)"),
            ("fusion", "-" if applied is None else f"{result['fusion']}: w_sim {applied[0]:.4f}, w_prompt {applied[1]:.4f}"),
            ("queries", result["num_queries"]), ("MRR", _float(result["mrr"])), ("MR", _float(result["mr"], 2)),
            ("Hits@1", _float(result["hits@1"])), ("Hits@3", _float(result["hits@3"])),
            ("Hits@10", _float(result["hits@10"])), ("seconds", f"{result['seconds']:.1f}")]
    _emit(_table(rows))
    return 0


# ---------------------------------------------------------------------------------------------
# inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    import torch

    from are_model.checkpoint import load_checkpoint
    from search.checkpoints import KNOWN_CHECKPOINTS, sha256_of

    path = _resolve_checkpoint(args, args.checkpoint)
    model, info = load_checkpoint(path)
    digest = sha256_of(path)
    known = next((name for name, entry in KNOWN_CHECKPOINTS.items() if entry.sha256 == digest), None)
    result: dict[str, Any] = {
        "checkpoint": str(path),
        "known_name": known,
        "sha256": digest,
        "profile": info.profile,
        "num_parameters": info.num_parameters,
        "num_keys": info.num_keys,
        "fusion": None,
        "fusion_weights": None,
        "fusion_logits": None,
        "similarity_enhancer": None,
    }
    if model.has_enhancers:
        result["fusion"] = "learned" if info.profile == "are-fusion" else "fixed"
        result["fusion_weights"] = [float(w) for w in model.checkpoint_fusion_weights()]
        if info.profile == "are-fusion":
            result["fusion_logits"] = [float(v) for v in model.fusion_weights_logits.detach()]
        enhancer = model.similarity_enhancer
        with torch.no_grad():
            result["similarity_enhancer"] = {
                "variant": enhancer.variant,
                "theta": float(enhancer.threshold),
                "lambda": float(enhancer.strength),
                "lambda_used": enhancer.variant == "mix",
                "tau": float(enhancer.temperature.clamp(0.1, 10.0)),
                "kappa": float(enhancer.similarity_weight_scale),
            }
    if args.json:
        _emit_json(result)
        return 0
    rows: list[tuple[str, Any]] = [
        ("checkpoint", result["checkpoint"]),
        ("known as", known or "- (not a published checkpoint)"),
        ("sha256", digest),
        ("profile", info.profile),
        ("parameters", f"{info.num_parameters:,}"),
        ("keys", info.num_keys),
    ]
    if result["fusion_weights"] is not None:
        w_sim, w_prompt = result["fusion_weights"]
        if result["fusion"] == "learned":
            logits = ", ".join(f"{v:.4f}" for v in result["fusion_logits"])
            rows.append(("fusion", f"learned: w_sim {w_sim:.4f} / w_prompt {w_prompt:.4f} (logits {logits})"))
        else:
            rows.append(("fusion", f"fixed: w_sim {w_sim:.4f} / w_prompt {w_prompt:.4f} (similarity enhancer only)"))
        s = result["similarity_enhancer"]
        lam = f"{s['lambda']:.4f}" + ("" if s["lambda_used"] else " (unused)")
        rows.append(("similarity", f"θ {s['theta']:.4f}  λ {lam}  τ {s['tau']:.4f}  κ {s['kappa']:.4f} "
                                   f"({s['variant']})"))
    _emit(_table(rows))
    return 0


# ---------------------------------------------------------------------------------------------
# launch / resume


_LAUNCH_OVERRIDES = ("dataset", "checkpoint", "mode", "trials", "seed", "sampler", "pruner", "storage")


def _spec_from_args(args: argparse.Namespace) -> Any:
    from search.studies import StudyError, StudySpec, load_study_spec, merge_overrides

    overrides = {key: getattr(args, key, None) for key in _LAUNCH_OVERRIDES}
    if args.spec_file is not None:
        return merge_overrides(load_study_spec(Path(args.spec_file)), **overrides)
    missing = [f"--{key}" for key in ("dataset", "checkpoint") if overrides[key] is None]
    if missing:
        raise StudyError(f"launch needs {' and '.join(missing)} (or a study spec file)")
    dataset, checkpoint = overrides.pop("dataset"), overrides.pop("checkpoint")
    return merge_overrides(StudySpec(dataset, checkpoint), **overrides)


def _check_compatible(study: Any, spec: Any, launch: dict[str, Any]) -> None:
    """Refuse to continue a study with another checkpoint or search space than it began with."""
    from search.studies import StudyError

    stored = study.user_attrs.get("spec")
    stored_launch = study.user_attrs.get("launch")
    if isinstance(stored_launch, dict):
        old, new = stored_launch.get("checkpoint_sha256"), launch.get("checkpoint_sha256")
        if old and new and old != new:
            raise StudyError(f"study {study.study_name} was run with another checkpoint (sha256 {old[:12]}..., "
                             f"now {new[:12]}...); use another --storage or dataset name")
        old, new = stored_launch.get("encoder"), launch.get("encoder")
        if old and new and old != new:
            _logger.warning("study %s was launched with text encoder %r, now %r: if they make different vectors, "
                            "old and new trials measure different models", study.study_name, old, new)
    from search.spaces import SearchSpace

    if isinstance(stored, dict) and (SearchSpace(spec.mode, stored.get("space") or {}).params
                                     != SearchSpace(spec.mode, spec.space).params):
        raise StudyError(f"study {study.study_name} was run with search space {stored.get('space')}, "
                         f"not {spec.space}; use another --storage or dataset name")


def _prepare_study(spec: Any, url: str, checkpoint_path: Path, launch: dict[str, Any]) -> Any:
    """Create (known points enqueued) or load the study; store its spec (``spec``) and ``launch`` attrs.

    The spec is stored before any trial runs, so ``resume`` needs nothing else even after a kill.
    """
    from search.runners import open_study

    study, created = open_study(spec, url, checkpoint_path)
    if not created:
        _check_compatible(study, spec, launch)
    spec_attr = dataclasses.asdict(spec)
    spec_attr["storage"] = None  # where the study lives is not part of it
    study.set_user_attr("spec", spec_attr)
    study.set_user_attr("launch", launch)
    return study


def _run_study(args: argparse.Namespace, spec: Any, url: str, *, encoder: str | None) -> int:
    from are_model.data import resolve_dataset_name
    from search.checkpoints import sha256_of
    from search.export import export_study
    from search.report import trial_counts

    path = _resolve_checkpoint(args, spec.checkpoint)
    profile = _profile_of(path)
    if profile not in ("are-mix", "are-fusion"):
        raise UsageError(f"a fusion search needs an ARE checkpoint (are-mix or are-fusion); "
                         f"{spec.checkpoint} is {profile}")
    resolve_dataset_name(spec.dataset)
    ray_only_values = {"gpus_per_trial": args.gpus_per_trial, "cpus_per_trial": args.cpus_per_trial,
                       "max_concurrent": args.max_concurrent, "address": args.address}
    if args.ray:
        if args.device is not None or args.workers is not None:
            raise UsageError("with --ray, Ray places the trials: use --gpus-per-trial / --cpus-per-trial / "
                             "--max-concurrent instead of --device / --workers")
        device = None
    else:
        given = ["--" + key.replace("_", "-") for key, value in ray_only_values.items() if value is not None]
        if given:
            raise UsageError(f"only with --ray: {', '.join(given)}")
        device = _device(args)
    _apply_threads(args)
    encoder = encoder or args.encoder or "auto"
    launch = {"checkpoint_sha256": sha256_of(path), "encoder": encoder}
    study = _prepare_study(spec, url, path, launch)
    before = len(study.get_trials(deepcopy=False))
    common = dict(data_root=args.data_root, text_root=args.text_root, checkpoint_path=str(path), encoder=encoder,
                  show_progress=_show_progress(args), **_only_given({"cache_dir": args.cache_dir,
                                                                     "batch_size": args.batch_size}))
    if args.ray:
        from search.runners.ray import run_ray

        study = run_ray(spec, url, **common, **_only_given(ray_only_values))
    else:
        from search.runners.local import run_local

        study = run_local(spec, url, **common, device=device, **_only_given({"n_workers": args.workers}))
    after = study.get_trials(deepcopy=False)
    _logger.info("study %s: %d new trials, %d in all", study.study_name, len(after) - before, len(after))
    best = _best_description(study)
    counts = trial_counts(study)
    if best is None:
        _emit(f"study {study.study_name}: no complete trial yet ({_counts_text(counts)})")
    else:
        _emit(f"study {study.study_name}: best trial {best['trial']}, validation MRR {best['value']:.4f}, "
              f"{_settings_text(best['settings'])} ({_counts_text(counts)})")
    flags = getattr(args, "flags", None)
    if flags is not None:
        written = export_study(study, Path(flags))
        _emit(f"exported to {flags}: " + ", ".join(f"{k}: {v}" for k, v in written.items()))
    return 0


def _only_given(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the None entries (the runner's defaults apply to those)."""
    return {key: value for key, value in values.items() if value is not None}


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"


def cmd_launch(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    url = _storage_url(args, spec.storage)
    return _run_study(args, spec, url, encoder=args.encoder)


def cmd_resume(args: argparse.Namespace) -> int:
    from search.studies import merge_overrides

    url = _storage_url(args)
    study = _open_existing_study(url, args.study)
    spec = _stored_spec(study)
    if args.trials is not None:
        spec = merge_overrides(spec, trials=args.trials)
    stored_launch = study.user_attrs.get("launch") or {}
    return _run_study(args, spec, url, encoder=args.encoder or stored_launch.get("encoder"))


# ---------------------------------------------------------------------------------------------
# export / status / report


def cmd_export(args: argparse.Namespace) -> int:
    from search.export import export_all, export_study
    from search.studies import StudyError, open_storage

    url = _storage_url(args)
    if args.all is not None:
        if args.study is not None or args.flags is not None:
            raise UsageError("export --all DIR takes no STUDY and no --flags")
        if _storage_missing(url):
            raise StudyError(f"storage {url} does not exist: nothing to export")
        for path in export_all(open_storage(url), Path(args.all)):
            _emit(f"wrote {path}")
        return 0
    if args.study is None or args.flags is None:
        raise UsageError("export needs STUDY and --flags PATH (or --all DIR)")
    study = _open_existing_study(url, args.study)
    flags = export_study(study, Path(args.flags))
    _emit(f"exported {study.study_name} to {args.flags}: " + ", ".join(f"{k}: {v}" for k, v in flags.items()))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import optuna

    from search.report import trial_counts
    from search.studies import list_studies, open_storage

    url = _storage_url(args)
    entries: list[dict[str, Any]] = []
    if not _storage_missing(url):
        storage = open_storage(url)
        for summary in list_studies(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            spec = study.user_attrs.get("spec") if isinstance(study.user_attrs.get("spec"), dict) else {}
            entries.append({
                "study": summary.study_name,
                "checkpoint": spec.get("checkpoint"),
                "budget": spec.get("trials"),
                "trials": trial_counts(study),
                "best": _best_description(study),
            })
    if args.json:
        _emit_json({"storage": url, "studies": entries})
        return 0
    if not entries:
        _emit(f"no studies in {url}")
        return 0
    rows = []
    for entry in entries:
        best = entry["best"]
        counts = entry["trials"]
        done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        budget = f"/{entry['budget']}" if entry["budget"] else ""
        rows.append((entry["study"], entry["checkpoint"] or "-", f"{done}{budget}", counts.get("COMPLETE", 0),
                     counts.get("PRUNED", 0), counts.get("FAIL", 0), counts.get("RUNNING", 0) + counts.get("WAITING", 0),
                     "-" if best is None else f"{best['value']:.4f}", "-" if best is None else best["trial"],
                     "-" if best is None else _settings_text(best["settings"])))
    _emit(f"storage: {url}")
    _emit(_table(rows, ("study", "checkpoint", "done", "complete", "pruned", "failed", "running/queued",
                        "best MRR", "trial", "best settings")))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    from search.engine import SearchContext
    from search.report import write_report
    from search.studies import StudyName

    url = _storage_url(args)
    study = _open_existing_study(url, args.study)
    spec = _stored_spec(study)
    name = StudyName.parse(study.study_name)
    out = Path(args.out) if args.out else DEFAULT_STUDIES_DIR / "reports" / f"{name.dataset.replace(':', '_')}_{name.mode}"
    path = _resolve_checkpoint(args, spec.checkpoint)
    device = _device(args)
    _apply_threads(args)
    stored_launch = study.user_attrs.get("launch") or {}
    encoder = args.encoder or stored_launch.get("encoder") or "auto"
    context = SearchContext(spec.dataset, path, data_root=args.data_root, text=_text_options(args, encoder),
                            device=device, batch_size=args.batch_size, cache_dir=args.cache_dir,
                            download=not args.offline)
    report = write_report(study, context, out, n_boot=args.n_boot, seed=args.seed,
                          show_progress=_show_progress(args))
    summary = report.summary
    rows = []
    for row in summary["settings"]:
        diff = row["diff_vs_best"]
        rows.append((row["label"], f"{row['weights'][0]:.4f}/{row['weights'][1]:.4f}", _float(row["valid_mrr"]),
                     row["valid_source"], _float(row["test"]["mrr"]), _float(row["test"]["hits@10"]),
                     "-" if diff is None else f"{diff['diff']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"))
    _emit(_table(rows, ("setting", "w_sim/w_prompt", "valid MRR", "valid from", "test MRR", "test H@10",
                        "best - setting, test MRR [95% CI]")))
    if summary.get("note"):
        _emit(summary["note"])
    _emit(f"report written to {report.out_dir}: " + ", ".join(p.name for p in report.files))
    return 0


# ---------------------------------------------------------------------------------------------
# the parser


def _common(*, suppress: bool) -> argparse.ArgumentParser:
    """-v / -q / --no-progress, accepted before and after the command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if suppress else 0,
                        help="more log output on stderr (-vv for debug)")
    parent.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="only errors on stderr, no progress bars")
    parent.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="no progress bars")
    return parent


def _add_inputs(parser: argparse.ArgumentParser, *, checkpoint_root: bool = True) -> None:
    group = parser.add_argument_group("model inputs")
    group.add_argument("--data-root", metavar="DIR", help="dataset root (default: $ARE_DATA_ROOT)")
    group.add_argument("--text-root", metavar="DIR", help="relation texts root (default: $ARE_TEXT_ROOT, then download)")
    group.add_argument("--encoder", metavar="SPEC",
                       help="text encoder: auto | minilm | jina[:PATH] | a file of precomputed vectors "
                            "(default: auto; resume/report: the one the study was launched with)")
    group.add_argument("--device", metavar="DEVICE", help="cpu | cuda | cuda:N (default: cuda when available)")
    group.add_argument("--batch-size", type=_positive_int, metavar="N", help="queries per entity pass")
    group.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads for torch")
    group.add_argument("--cache-dir", metavar="DIR", help="processed data / embedding cache folder")
    if checkpoint_root:
        _add_checkpoint_root(group)
    group.add_argument("--offline", action="store_true", help="never download (datasets, texts, checkpoints)")


def _add_checkpoint_root(parser: Any) -> None:
    parser.add_argument("--checkpoint-root", metavar="DIR",
                        help="folder of <name>.pth for checkpoint names (default: $ARE_CHECKPOINT_ROOT)")


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage: sqlite:///FILE, postgresql://..., journal:FILE "
                             f"(default: sqlite file in ./{DEFAULT_STUDIES_DIR}/)")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("how trials run")
    run.add_argument("--workers", type=_positive_int, metavar="N", help="local worker processes (default 1)")
    run.add_argument("--ray", action="store_true", help="run the trials with Ray Tune")
    run.add_argument("--gpus-per-trial", type=_non_negative_float, metavar="G", help="Ray: GPUs per trial (fractions ok)")
    run.add_argument("--cpus-per-trial", type=_non_negative_float, metavar="C", help="Ray: CPUs per trial")
    run.add_argument("--max-concurrent", type=_positive_int, metavar="K", help="Ray: trials at once")
    run.add_argument("--address", metavar="ADDR", help="Ray: address of an existing cluster")
    run.add_argument("--flags", metavar="PATH", help="export the best settings into this flags.yaml when done")


def build_parser() -> argparse.ArgumentParser:
    from search.studies import MODES, PRUNERS, SAMPLERS

    parser = _Parser(prog=PROG, parents=[_common(suppress=False)],
                     description="Per-dataset Optuna search of ARE's enhancer fusion settings.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    sub_common = _common(suppress=True)

    p = commands.add_parser("evaluate", parents=[sub_common], help="evaluate one checkpoint on one split")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.add_argument("--checkpoint", required=True, metavar="PATH|NAME")
    p.add_argument("--split", choices=_SPLITS, default="test")
    p.add_argument("--fusion", choices=("checkpoint", "fixed", "learned"), default="checkpoint",
                   help="the checkpoint's own fusion (default), fixed weights, or the learned ones (are-fusion)")
    p.add_argument("--w-sim", type=_weight, metavar="X", help="similarity enhancer weight (with --fusion fixed)")
    p.add_argument("--w-prompt", type=_weight, metavar="Y", help="prompt enhancer weight (with --fusion fixed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_inputs(p)
    p.set_defaults(handler=cmd_evaluate)

    p = commands.add_parser("inspect", parents=[sub_common], help="profile, size and fusion of a checkpoint")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pth file or a known name")
    p.add_argument("--json", action="store_true")
    _add_checkpoint_root(p)
    p.add_argument("--offline", action="store_true", help="never download")
    p.set_defaults(handler=cmd_inspect)

    p = commands.add_parser("launch", parents=[sub_common], help="start (or continue) a study")
    p.add_argument("spec_file", nargs="?", metavar="SPEC.yaml", help="a study spec; options below override it")
    p.add_argument("--dataset", metavar="NAME")
    p.add_argument("--checkpoint", metavar="PATH|NAME")
    p.add_argument("--mode", choices=MODES)
    p.add_argument("--trials", type=_positive_int, metavar="N", help="finished trials the study should reach")
    p.add_argument("--seed", type=_non_negative_int, metavar="S")
    p.add_argument("--sampler", choices=SAMPLERS)
    p.add_argument("--pruner", choices=PRUNERS)
    _add_storage(p)
    _add_run_options(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_launch)

    p = commands.add_parser("resume", parents=[sub_common], help="continue a study from its stored spec")
    p.add_argument("study", metavar="STUDY", help="<dataset>/<mode>, e.g. FBNELL/fixed")
    p.add_argument("--trials", type=_positive_int, metavar="N", help="new total trial budget")
    _add_storage(p)
    _add_run_options(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_resume)

    p = commands.add_parser("export", parents=[sub_common], help="write a study's best settings to flags.yaml")
    p.add_argument("study", nargs="?", metavar="STUDY")
    p.add_argument("--flags", metavar="PATH", help="the flags.yaml to edit (created when missing)")
    p.add_argument("--all", metavar="DIR", help="one DIR/<dataset>/flags.yaml per dataset (best of its studies)")
    _add_storage(p)
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("status", parents=[sub_common], help="list studies, trials and best so far")
    p.add_argument("--json", action="store_true")
    _add_storage(p)
    p.set_defaults(handler=cmd_status)

    p = commands.add_parser("report", parents=[sub_common], help="plots and best vs baselines on test")
    p.add_argument("study", metavar="STUDY")
    p.add_argument("--out", metavar="DIR", help=f"default: ./{DEFAULT_STUDIES_DIR}/reports/<dataset>_<mode>/")
    p.add_argument("--n-boot", type=_positive_int, default=2000, metavar="N", help="bootstrap resamples (2000)")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="bootstrap seed (0)")
    _add_storage(p)
    _add_inputs(p)
    p.set_defaults(handler=cmd_report)
    return parser


# ---------------------------------------------------------------------------------------------
# entry point


def _known_errors() -> tuple[type[BaseException], ...]:
    from are_model.checkpoint import CheckpointError
    from are_model.data import DatasetError
    from search.export import FlagsError
    from search.studies import StudyError

    return (CheckpointError, DatasetError, StudyError, FlagsError, UsageError, FileNotFoundError, ValueError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        known = _known_errors()
    except ImportError as error:  # a broken installation: say which module is missing
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return 2
    try:
        return int(args.handler(args) or 0)
    except known as error:
        _logger.debug("%s failed", args.command, exc_info=True)
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
