"""Export a study's best fusion settings into a user's ``flags.yaml``.

The user's file is edited, never regenerated: ruamel.yaml's round-trip parser (``typ="rt"``,
``preserve_quotes``) finds the exact character span of each flag's value, only those spans are
replaced and missing keys are appended at the end, so every other byte -- keys, comments, blank
lines, quoting, ``True`` spelled ``True`` -- stays as it was. (ruamel's own dumper would re-indent
nested blocks and rewrite ``True`` as ``true``.) The result is parsed again and compared with the
original before it replaces the file atomically (temp file in the same folder, fsync, os.replace).

Floats are written as plain decimals that both YAML 1.2 (ruamel) and YAML 1.1 (PyYAML, which
reads ``flags.yaml`` in the model code) read back as the same float: ``0.2``, ``1.0e-05``.
"""
from __future__ import annotations

import codecs
import contextlib
import copy
import logging
import math
import os
import stat
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import optuna
import yaml as pyyaml
from optuna.trial import FrozenTrial, TrialState
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from search.studies import MODES, StudyError, StudyName, list_studies

__all__ = [
    "FLAG_KEYS",
    "FlagsError",
    "best_trial",
    "flags_from_settings",
    "write_flags",
    "export_study",
    "export_all",
]

_logger = logging.getLogger(__name__)

FLAG_KEYS = ("use_learnable_fusion", "similarity_enhancer_weight", "prompt_enhancer_weight", "fusion_lr")
#: Every comment line this module writes starts with this; a re-export replaces the line.
COMMENT_MARKER = "# are-search:"
_SIGNIFICANT_DIGITS = 6


class FlagsError(ValueError):
    """A flags.yaml that cannot be edited safely, or a value that cannot be written (one line)."""


# ---------------------------------------------------------------------------------------------
# from a study to flag values


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The COMPLETE trial with the highest validation MRR (pruned or failed trials never count).

    Ties go to the earliest trial. Raises StudyError naming the study when it has none.
    """
    if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        raise StudyError(f"study {study.study_name} does not maximize a single value")
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        raise StudyError(f"study {study.study_name} has no complete trial to export")
    return copy.deepcopy(max(complete, key=lambda t: (t.value, -t.number)))


def _plain_float(value: Any, what: str) -> float:
    """``value`` as a finite Python float rounded to 6 significant digits."""
    if isinstance(value, bool):
        raise FlagsError(f"{what}: expected a number, got a bool {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FlagsError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise FlagsError(f"{what}: expected a finite number, got {value!r}")
    return float(f"{number:.{_SIGNIFICANT_DIGITS}g}")


def flags_from_settings(settings: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The flags.yaml values for a trial's settings.

    fixed: ``use_learnable_fusion: False`` and the two fixed weights; learnable:
    ``use_learnable_fusion: True``, the two *initial* weights and ``fusion_lr``.
    """
    if mode not in MODES:
        raise StudyError(f"bad mode {mode!r}: expected one of {', '.join(MODES)}")
    if not isinstance(settings, Mapping):
        raise StudyError(f"trial settings must be a mapping, got {type(settings).__name__}")
    keys = ["similarity_enhancer_weight", "prompt_enhancer_weight"]
    if mode == "learnable":
        keys.append("fusion_lr")
    flags: dict[str, Any] = {"use_learnable_fusion": mode == "learnable"}
    for key in keys:
        if key not in settings:
            raise StudyError(f"trial settings lack key {key!r} needed for mode {mode}")
        try:
            flags[key] = _plain_float(settings[key], f"trial setting {key!r}")
        except FlagsError as exc:
            raise StudyError(str(exc)) from None
    return flags


# ---------------------------------------------------------------------------------------------
# editing flags.yaml


def _yaml_float(value: float) -> str:
    """A float literal that YAML 1.1 and 1.2 both read as this float (``1e-05`` -> ``1.0e-05``)."""
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[0] not in "+-":
            exponent = "+" + exponent
        text = f"{mantissa}e{exponent}"
    return text


def _bool_literal(value: bool, old_text: str | None) -> str:
    """``True``/``False``, unless the key already spelled its bool ``true`` or ``TRUE``."""
    if old_text in ("true", "false"):
        return "true" if value else "false"
    if old_text in ("TRUE", "FALSE"):
        return "TRUE" if value else "FALSE"
    return "True" if value else "False"


def _checked_flags(flags: Mapping[str, Any], path: Path) -> dict[str, bool | float]:
    out: dict[str, bool | float] = {}
    for key, value in flags.items():
        if not isinstance(key, str) or not key or key != key.strip() or ":" in key or key.startswith("#"):
            raise FlagsError(f"{path}: cannot write key {key!r}")
        out[key] = value if isinstance(value, bool) else _plain_float(value, f"{path}: key {key!r}")
    return out


def _rt_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


def _parse(text: str, path: Path) -> tuple[Any, MappingNode | None]:
    """(loaded data, composed top-level mapping node) of ``text``; FlagsError when unusable."""
    try:
        data = _rt_yaml().load(text)
        node = _rt_yaml().compose(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FlagsError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        return None, None
    if not isinstance(data, Mapping) or not isinstance(node, MappingNode):
        kind = "a list" if isinstance(data, list) else type(data).__name__
        raise FlagsError(f"{path}: the top level is {kind}; flags.yaml must be a mapping of keys")
    if node.flow_style:
        raise FlagsError(f"{path}: the top level is a {{...}} flow mapping; write it as one key per line")
    return data, node


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _edited_text(text: str, flags: dict[str, bool | float], comment: str, path: Path) -> str:
    """``text`` with the values of ``flags`` replaced or appended and the are-search comment."""
    data, node = _parse(text, path)
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) on ``text``

    # the previous are-search comment goes; the new one is written above the first written key
    index = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(COMMENT_MARKER):
            edits.append((index, index + len(line), ""))
        index += len(line)

    indent = 0
    first_key_at: int | None = None
    present: set[str] = set()
    if node is not None:
        indent = node.value[0][0].start_mark.column if node.value else 0
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value not in flags:
                continue
            key = key_node.value
            line_no = key_node.start_mark.line + 1
            if not isinstance(value_node, ScalarNode):
                kind = "list" if isinstance(value_node, SequenceNode) else "mapping"
                raise FlagsError(f"{path}:{line_no}: key {key!r} holds a {kind}; expected a single value")
            if value_node.start_mark.index < key_node.end_mark.index:
                raise FlagsError(f"{path}:{line_no}: key {key!r} holds an alias (*name); edit it by hand")
            if getattr(value_node, "anchor", None):
                raise FlagsError(f"{path}:{line_no}: key {key!r} defines an anchor (&name); edit it by hand")
            start, end = value_node.start_mark.index, value_node.end_mark.index
            value = flags[key]
            old = text[start:end]
            new = _bool_literal(value, old) if isinstance(value, bool) else _yaml_float(value)
            if old.endswith("\n"):  # a multi-line (block) scalar owns its line break
                new += newline
            edits.append((start, end, new))
            present.add(key)
            at = _line_start(text, key_node.start_mark.index)
            first_key_at = at if first_key_at is None else min(first_key_at, at)

    comment_line = " " * indent + f"{COMMENT_MARKER} {' '.join(comment.split())}" + newline
    appended = [key for key in flags if key not in present]
    block = "".join(
        " " * indent
        + f"{key}: "
        + (_bool_literal(flags[key], None) if isinstance(flags[key], bool) else _yaml_float(flags[key]))
        + newline
        for key in appended
    )
    if first_key_at is not None:
        edits.append((first_key_at, first_key_at, comment_line))
    else:
        block = comment_line + block
    if block:
        at = len(text)
        for event in _rt_yaml().parse(text):
            if type(event).__name__ == "DocumentEndEvent" and getattr(event, "explicit", False):
                at = _line_start(text, event.start_mark.index)  # before a closing '...'
                break
        if at > 0 and not text[:at].endswith("\n"):
            block = newline + block
        edits.append((at, at, block))

    new_text = text
    # apply from the end so earlier offsets stay valid; at one offset, deletions before insertions
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1] > e[0]), reverse=True):
        new_text = new_text[:start] + replacement + new_text[end:]
    _verify(data, new_text, flags, appended, path)
    return new_text


def _verify(old: Any, new_text: str, flags: dict[str, bool | float], appended: list[str], path: Path) -> None:
    """Refuse an edit that would change anything but the written keys, or write them wrongly."""
    new, _ = _parse(new_text, path)
    old_keys = list(old.keys()) if old is not None else []
    problem = None
    if new is None or list(new.keys()) != old_keys + appended:
        problem = "the key order would change"
    else:
        for key in old_keys:
            if key not in flags and new[key] != old[key]:
                problem = f"key {key!r} would change"
                break
    if problem is None:
        try:
            legacy = pyyaml.safe_load(new_text)  # how the model code reads the file (YAML 1.1)
        except pyyaml.YAMLError:
            legacy = None
        for key, value in flags.items():
            for reader, loaded in (("ruamel", new), ("PyYAML", legacy)):
                if loaded is None and reader == "PyYAML":
                    continue
                got = loaded[key]
                if type(got) is not type(value) and not (isinstance(value, float) and isinstance(got, float)):
                    problem = f"{reader} would read key {key!r} as {got!r}"
                elif got != value:
                    problem = f"{reader} would read key {key!r} as {got!r}, not {value!r}"
    if problem is not None:
        raise FlagsError(f"{path}: refusing to write: {problem} (please report this)")


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` all at once: temp file in the same folder, fsync, os.replace."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_flags(path: Path, flags: Mapping[str, Any], *, comment: str) -> None:
    """Write ``flags`` into the flags.yaml at ``path`` (created when missing).

    Existing keys get their value replaced in place, missing keys are appended at the end, every
    other byte is kept. A line ``# are-search: <comment>`` goes above the first written key,
    replacing the one a previous export wrote. A malformed file raises FlagsError naming the file
    (and line) and is left untouched.
    """
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    checked = _checked_flags(flags, path)
    bom = b""
    if target.exists():
        try:
            raw = target.read_bytes()
        except OSError as exc:
            raise FlagsError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if raw.startswith(codecs.BOM_UTF8):
            bom, raw = codecs.BOM_UTF8, raw[len(codecs.BOM_UTF8):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FlagsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    else:
        if not target.parent.is_dir():
            raise FlagsError(f"{path}: folder {target.parent} does not exist")
        text = ""
    new_text = _edited_text(text, checked, comment, path)
    try:
        _atomic_write(target, bom + new_text.encode("utf-8"))
    except OSError as exc:
        raise FlagsError(f"{path}: cannot write: {exc.strerror or exc}") from None
    _logger.info("wrote %s to %s", ", ".join(f"{k}={v}" for k, v in checked.items()), path)


# ---------------------------------------------------------------------------------------------
# studies -> files


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _settings(study: optuna.Study, trial: FrozenTrial) -> Mapping[str, Any]:
    settings = trial.user_attrs.get("settings")
    if not isinstance(settings, Mapping):
        raise StudyError(f"study {study.study_name}: trial {trial.number} has no 'settings' user attr")
    return settings


def export_study(study: optuna.Study, path: Path) -> dict[str, Any]:
    """Write the best complete trial of ``study`` into the flags.yaml at ``path``; returns the flags."""
    name = StudyName.parse(study.study_name)
    trial = best_trial(study)
    flags = flags_from_settings(_settings(study, trial), name.mode)
    comment = f"study {name}, trial {trial.number}, validation MRR {trial.value:.4f}, {_now()}"
    write_flags(path, flags, comment=comment)
    return flags


def export_all(storage: optuna.storages.BaseStorage, out_dir: Path) -> list[Path]:
    """One ``<out_dir>/<dataset>/flags.yaml`` per dataset (``:`` in a name becomes ``_``).

    For each dataset the study (fixed or learnable) with the higher best validation MRR is
    exported (fixed on a tie); the comment names both. Studies without a complete trial or not
    named ``<dataset>/<mode>`` are skipped. Returns the files written, by dataset.
    """
    candidates: dict[str, list[tuple[float, StudyName, optuna.Study, FrozenTrial]]] = defaultdict(list)
    for summary in list_studies(storage):
        try:
            name = StudyName.parse(summary.study_name)
        except StudyError:
            _logger.debug("skipping study %r: not named <dataset>/<mode>", summary.study_name)
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        try:
            trial = best_trial(study)
        except StudyError as exc:
            _logger.warning("skipping %s", exc)
            continue
        candidates[name.dataset].append((float(trial.value), name, study, trial))
    if not candidates:
        raise StudyError("no study in the storage has a complete trial to export")
    written: list[Path] = []
    for dataset in sorted(candidates):
        ranked = sorted(candidates[dataset], key=lambda c: (-c[0], MODES.index(c[1].mode)))
        value, name, study, trial = ranked[0]
        flags = flags_from_settings(_settings(study, trial), name.mode)
        others = "; ".join(f"{n} {v:.4f}" for v, n, _, _ in ranked[1:])
        chosen = f"best of {dataset}: {name}" + (f" (over {others})" if others else "")
        comment = f"{chosen}, trial {trial.number}, validation MRR {value:.4f}, {_now()}"
        path = Path(out_dir) / dataset.replace(":", "_") / "flags.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_flags(path, flags, comment=comment)
        written.append(path)
    return written
