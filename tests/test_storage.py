"""search.storage: the one URL parser, storage states, opening once per process, the SQLite lock of ours,
finding and creating studies.

Real SQLite and journal files, real processes; the read-only case runs in a mount namespace where the
study's folder is a read-only bind mount.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.compat import storage_of
from search.study.budget import remaining_budget
from search.errors import StorageError, StudyError
from search.study.names import StudyName
from search.samplers import make_sampler
from search.storage import (
    DB_FILE_NAME,
    MAX_RETRY,
    LockedSQLiteStorage,
    StorageURL,
    create_or_load_study,
    default_storage,
    file_lock,
    find_study,
    list_studies,
    load_study,
    local_files,
    lock_path_of,
    open_storage,
    storage_state,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
METAFAM = "Metafam:Metafam/fixed"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A working directory and a home folder of our own, so relative and ~ paths have known answers."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    return tmp_path


def _python(code: str, *args: str, cwd: Path = REPO) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_study_file(path: Path, name: str = METAFAM, trials: int = 2) -> None:
    """A real SQLite study file with ``trials`` complete trials (written through are-search)."""
    study, created = create_or_load_study(open_storage(path), StudyName.parse(name),
                                          sampler=make_sampler("random", 0))
    assert created
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=trials)


# ---------------------------------------------------------------------------------------------
# the URL parser


@pytest.mark.parametrize("spelling", ["sqlite:///rel.db", "sqlite:///{work}/rel.db", "sqlite:///./sub/../rel.db",
                                      "rel.db", "./rel.db", "{work}/rel.db", "  rel.db  ", "~/../work/rel.db",
                                      "sqlite:///~/../work/rel.db"])
def test_every_sqlite_spelling_parses_to_one_absolute_url(home, spelling):
    work = home / "work"
    url = StorageURL.parse(spelling.format(work=work))
    assert (url.kind, url.path) == ("sqlite", work / "rel.db")
    assert url.url == f"sqlite:///{work}/rel.db" and url.url.startswith("sqlite:////")
    assert url.safe == url.url == str(url)
    assert StorageURL.parse(url) is url and StorageURL.parse(url.url) == url  # parsing is idempotent
    assert StorageURL.parse(Path("rel.db")) == url  # an os.PathLike


def test_sqlite_spellings_of_home_and_other_suffixes(home):
    assert StorageURL.parse("~/x.db").path == home / "home" / "x.db"
    assert StorageURL.parse("sqlite:///~/x.db").path == home / "home" / "x.db"
    for name in ("x.sqlite", "x.sqlite3"):
        assert StorageURL.parse(name) == StorageURL("sqlite", f"sqlite:///{home}/work/{name}", home / "work" / name)
    # against another base folder (a spec file's caller may give one)
    assert StorageURL.parse("x.db", base=home / "elsewhere").path == home / "elsewhere" / "x.db"
    assert StorageURL.parse("sqlite:////abs/x.db", base=home / "elsewhere").path == Path("/abs/x.db")
    # query arguments survive, on the absolute URL
    assert StorageURL.parse("sqlite:///x.db?timeout=3").url == f"sqlite:///{home}/work/x.db?timeout=3"
    assert default_storage("studies") == StorageURL.parse(f"sqlite:///studies/{DB_FILE_NAME}")
    assert default_storage("studies").path == home / "work" / "studies" / "are-search.db"


@pytest.mark.parametrize("spelling", ["journal:x.log", "x.log", "journal:{work}/x.log", "journal://{work}/x.log",
                                      "journal://x.log", "{work}/x.log", "~/../work/x.log", "journal:~/../work/x.log"])
def test_every_journal_spelling_parses_to_one_absolute_url(home, spelling):
    url = StorageURL.parse(spelling.format(work=home / "work"))
    assert (url.kind, url.path, url.url) == ("journal", home / "work" / "x.log", f"journal:{home}/work/x.log")
    assert StorageURL.parse(url.url) == url


@pytest.mark.parametrize("spelling", ["journal:///{work}/x.log", "/{work}/x.log", "sqlite:////{work}/x.db",
                                      "/{work}/x.db"])
def test_a_parsed_url_parses_back_to_the_same_file(home, spelling):
    """The URL a driver hands its workers (url.url) must name the file the driver opened.

    ``journal:///`` + an absolute path is the journal twin of ``sqlite:////abs``; a path written with
    a leading ``//`` is the same file as with one ``/`` on Linux.
    """
    work = home / "work"
    url = StorageURL.parse(spelling.format(work=work))
    again = StorageURL.parse(url.url)
    assert again == url, f"{spelling!r} -> {url.url!r} -> {again.url!r}"
    assert str(url.path).lstrip("/") == str(work / url.path.name).lstrip("/"), f"{spelling!r} parsed to {url.path}"


def test_jsonl_and_memory_urls(home):
    assert StorageURL.parse("x.jsonl") == StorageURL("journal", f"journal:{home}/work/x.jsonl", home / "work" / "x.jsonl")
    assert StorageURL.parse("sqlite://").kind == "memory"
    assert StorageURL.parse("sqlite:///:memory:").kind == "memory"


@pytest.mark.parametrize("text, masked", [
    ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg2://are:s3cret@10.0.0.7:5432/are_search", "postgresql+psycopg2://are:***@10.0.0.7:5432/are_search"),
    ("mysql://are:s3cret@db.example/are", "mysql://are:***@db.example/are"),
    ("postgresql://are@host/db", "postgresql://are@host/db"),  # no password: nothing to mask
])
def test_server_urls_keep_the_password_but_never_show_it(text, masked):
    url = StorageURL.parse(text)
    assert (url.kind, url.url, url.path) == ("server", text, None)  # Optuna gets the real URL
    assert url.safe == masked and str(url) == masked and f"{url}" == masked


@pytest.mark.parametrize("bad", ["", "   ", "redis-ish", "studies/are-search", "sqlite:/x.db", "sqlite://x.db",
                                 "journal:", "sqlite:///file:x.db?mode=ro", "://nothing", 42, None])
def test_bad_storage_urls_are_one_line_naming_the_text(home, bad):
    with pytest.raises(StorageError) as info:
        StorageURL.parse(bad)
    message = str(info.value)
    assert message.startswith(f"bad storage URL {bad!r}") and "\n" not in message
    assert info.value.exit_code == 2
    assert not list((home / "work").iterdir())  # nothing created on the way


def test_a_bad_server_url_hides_its_password():
    with pytest.raises(StorageError) as info:
        StorageURL.parse("postgresql://are:s3cret@host:notaport/db")
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# states and opening


def test_storage_state_of_missing_empty_and_real_files(tmp_path):
    missing = tmp_path / "missing" / "s.db"
    state = storage_state(str(missing))
    assert state.state == "missing" and state.url.path == missing
    assert state.describe() == f"sqlite:///{missing} (does not exist)"
    assert not missing.parent.exists()  # looking creates nothing

    empty = tmp_path / "empty.db"
    empty.touch()
    assert storage_state(empty).state == "empty"
    assert "holds no Optuna schema" in storage_state(empty).describe()
    assert empty.stat().st_size == 0

    real = tmp_path / "real.db"
    _make_study_file(real)
    before = _sha(real)
    assert storage_state(f"sqlite:///{real}").state == "ready"
    assert _sha(real) == before

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database " * 200)
    with pytest.raises(StorageError, match=rf"^storage sqlite:///{junk}: not an SQLite database"):
        storage_state(junk)

    journal = tmp_path / "j.log"
    assert storage_state(journal).state == "missing"
    journal.touch()
    assert storage_state(journal).state == "empty"
    assert storage_state("postgresql://u:pw@host/db").state == "unknown"
    assert storage_state("postgresql://u:pw@host/db").describe() == "postgresql://u:***@host/db (server)"


def test_open_for_writing_creates_folder_file_schema_and_heartbeats(tmp_path):
    path = tmp_path / "new" / "s.db"  # its own folder is made (a tree of missing folders is refused: test_cli_edges)
    storage = open_storage(f"sqlite:///{path}")
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert (storage.heartbeat_interval, storage.grace_period) == (15, 60)
    # Optuna >= 4.9 names it heartbeat_stale_trial_callback, failed_trial_callback before
    callback = getattr(storage, "heartbeat_stale_trial_callback", None) or storage.failed_trial_callback
    assert callback is not None and callback._max_retry == MAX_RETRY == 3
    assert storage_state(path).state == "ready"
    assert isinstance(storage, LockedSQLiteStorage)
    assert lock_path_of(storage) == path.with_name("s.db.lock") and path.with_name("s.db.lock").exists()
    assert open_storage(path, heartbeat_interval=5, grace_period=20).grace_period == 20
    # a .log file named in an sqlite:/// URL is an SQLite file: the URL's scheme wins over the suffix
    assert isinstance(open_storage(f"sqlite:///{tmp_path}/odd.log"), optuna.storages.RDBStorage)


def test_read_only_open_of_missing_and_empty_storages_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere" / "s.db"
    with pytest.raises(StorageError, match=r"does not exist\): nothing to read$"):
        open_storage(missing, read_only=True)
    assert not missing.parent.exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StorageError, match=r"holds no Optuna schema\): nothing to read$"):
        open_storage(f"sqlite:///{empty}", read_only=True)
    assert empty.stat().st_size == 0, "a read-only open wrote a schema into an empty file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]  # no lock, no journal file

    journal = tmp_path / "j.log"
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"journal:{journal}", read_only=True)
    assert not journal.exists()
    journal.touch()
    with pytest.raises(StorageError, match="holds no Optuna schema"):
        open_storage(journal, read_only=True)
    assert journal.stat().st_size == 0


def test_read_only_open_of_a_real_study_writes_nothing(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    path = folder / "s.db"
    _make_study_file(path)
    path.with_name("s.db.lock").unlink()
    before = _sha(path)
    storage = open_storage(path, read_only=True)
    assert lock_path_of(storage) is None and not isinstance(storage, LockedSQLiteStorage)
    assert [s.study_name for s in list_studies(storage)] == [METAFAM]
    study = load_study(storage, "metafam/fixed", where=str(path))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    # the connection itself refuses writes, in one line naming the storage (not Optuna's "invalid data")
    with pytest.raises(StorageError, match=r"^cannot write storage sqlite:///.*: attempt to write a readonly database$"):
        optuna.create_study(storage=storage, study_name="FBNELL:FBNELL_v1/fixed")
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"] and _sha(path) == before


RO_CHECK = r"""
import os, sys
from pathlib import Path
from search.storage import list_studies, load_study, open_storage, storage_state
db = Path(sys.argv[1])
before = sorted(os.listdir(db.parent))
assert storage_state(db).state == "ready"
storage = open_storage(db, read_only=True)
names = [s.study_name for s in list_studies(storage)]
study = load_study(storage, "Metafam/fixed", where=str(db))
after = sorted(os.listdir(db.parent))
try:
    (db.parent / "probe").touch()
    mount = "writable"
except OSError:
    mount = "read-only"
print(names, len(study.trials), before == after, after, mount)
"""


def test_read_only_open_on_a_read_only_bind_mount(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot make a read-only bind mount")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m is not permitted here: {probe.stderr.strip().splitlines()[-1:]}")
    source, mounted = tmp_path / "source", tmp_path / "mounted"
    source.mkdir()
    mounted.mkdir()
    _make_study_file(source / "s.db")
    (source / "s.db.lock").unlink()
    before = _sha(source / "s.db")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    check = tmp_path / "ro_check.py"
    check.write_text(RO_CHECK)
    inner = (f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(mounted))} && "
             f"mount -o remount,bind,ro {shlex.quote(str(mounted))} && "
             f"{shlex.quote(sys.executable)} {shlex.quote(str(check))} {shlex.quote(str(mounted / 's.db'))}")
    run = subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == f"['{METAFAM}'] 2 True ['s.db'] read-only"
    assert sorted(p.name for p in source.iterdir()) == ["s.db"] and _sha(source / "s.db") == before


def test_unopenable_storages_are_one_line_errors():
    with pytest.raises(StorageError) as info:
        open_storage("nosuchdb://x/y")
    assert str(info.value).startswith("cannot open storage nosuchdb://x/y: ") and "\n" not in str(info.value)
    for read_only in (False, True):  # no driver or no server: one line, password hidden
        with pytest.raises(StorageError) as info:
            open_storage("postgresql://are:s3cret@127.0.0.1:1/are", read_only=read_only)
        message = str(info.value)
        assert "127.0.0.1" in message and "s3cret" not in message and "***" in message and "\n" not in message


def test_journal_storage_round_trip(tmp_path):
    path = tmp_path / "journal" / "are-search.log"
    storage = open_storage(f"journal:{path}")
    assert isinstance(storage, optuna.storages.JournalStorage) and lock_path_of(storage) is None
    study, created = create_or_load_study(storage, StudyName.of("FBNELL", "fixed"), sampler=make_sampler("random", 0))
    assert created and study.study_name == "FBNELL:FBNELL_v1/fixed"
    study.optimize(lambda t: -((t.suggest_float("x", -1, 1) - 0.3) ** 2), n_trials=3)

    assert open_storage(str(path)) is storage  # a path ending in .log is the same journal, opened once
    again = open_storage(str(path), read_only=True)  # another mode: a second storage that replays the file
    assert again is not storage
    loaded, created = create_or_load_study(again, StudyName.parse("FBNELL/fixed"))
    assert not created

    def summary(s: optuna.Study) -> list:
        return [(t.number, t.params, t.value) for t in s.trials]

    assert summary(loaded) == summary(study)
    assert [s.study_name for s in list_studies(open_storage(path, read_only=True))] == ["FBNELL:FBNELL_v1/fixed"]
    assert remaining_budget(loaded, 5) == 2


# ---------------------------------------------------------------------------------------------
# opened once per process; the SQLite lock of ours


def test_a_storage_is_opened_once_per_url_and_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = StorageURL.parse("s.db")
    first = open_storage(url)
    for spelling in ("s.db", f"sqlite:///{tmp_path}/s.db", tmp_path / "s.db", StorageURL.parse(url.url)):
        assert open_storage(spelling) is first, spelling  # one parsed URL, one storage
    reader = open_storage(url, read_only=True)
    assert reader is not first and open_storage("s.db", read_only=True) is reader
    quick = open_storage(url, heartbeat_interval=5, grace_period=20)  # other heartbeats: another storage
    assert quick is not first and (quick.heartbeat_interval, quick.grace_period) == (5, 20)
    assert (first.heartbeat_interval, first.grace_period) == (15, 60)

    for path in local_files(url):  # a rolled-back launch deletes the file: the next open starts afresh
        path.unlink(missing_ok=True)
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(url, read_only=True)
    fresh = open_storage(url)
    assert fresh is not first and storage_state(url).state == "ready" and open_storage(url) is fresh


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_worker_opens_its_own_storage(tmp_path):
    parent = open_storage(tmp_path / "s.db")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            mine = open_storage(tmp_path / "s.db")
            ok = mine is not parent and open_storage(tmp_path / "s.db") is mine and isinstance(mine, LockedSQLiteStorage)
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1", "the forked child was handed its parent's storage"
    assert open_storage(tmp_path / "s.db") is parent


def test_locked_sqlite_storage_travels_with_its_lock(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    copy = pickle.loads(pickle.dumps(storage))  # as a Ray worker or a spawned process gets it
    assert isinstance(copy, LockedSQLiteStorage) and lock_path_of(copy) == tmp_path / "s.db.lock"
    study = optuna.create_study(storage=copy, study_name="s")
    assert lock_path_of(storage_of(study)) is None  # Optuna's cache around it is not ours: pass the opened storage
    assert [s.study_name for s in list_studies(storage)] == ["s"]


HOLD_LOCK = ("import sys, time\nfrom search.storage import file_lock\n"
             "with file_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n")


def test_an_enqueued_trial_is_started_under_the_file_lock(tmp_path):
    """Starting a WAITING trial (set RUNNING) waits for ``<db>.lock``; finishing a trial does not."""
    storage = open_storage(tmp_path / "s.db")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    running = study.ask()  # a new trial is created RUNNING: no lock
    study.enqueue_trial({"x": 0.25})
    holder = _python(HOLD_LOCK, str(lock_path_of(storage)), "1.5")
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        study.tell(running, 1.0)  # COMPLETE: not behind the lock
        told = time.monotonic() - start
        queued = study.ask()  # pops the WAITING trial: behind the lock
        waited = time.monotonic() - start
    finally:
        holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert told < 0.5, f"telling a trial waited for the lock ({told:.2f}s)"
    assert waited > 0.5, f"an enqueued trial was started while another process held the lock ({waited:.2f}s)"
    assert queued.number == 1 and queued.suggest_float("x", 0.0, 1.0) == 0.25
    assert study.trials[1].state == TrialState.RUNNING


# ---------------------------------------------------------------------------------------------
# finding and creating studies


def test_find_study_resolves_every_spelling_to_one_stored_study(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    study, created = create_or_load_study(storage, StudyName.parse("metafam/fixed"))
    assert created and study.study_name == METAFAM
    optuna.create_study(storage=storage, study_name="someone else's study")  # not <dataset>/<mode>: ignored
    for spelling in ("metafam/fixed", "Metafam/fixed", "Metafam:Metafam/fixed", "METAFAM/fixed",
                     StudyName("metafam", "fixed")):
        assert find_study(storage, spelling) == METAFAM
    assert find_study(storage, "Metafam/learnable") is None
    assert find_study(storage, "FBNELL/fixed") is None
    with pytest.raises(StudyError, match="^no study FBNELL/fixed in here .studies there: Metafam:Metafam/fixed, "
                                         "someone else's study.$"):
        load_study(storage, "FBNELL/fixed", where="here")
    with pytest.raises(StudyError, match="bad study name 'Metafam'"):
        find_study(storage, "Metafam")


def test_find_study_finds_a_legacy_study_under_any_spelling(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    legacy = optuna.create_study(storage=storage, study_name="Metafam/fixed", direction="maximize")
    legacy.add_trial(optuna.trial.create_trial(value=0.3, params={"x": 0.5},
                                               distributions={"x": optuna.distributions.FloatDistribution(0, 1)}))
    for spelling in ("metafam/fixed", "Metafam/fixed", "Metafam:Metafam/fixed"):
        assert find_study(storage, spelling) == "Metafam/fixed"
    study, created = create_or_load_study(storage, StudyName.parse("Metafam:Metafam/fixed"))
    assert not created and study.study_name == "Metafam/fixed" and study.best_value == 0.3
    assert [s.study_name for s in list_studies(storage)] == ["Metafam/fixed"]  # no second study made

    optuna.create_study(storage=storage, study_name="metafam/fixed", direction="maximize")  # now two spellings
    with pytest.raises(StudyError, match="several studies are Metafam:Metafam/fixed: Metafam/fixed, metafam/fixed"):
        find_study(storage, "Metafam:Metafam/fixed")
    assert find_study(storage, "metafam/fixed") == "metafam/fixed"  # an exact name still wins


def test_create_or_load_study_with_three_spellings_leaves_one_study(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    results = [create_or_load_study(storage, StudyName.parse(spelling))
               for spelling in ("metafam/fixed", "Metafam/fixed", "Metafam:Metafam/fixed")]
    assert [created for _, created in results] == [True, False, False]
    assert {study.study_name for study, _ in results} == {METAFAM}
    assert [s.study_name for s in list_studies(storage)] == [METAFAM]
    study = results[0][0]
    assert study.metric_names == ["validation MRR"] and study.direction == optuna.study.StudyDirection.MAXIMIZE
    reloaded = optuna.load_study(study_name=METAFAM, storage=open_storage(tmp_path / "s.db", read_only=True))
    assert reloaded.metric_names == ["validation MRR"]


def test_create_or_load_study_refuses_a_study_that_minimizes(tmp_path):
    storage = open_storage(tmp_path / "s.db")
    optuna.create_study(storage=storage, study_name=METAFAM, direction="minimize")
    with pytest.raises(StudyError, match=f"study {METAFAM} exists but does not maximize a single value"):
        create_or_load_study(storage, StudyName.parse("metafam/fixed"))


# Several processes creating one study at once on a fresh file, each with its own spelling of the
# dataset: tests/test_budget.py::test_workers_with_three_spellings_share_one_fresh_study_and_its_budget.


def test_file_lock_excludes_another_process(tmp_path):
    lock = tmp_path / "deep" / "x.lock"
    holder = _python("import sys, time\nfrom search.storage import file_lock\n"
                     "with file_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(1.5)\n",
                     str(lock))
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with file_lock(lock):
            waited = time.monotonic() - start
        assert waited > 0.5, f"the lock was taken while another process held it (waited {waited:.2f}s)"
    finally:
        holder.communicate(timeout=30)
    assert holder.returncode == 0
