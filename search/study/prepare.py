"""A study made ready for a run: its launch record, the checks that it may continue, and the undo of a run
that met bad input before any of its trials finished.

* :func:`make_launch_record` -- the study user attr ``launch`` (checkpoint sha256, encoder);
* :func:`dataset_record` -- its part naming the dataset's raw files by sha256;
* :func:`chosen_valid_pairs`, :func:`keep_chosen_valid_pairs` -- a resumed study keeps the validation budget its
  cost probe chose (the campaign queue reads it so too);
* :func:`check_compatible` -- refuse another checkpoint, encoder, raw files or search space on a stored study;
* :func:`prepare_study` -- open or create the study of a spec, store its spec and launch record;
* :class:`NewStudies` -- remove again the studies (and storage file) a run made, on bad input;
* :func:`warm_start_inputs` -- the warm-start sources and graph statistics of a run.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

from search.errors import StudyError
from search.logs import quiet_dataset_reports
from search.options import LoadOptions
from search.storage import StorageURL, storage_state
from search.study.budget import FINISHED
from search.study.spec import SPEC_ATTR, StudySpec, stored_spec
from search.study.stopping import clear_stop

__all__ = ["LAUNCH_ATTR", "DATA_FILES_KEY", "encoder_name", "make_launch_record", "dataset_record",
           "data_file_changes", "chosen_valid_pairs", "keep_chosen_valid_pairs", "check_compatible", "space_changes", "prepare_study",
           "NewStudies", "warm_start_inputs"]

_logger = logging.getLogger(__name__)

#: The study user attr holding the launch record (checkpoint sha256, encoder, the dataset's raw files).
LAUNCH_ATTR = "launch"

#: The launch record's key for the dataset's raw files: ``{"dataset": canonical name, "files": {file name:
#: sha256}}`` (:func:`dataset_record`). Studies made before it existed have no such key and open as before.
DATA_FILES_KEY = "data_files"

def encoder_name(options: LoadOptions, encoder: str) -> str:
    """The name of the encoder ``encoder`` (a spec such as ``auto``) resolves to here: ``minilm``,
    ``jina:<revision>`` or ``vectors:<sha256>`` (never ``auto``); the encoder is cached for the run."""
    from are_model.text import build_encoder

    text = options.text(encoder)
    return build_encoder(text.encoder, jina_path=text.jina_path, jina_revision=text.jina_revision).name

def make_launch_record(path: Path, options: LoadOptions, encoder: str) -> dict[str, Any]:
    """The study user attr ``launch``: the checkpoint's sha256 and file name, the encoder spec and its name."""
    from search.inputs.checkpoints import sha256_of

    return {"checkpoint_sha256": sha256_of(path), "checkpoint_file": path.name, "encoder": encoder,
            "encoder_name": encoder_name(options, encoder)}

def dataset_record(dataset: str, options: LoadOptions) -> dict[str, Any]:
    """The launch record's part for ``dataset``: ``{"data_files": {"dataset": <canonical name>, "files":
    {<raw file name>: <hex sha256>}}}``, the identity the processed-data cache is keyed by
    (:func:`are_model.data.raw_file_identity`; missing required files are downloaded when ``options`` allow).
    Empty when the files cannot be read here (a Ray driver without the data): the study then keeps the record
    it has, and the workers meet a missing file themselves."""
    from are_model.data import DatasetError, get_spec, raw_file_identity

    try:
        files = raw_file_identity(dataset, options.data_root, download=options.download)
    except (DatasetError, OSError) as exc:  # OSError: a missing file or a failed download
        _logger.debug("raw files of %s not recorded: %s", dataset, exc)
        return {}
    return {DATA_FILES_KEY: {"dataset": get_spec(dataset).name, "files": dict(sorted(files.values()))}}


def data_file_changes(old: Any, new: Any) -> list[str]:
    """What differs between two ``data_files`` records (:func:`dataset_record`), one entry per file, e.g.
    ``transductive_valid.txt changed (sha256 3f0c2a9b1d4e..., now 81aa07c2e5f3...)``, ``inf_test_new.txt was not
    there`` or ``... is gone``; empty when either record is missing or they name the same bytes."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    before, after = old.get("files") or {}, new.get("files") or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None:
            changes.append(f"{name} was not there")
        elif b is None:
            changes.append(f"{name} is gone")
        elif a != b:
            changes.append(f"{name} changed (sha256 {a[:12]}..., now {b[:12]}...)")
    return changes


def _valid_pairs_option(pairs: int | None) -> str:
    """How a user asks for a study's validation budget again: ``--valid-pairs N`` or no such option."""
    return "no --valid-pairs" if pairs is None else f"--valid-pairs {pairs}"


def chosen_valid_pairs(study: Any, spec: StudySpec) -> int | None:
    """The validation budget (pairs) a time-budgeted campaign's cost probe chose for ``study``, when it chose one
    and ``spec`` asks for none or for a larger one; else None (keep ``spec``'s).

    The probe picks a study's budget once, before its first trial (:func:`search.runners.cost.probe_cost`: the
    ``valid_pairs`` of its cost record, also written into its stored spec), never above what the campaign asked;
    a resumed campaign's specs hold only what the campaign asks, so without this every such study would be
    refused by :func:`check_compatible` as searched on another validation budget. A smaller budget asked
    explicitly is left to that refusal.
    """
    from search.campaign.timing import COST_ATTR

    stored, cost = study.user_attrs.get(SPEC_ATTR), study.user_attrs.get(COST_ATTR)
    if not (isinstance(stored, dict) and isinstance(cost, dict)):
        return None
    chosen = stored.get("valid_pairs")
    if chosen is None or cost.get("valid_pairs") != chosen or spec.valid_pairs == chosen:
        return None
    if spec.valid_pairs is not None and spec.valid_pairs < chosen:
        return None
    return int(chosen)


def keep_chosen_valid_pairs(study: Any, spec: StudySpec) -> StudySpec:
    """``spec`` with the validation budget of :func:`chosen_valid_pairs`, said once in the log, when there is one."""
    import dataclasses

    chosen = chosen_valid_pairs(study, spec)
    if chosen is None:
        return spec
    _logger.info("study %s keeps the validation budget of %d pairs its cost probe chose", study.study_name, chosen)
    return dataclasses.replace(spec, valid_pairs=chosen)


def check_compatible(study: Any, spec: StudySpec, launch: dict[str, Any]) -> list[str]:
    """Refuse to continue a study with another checkpoint, encoder, raw files of its dataset, validation
    budget, fine-tuning budget (learnable modes, once a trial finished) or space (StudyError, one line naming
    what differs); notes for what is kept as stored."""
    notes: list[str] = []
    stored_launch = study.user_attrs.get(LAUNCH_ATTR)
    if isinstance(stored_launch, dict):
        stored_files = stored_launch.get(DATA_FILES_KEY)
        changes = data_file_changes(stored_files, launch.get(DATA_FILES_KEY))
        if changes:
            raise StudyError(f"study {study.study_name} was run on other raw files of {stored_files.get('dataset')}: "
                             f"{'; '.join(changes)}; its trial values would not be comparable: restore the files, "
                             "or use another --storage")
        old, new = stored_launch.get("checkpoint_sha256"), launch.get("checkpoint_sha256")
        if old and new and old != new:
            raise StudyError(f"study {study.study_name} was run with another checkpoint (sha256 {old[:12]}..., "
                             f"now {new[:12]}...); use another --storage")
        old, new = stored_launch.get("encoder_name"), launch.get("encoder_name")
        if old and new and old != new:
            raise StudyError(f"study {study.study_name} was run with text encoder {old}, now {new}: one study cannot "
                             f"mix encoders (pass --encoder {stored_launch.get('encoder') or old} or use another "
                             f"--storage)")
    stored = study.user_attrs.get(SPEC_ATTR)
    if isinstance(stored, dict) and stored.get("valid_pairs") != spec.valid_pairs and study.get_trials(
            deepcopy=False, states=FINISHED):
        def words(pairs: int | None) -> str:
            return "the whole validation split" if pairs is None else f"a validation sample of {pairs} pairs"

        raise StudyError(f"study {study.study_name} was searched on {words(stored.get('valid_pairs'))}, not "
                         f"{words(spec.valid_pairs)}: its trial values would not be comparable; launch it with the "
                         f"same validation budget ({_valid_pairs_option(stored.get('valid_pairs'))}) or use another "
                         "--storage")
    if isinstance(stored, dict) and spec.mode != "fixed" and study.get_trials(deepcopy=False, states=FINISHED):
        before, now = stored_spec(study).fine_tune_budget(), spec.fine_tune_budget()
        if before.runs_as() != now.runs_as():
            raise StudyError(f"study {study.study_name} fine-tuned its trials for {before.describe()}, not "
                             f"{now.describe()}: its trial values would not be comparable; launch it with the same "
                             "budget (--budget-scale, the spec's budget) or use another --storage")
    if isinstance(stored, dict):
        changes = space_changes(stored_spec(study).search_space(), spec.search_space())
        if changes:
            raise StudyError(f"study {study.study_name} was run with another search space ({'; '.join(changes)}); "
                             "use another --storage")
    finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    if finished > spec.trials:
        notes.append(f"study {study.study_name} already has {finished} finished trials, more than --trials "
                     f"{spec.trials}: nothing to run")
    return notes

def space_changes(old: Any, new: Any) -> list[str]:
    """What differs between two :class:`search.study.spaces.SearchSpace`, in words: one entry per parameter, e.g.
    ``prompt_enhancer_weight: soft_high 1, now 0.5`` or ``fusion_lr: searched in [0.0001, 0.1], now pinned to
    0.01``; empty when they search the same space."""
    words = {"low": "low", "high": "soft_high", "hard_low": "hard low", "hard_high": "weight_cap", "log": "log scale",
             "value": "pinned value"}
    changes = []
    for name in sorted(set(old.params) | set(new.params)):
        a, b = old.params.get(name), new.params.get(name)
        if a is None or b is None:
            changes.append(f"{name}: {'not searched' if a is None else 'searched'}, now "
                           f"{'searched' if a is None else 'not searched'}")
        elif a != b:
            if a.searched != b.searched:
                def state(p: Any) -> str:
                    return f"searched in [{p.low:g}, {p.high:g}]" if p.searched else f"pinned to {p.value}"

                changes.append(f"{name}: {state(a)}, now {state(b)}")
                continue
            for field, label in words.items():
                x, y = getattr(a, field), getattr(b, field)
                if x != y:
                    show = (lambda v: f"{v:g}") if isinstance(x, float) and isinstance(y, float) else str
                    changes.append(f"{name}: {label} {show(x)}, now {show(y)}")
    return changes


def prepare_study(spec: StudySpec, url: StorageURL, path: Path, launch_record: dict[str, Any], *,
                  fail_stale: bool = False, new: "NewStudies | None" = None) -> tuple[Any, bool, list[str], StudySpec]:
    """Open or create the study of ``spec`` for a run and make it ready: ``(study, created, notes, spec)``.

    A study created now gets its known points; an existing one must have been run with the same
    checkpoint, encoder, raw files and space (else StudyError), its stop record is cleared and its stale RUNNING
    trials are settled (:mod:`search.study.stale`). The spec and launch record are stored on the study,
    unless it already has more finished trials than ``spec.trials``: then ``notes`` says so and the
    returned spec is the stored one (nothing is to run). new: the run's :class:`NewStudies`, told of the
    study before it is opened and given it when it is created here (call this inside its
    ``undo_on_bad_input``).
    """
    from search.runners.setup import open_study

    if new is not None:
        new.expect(str(spec.name.canonical()))
    study, created = open_study(spec, url, path)
    if new is not None and created:
        new.add(study)
    if not created:
        spec = keep_chosen_valid_pairs(study, spec)
    notes = [] if created else check_compatible(study, spec, launch_record)
    if not notes:
        clear_stop(study)  # a new run checks the stopping rule again
    if notes:  # more finished trials than asked for: the stored spec (and budget) stay as they are
        spec = stored_spec(study)
    else:
        study.set_user_attr(SPEC_ATTR, spec.to_attr())
        stored_launch = {} if created else study.user_attrs.get(LAUNCH_ATTR)
        if DATA_FILES_KEY not in launch_record and isinstance(stored_launch, dict) and DATA_FILES_KEY in stored_launch:
            launch_record = {**launch_record, DATA_FILES_KEY: stored_launch[DATA_FILES_KEY]}  # not readable here: kept
        study.set_user_attr(LAUNCH_ATTR, launch_record)
    if not created:  # trials left RUNNING by workers that nothing vouches for: named, failed when stale
        from search.study.stale import settle_stale

        settle_stale(study, fail_stale=fail_stale)
    return study, created, notes, spec

class NewStudies:
    """What a run makes -- its studies, and the storage file and folder when it made them -- so that bad
    input met before any of their trials finished removes it again: a launch that fails on bad input
    (a full disk under the storage included: :class:`search.storage.rdb.NamedRDBStorage`) leaves no
    half-made study (known points WAITING for a run that cannot start) and no schema-only file behind.

    Use: ``new = NewStudies(url)`` before the first study is opened (a writer's first look: it rolls back a
    hot journal, :func:`search.storage.recover_storage`), ``new.add(study)`` for each one created, and
    ``with new.undo_on_bad_input(): <prepare the studies, run the trials>``. A study announced with
    :meth:`expect` (:func:`prepare_study` does, given ``new=``) that appeared in the storage since
    ``NewStudies(url)`` counts as made by the run even when the failure came before ``add`` (a disk that
    filled up while its known points were enqueued); another process's study never does.
    """

    def __init__(self, url: StorageURL) -> None:
        from search.storage import recover_storage

        self.url = recover_storage(url)
        self.file_existed = url.kind not in ("sqlite", "journal") or storage_state(url).state != "missing"
        self.folder_existed = url.path is None or url.path.parent.exists()
        self.studies: list[Any] = []
        self.expected: set[str] = set()
        self.names_before = self._names_now() if self.file_existed else frozenset()

    def _names_now(self) -> frozenset[str] | None:
        """The names of the studies the storage holds now (read-only); None when it cannot be read."""
        import optuna

        from search.errors import StorageError
        from search.storage import open_storage

        if self.url.kind in ("sqlite", "journal") and storage_state(self.url).state != "ready":
            return frozenset()
        try:
            return frozenset(s.study_name for s in optuna.get_all_study_summaries(
                open_storage(self.url, read_only=True), include_best_trial=False))
        except StorageError:  # a server without a schema yet, or one that cannot be reached
            return None

    def add(self, study: Any) -> None:
        """Count ``study`` (created by this run) among what the run made."""
        self.studies.append(study)

    def expect(self, name: str) -> None:
        """The run is about to open or create the study ``name`` (canonical): if it is in the storage at the
        undo and was not before, the run made it, even when the failure came before :meth:`add`."""
        self.expected.add(str(name))

    @contextlib.contextmanager
    def undo_on_bad_input(self) -> Iterator[None]:
        """Run the body; on bad input (a user error, exit 2) remove what the run made, then re-raise."""
        from search.errors import user_error_types

        try:
            yield
        except user_error_types():
            try:
                self._undo()
            except Exception as exc:  # noqa: BLE001 -- the first error is the one to report
                _logger.warning("could not remove what the run made in %s: %s", self.url.safe, exc)
            raise

    def _undo(self) -> None:
        """Remove the studies this run made that have no finished trial; the storage file and its folder
        too when the run made the file and nothing else is in it."""
        import optuna

        from search.storage import open_storage

        if not self.file_existed and self.url.path is not None and not self.url.path.exists():
            self._remove_files()  # the open that would have made it failed (and removed it): its lock, folder
            return
        if not self.studies and (self.names_before is None or not self.expected):
            return
        storage = open_storage(self.url)
        now = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        made = {study.study_name for study in self.studies}
        if self.names_before is not None:
            made |= self.expected & (now - self.names_before)
        untouched = sorted(name for name in made & now if not optuna.load_study(
            study_name=name, storage=storage).get_trials(deepcopy=False, states=FINISHED))
        if not self.file_existed and self.url.path is not None and now == set(untouched):
            # every study in the file is one this run made: the file goes, without writing to it (a full disk)
            self._remove_files()
            for name in untouched:
                _logger.info("study %s removed again: bad input before any of its trials finished", name)
            return
        for name in untouched:
            optuna.delete_study(study_name=name, storage=storage)
            _logger.info("study %s removed again: bad input before any of its trials finished", name)

    def _remove_files(self) -> None:
        """The storage file this run created (with its lock and SQLite's files beside it), and its folder
        when the run made that and nothing else went there; the storages opened on it are closed first."""
        from search.storage import local_files
        from search.storage.backends import close_storages

        close_storages(self.url)
        for path in local_files(self.url):
            path.unlink(missing_ok=True)
        if not self.folder_existed:
            with contextlib.suppress(OSError):  # only when nothing else went there meanwhile
                self.url.path.parent.rmdir()

def warm_start_inputs(spec: StudySpec, url: StorageURL, options: LoadOptions, *,
                       quiet: bool = True) -> tuple[list[Any], Any]:
    """``(sources, stats)`` of a run: the studies of ``spec.warm_start_from`` in ``url`` (StudyError
    naming one that is not there) and the GraphStats of ``spec.dataset`` (stored on the study as the
    user attr ``graph_stats``, see :mod:`search.study.warmstart`). Without a warm start a dataset that
    cannot be loaded here (a Ray driver without the data) gives None stats instead of an error."""
    from search.study.warmstart import dataset_stats, load_sources

    with quiet_dataset_reports(quiet):
        if spec.warm_start_from:
            return load_sources(url, spec.warm_start_from), dataset_stats(spec.dataset, options)
        try:
            return [], dataset_stats(spec.dataset, options)
        except Exception as exc:  # noqa: BLE001 -- only a record; the run loads the dataset itself
            _logger.debug("graph statistics of %s not recorded: %s", spec.dataset, exc)
            return [], None
