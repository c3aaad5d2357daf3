"""The faults of issue 19, each on its real input: a FIFO and a device node where are-search writes, a journal
cut mid-record, an SQLite file with a hot journal, ``#`` and ``%HH`` in a storage path, an ``@`` in a password,
a full disk under the storage.

Every input is made for real: FIFOs with ``os.mkfifo``, character device nodes with ``os.mknod`` in the test's
own folder (never the system's ``/dev/null``), a journal written by a real study and cut inside a record, a
writer process SIGKILLed inside an SQLite transaction, a small tmpfs filled up. Studies come from
the 0.2.0 storage (``tests/oldstudies.py``) (real are-search studies and the campaign ``oldcamp``) or are written
through :func:`search.storage.open_storage`; no test evaluates a model. Commands run as ``python -m search``
with a timeout, so a command that blocks on a FIFO fails the test instead of hanging it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from are_model.fileio import NotWritableError, atomic_write_bytes
from oldstudies import write_old_studies
from search.errors import StorageError
from search.storage import StorageURL, create_or_load_study, open_storage
from search.study.names import StudyName

optuna.logging.set_verbosity(optuna.logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
STUDY = "Metafam/fixed"
CANONICAL = "Metafam:Metafam/fixed"
BEST = "0.2635"  # the fixture's best validation MRR of Metafam/fixed
TIMEOUT = 120  # seconds a command may take here (a loaded machine): a FIFO that blocks fails the test


def cli(*args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m search ARGS`` in ``cwd`` (this checkout first on the path), output captured."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "search", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def python(code: str, *args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``python -c CODE ARGS`` in a fresh process (its own storages), this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def one_error(result: subprocess.CompletedProcess) -> str:
    """The one error line of a command that failed on bad input (exit 2, nothing else on stderr)."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    prefix = re.match(r"are-search( campaign)? [a-z]+: error: ", lines[0]) if len(lines) == 1 else None
    assert prefix is not None, result.stderr[-3000:]  # the command's own prefix, as argparse's errors have
    return lines[0][prefix.end():]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def study_db(tmp_path) -> Path:
    """A copy of the fixture's real studies (Metafam fixed and learnable, campaign ``oldcamp``)."""
    folder = tmp_path / "store"
    folder.mkdir()
    path = folder / "s.db"
    write_old_studies(path)
    return path


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_char_device(path: Path) -> Path:
    """A character device node like /dev/null (major 1, minor 3), made in the test's folder."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError as exc:
        pytest.skip(f"cannot make a device node here (mknod needs root): {exc}")
    return path


def kind_of(path: Path) -> str:
    mode = os.lstat(path).st_mode
    return ("fifo" if stat.S_ISFIFO(mode) else "char" if stat.S_ISCHR(mode) else "link" if stat.S_ISLNK(mode)
            else "file" if stat.S_ISREG(mode) else "other")


NODES = {"fifo": make_fifo, "char": make_char_device}


def make_node(kind: str, path: Path) -> Path:
    """A FIFO, a device node, or a link to a FIFO at ``path``; returns the path the command is given."""
    if kind == "link-to-fifo":
        make_fifo(path.with_name(path.name + ".target"))
        path.symlink_to(path.with_name(path.name + ".target"))
        return path
    return NODES[kind](path)


def still(kind: str, path: Path) -> bool:
    """Whether the node made by :func:`make_node` is still what it was (a link still points at a FIFO)."""
    if kind == "link-to-fifo":
        return kind_of(path) == "link" and stat.S_ISFIFO(os.stat(path).st_mode)
    return kind_of(path) == kind


KINDS = ["fifo", "char", "link-to-fifo"]


# ---------------------------------------------------------------------------------------------
# 1. a path are-search writes that is not a regular file


@pytest.mark.parametrize("kind", KINDS)
def test_export_refuses_a_flags_file_that_is_not_a_regular_file(tmp_path, study_db, kind):
    node = make_node(kind, tmp_path / "flags.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("export", STUDY, "--flags", str(node), "--storage", str(study_db), cwd=tmp_path)
    assert one_error(result) == f"{node}: not a regular file"
    assert still(kind, node)  # the node is not replaced by a plain file, and nothing blocked
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left beside it


@pytest.mark.parametrize("kind", KINDS)
def test_export_all_and_campaign_export_refuse_a_node_among_the_flags_files(tmp_path, study_db, kind):
    out = tmp_path / "flags"
    (out / "Metafam_Metafam").mkdir(parents=True)
    node = make_node(kind, out / "Metafam_Metafam" / "flags.yaml")
    for args in (["export", "--all", str(out)], ["campaign", "export", "oldcamp", "--out", str(out)]):
        result = cli(*args, "--storage", str(study_db), cwd=tmp_path)
        assert one_error(result) == f"{node}: not a regular file", args
        assert still(kind, node), args


@pytest.mark.parametrize("command", ["launch", "resume"])
def test_launch_and_resume_refuse_flags_that_are_not_a_regular_file_before_anything_runs(tmp_path, study_db,
                                                                                         command):
    fifo, device = make_fifo(tmp_path / "flags.fifo"), make_char_device(tmp_path / "flags.dev")
    for node in (fifo, device):
        if command == "launch":
            storage = tmp_path / "new" / "s.db"
            args = ["launch", "--dataset", "metafam", "--checkpoint", "fusion", "--trials", "1"]
        else:
            storage, args = study_db, ["resume", STUDY, "--trials", "5"]
        before = sha(study_db)
        result = cli(*args, "--flags", str(node), "--storage", str(storage), "-q", cwd=tmp_path)
        assert one_error(result) == f"{node}: not a regular file"
        assert kind_of(node) in ("fifo", "char") and kind_of(node) == ("fifo" if node == fifo else "char")
        assert not (tmp_path / "new").exists() and sha(study_db) == before  # nothing made, nothing run


def test_report_and_campaign_report_refuse_an_output_folder_that_is_not_a_folder(tmp_path, study_db):
    fifo, device = make_fifo(tmp_path / "out.fifo"), make_char_device(tmp_path / "out.dev")
    cases = [(["report", STUDY, "--out", str(fifo)], fifo), (["report", STUDY, "--out", str(device / "sub")], device),
             (["campaign", "report", "oldcamp", "--out", str(device)], device),
             (["campaign", "report", "oldcamp", "--out", str(fifo / "a" / "b")], fifo)]
    for args, node in cases:
        result = cli(*args, "--storage", str(study_db), cwd=tmp_path)
        assert one_error(result) == f"{node}: not a folder", args
    assert kind_of(fifo) == "fifo" and kind_of(device) == "char"


@pytest.mark.parametrize("kind", ["fifo", "char"])
def test_a_report_file_that_is_a_node_is_refused_by_the_one_atomic_write(tmp_path, kind):
    """Reports, plots, caches and flags files are all written by are_model.fileio.atomic_write."""
    node = NODES[kind](tmp_path / "summary.json")
    with pytest.raises(NotWritableError, match=rf"^{node}: not a regular file$"):
        atomic_write_bytes(node, b"{}\n")
    assert kind_of(node) == kind and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    regular = tmp_path / "real.json"
    regular.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(regular)
    atomic_write_bytes(link, b"new")  # a link to a regular file is written through
    assert kind_of(link) == "link" and regular.read_text() == "new"


@pytest.mark.parametrize("kind, name", [("fifo", "s.db"), ("char", "s.db"), ("link-to-fifo", "s.db"),
                                        ("fifo", "s.log"), ("char", "s.log")])
def test_a_storage_file_that_is_not_a_regular_file_is_refused_by_every_command(tmp_path, study_db, kind, name):
    folder = tmp_path / "nodes"
    folder.mkdir()
    node = make_node(kind, folder / name)
    listing = sorted(p.name for p in folder.iterdir())
    for args in (["status"], ["export", STUDY, "--flags", str(tmp_path / "f.yaml")], ["campaign", "status", "oldcamp"],
                 ["resume", STUDY]):
        result = cli(*args, "--storage", str(node), cwd=tmp_path)
        assert one_error(result) == f"{node}: not a regular file", args
        assert still(kind, node), args
        assert sorted(p.name for p in folder.iterdir()) == listing, args  # no -journal, no lock beside the node
    with pytest.raises(StorageError, match=rf"^{node}: not a regular file$"):
        open_storage(node)  # the writers' way in (launch, resume, campaigns, workers)


def test_a_lock_file_that_is_not_a_regular_file_is_refused_by_a_writer(tmp_path, study_db):
    lock = make_fifo(study_db.with_name("s.db.lock"))
    with pytest.raises(StorageError, match=rf"^{lock}: not a regular file$"):
        open_storage(study_db)
    assert kind_of(lock) == "fifo"


# ---------------------------------------------------------------------------------------------
# 2. a journal whose last line was cut (a writer killed mid-append)


def _journal_study(path: Path, trials: int) -> None:
    """A real journal written through are-search's storage: a study with ``trials`` complete trials."""
    storage = open_storage(f"journal:{path}")
    study, created = create_or_load_study(storage, StudyName.parse(STUDY))
    assert created
    for i in range(trials):
        study.add_trial(create_trial(params={"x": i / 10}, distributions={"x": FloatDistribution(0, 1)},
                                     value=0.1 * i))


APPEND = r"""
import sys
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from search.storage import open_storage
study = optuna.load_study(study_name="Metafam:Metafam/fixed", storage=open_storage("journal:" + sys.argv[1]))
study.add_trial(create_trial(params={"x": 0.9}, distributions={"x": FloatDistribution(0, 1)}, value=0.9))
print(len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))))
"""


def _complete_trials(status_stdout: str) -> int:
    (row,) = [line for line in status_stdout.splitlines() if line.startswith(CANONICAL + " ")]
    return int(row.split()[3])  # study, checkpoint, done, complete


def test_a_writer_drops_a_cut_last_journal_line_before_appending(tmp_path):
    journal = tmp_path / "studies" / "s.log"
    _journal_study(journal, trials=3)
    lines = journal.read_bytes().splitlines(keepends=True)
    cut = len(lines[-1]) // 2  # the last record (trial 2) loses its second half and its newline
    with open(journal, "r+b") as handle:
        handle.truncate(journal.stat().st_size - cut)
    dropped = len(lines[-1]) - cut

    reading = cli("status", "--json", "--storage", f"journal:{journal}", cwd=tmp_path)
    assert reading.returncode == 0, reading.stderr  # readers skip the cut line (they always did)

    writer = python(APPEND, str(journal), cwd=tmp_path)  # what resume does first: append a record
    assert writer.returncode == 0, writer.stderr[-3000:]
    assert writer.stdout.strip() == "3"  # trials 0 and 1, and the new one: the cut record never existed
    warning = [line for line in writer.stderr.splitlines() if "was cut" in line]
    assert warning == [f"storage journal:{journal}: line {len(lines)} was cut (a writer killed while appending it): "
                       f"dropped its {dropped} bytes before appending"], writer.stderr[-3000:]
    for number, line in enumerate(journal.read_bytes().splitlines(keepends=True), start=1):
        assert line.endswith(b"\n") and isinstance(json.loads(line), dict), f"line {number}: {line[:80]!r}"

    for _ in range(2):  # every command after it works, and a second append is a plain one
        status = cli("status", "--storage", str(journal), cwd=tmp_path)
        assert status.returncode == 0, status.stderr[-3000:]
        assert _complete_trials(status.stdout) == 3
    again = python(APPEND, str(journal), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == "4" and "was cut" not in again.stderr


def test_a_journal_line_that_cannot_be_parsed_names_the_file_and_line(tmp_path):
    """A journal broken before the repair existed: a record appended onto a cut line, records after it."""
    journal = tmp_path / "s.log"
    _journal_study(journal, trials=4)
    lines = journal.read_bytes().splitlines(keepends=True)
    broken = len(lines) - 3  # 0-based: this line loses its end, the next record is glued onto it, one more follows
    merged = lines[broken][: len(lines[broken]) // 2] + lines[broken + 1]
    journal.write_bytes(b"".join(lines[:broken] + [merged] + lines[broken + 2:]))
    for args in (["status"], ["export", STUDY, "--flags", str(tmp_path / "f.yaml")]):
        message = one_error(cli(*args, "--storage", str(journal), cwd=tmp_path))
        assert message.startswith(f"cannot read storage journal:{journal}: line {broken + 1} is not a journal "
                                  "record ("), message


# ---------------------------------------------------------------------------------------------
# 3. an SQLite file with a hot journal (a writer killed inside a transaction)

KILLED_WRITER = r"""
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)  # journal_mode DELETE, SQLite's default
connection.execute("PRAGMA cache_size=1")  # changed pages spill into the file before the commit
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE trial_values SET value = -1")
connection.execute("UPDATE trial_params SET param_value = -1")
print("inside the transaction", flush=True)
time.sleep(600)
"""


def kill_inside_a_transaction(db: Path) -> Path:
    """Run a writer that changes every trial value inside a transaction and SIGKILL it before COMMIT."""
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "inside the transaction"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    journal = db.with_name(db.name + "-journal")
    assert journal.stat().st_size > 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?immutable=1", uri=True)) as raw:  # the bytes on disk
        assert {row[0] for row in raw.execute("SELECT value FROM trial_values")} == {-1.0}
    return journal


def test_readers_name_a_hot_journal_and_change_nothing(tmp_path, study_db):
    journal = kill_inside_a_transaction(study_db)
    before = (sha(study_db), sha(journal))
    expected = (f"storage sqlite:///{study_db} has a hot journal {journal} left by a writer killed inside a "
                "transaction: any writing command (resume) rolls it back")
    for args in (["status"], ["export", STUDY, "--flags", str(tmp_path / "f.yaml")], ["campaign", "status", "oldcamp"],
                 ["campaign", "export", "oldcamp", "--out", str(tmp_path / "flags")]):
        assert one_error(cli(*args, "--storage", str(study_db), cwd=tmp_path)) == expected, args
    assert (sha(study_db), sha(journal)) == before and not (tmp_path / "f.yaml").exists()


def test_resume_rolls_a_hot_journal_back_and_the_study_is_intact(tmp_path, study_db, data_root, text_root,
                                                                 checkpoint_root, cache_dir):
    with contextlib.closing(sqlite3.connect(study_db)) as connection:
        values = sorted(row[0] for row in connection.execute("SELECT value FROM trial_values"))
    journal = kill_inside_a_transaction(study_db)
    result = cli("resume", STUDY, "--trials", "4", "--storage", str(study_db), "--no-progress", "--data-root",
                 str(data_root), "--text-root", str(text_root), "--checkpoint-root", str(checkpoint_root),
                 "--cache-dir", str(cache_dir), "--device", "cpu", "--threads", "1", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"rolled back the transaction a writer killed inside it left unfinished (hot journal {journal})" \
        in result.stderr
    assert f"validation MRR {BEST}" in result.stdout
    assert not journal.exists()
    with contextlib.closing(sqlite3.connect(study_db)) as connection:
        assert sorted(row[0] for row in connection.execute("SELECT value FROM trial_values")) == values
    status = cli("status", "--storage", str(study_db), cwd=tmp_path)
    assert status.returncode == 0 and BEST in status.stdout, status.stderr


# ---------------------------------------------------------------------------------------------
# 4. '#' and '%HH' in a storage path

COPY = r"""
import sys
import optuna
from search.storage import open_storage
target = open_storage(sys.argv[2])  # the writing path: launch and resume open it so
for name in ("Metafam:Metafam/fixed", "Metafam:Metafam/learnable"):
    optuna.copy_study(from_study_name=name, from_storage=open_storage(sys.argv[1], read_only=True), to_storage=target)
"""


@pytest.mark.parametrize("given, name", [
    ("{tmp}/exp#2%41 x/s.db", "exp#2%41 x"),  # a path: taken as it is written
    ("sqlite:///{quoted}/s.db", "exp#2%41 x"),  # the URL of that path (the one status prints)
    ("sqlite:///exp#2/s.db", "exp#2"),  # the input, relative to the working folder
    ("exp#2/s.db", "exp#2"),
    ("sqlite:///{tmp}/exp#2%41 x/s.db", "exp#2A x"),  # in a URL %41 is 'A', as SQLAlchemy and Optuna read it
])
def test_a_storage_path_with_hash_and_percent_is_one_file_for_every_command(tmp_path, given, name):
    import sqlalchemy.engine

    text = given.format(tmp=tmp_path, quoted=quote(str(tmp_path / "exp#2%41 x")))
    folder = tmp_path / name
    url = StorageURL.parse(text, base=tmp_path)
    assert url.path == folder / "s.db"
    assert sqlalchemy.engine.make_url(url.url).database == str(url.path)  # what Optuna opens is that file too
    source = write_old_studies(tmp_path.parent / f"{tmp_path.name}-source" / "old.db")
    writer = python(COPY, str(source), text, cwd=tmp_path)
    assert writer.returncode == 0, writer.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no stray file ('./exp', 'exp#2A x')
    assert sorted(p.name for p in folder.iterdir()) == ["s.db", "s.db.lock"]

    status = cli("status", "--json", "--storage", text, cwd=tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    state = json.loads(status.stdout)
    assert state["state"] == "ready" and [s["study"] for s in state["studies"]] == [
        "Metafam:Metafam/fixed", "Metafam:Metafam/learnable"]
    assert StorageURL.parse(state["storage"]).path == folder / "s.db"  # the URL it prints names the same file
    export = cli("export", STUDY, "--flags", str(tmp_path / "flags.yaml"), "--storage", text, cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-3000:]
    again = cli("status", "--storage", state["storage"], cwd=tmp_path)  # the printed URL, given back
    assert again.returncode == 0 and CANONICAL in again.stdout, again.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "flags.yaml"])
    assert sorted(p.name for p in folder.iterdir()) == ["s.db", "s.db.lock"]


# ---------------------------------------------------------------------------------------------
# 5. a password holding an unescaped '@'

SECRETS = ["p@ss", "@ss", "ss:w0rd", "w0rd", "p%40ss"]


@pytest.mark.parametrize("text, shown", [
    ("postgresql://are:p@ss:w0rd@127.0.0.1:1/db", "postgresql://***@127.0.0.1:1/db"),
    ("postgresql://are:p@ss@db.example/are", "postgresql://***@db.example/are"),
    ("mysql+pymysql://are@p@ss:w0rd@10.0.0.7:3306/are", "mysql+pymysql://***@10.0.0.7:3306/are"),
])
def test_an_unescaped_at_in_the_credentials_is_refused_without_showing_any_of_them(text, shown):
    with pytest.raises(StorageError) as info:
        StorageURL.parse(text)
    message = str(info.value)
    assert message.startswith(f"bad storage URL {shown!r}: ") and "percent-encode" in message and "%40" in message
    assert not [secret for secret in SECRETS if secret in message], message
    assert StorageURL("server", text).safe == shown  # the mask alone, whatever parser would come after it


def test_a_percent_encoded_password_opens_and_is_never_shown():
    url = StorageURL.parse("postgresql://are:p%40ss:w0rd@127.0.0.1:1/db")  # '@' encoded: a valid URL
    assert url.url == "postgresql://are:p%40ss:w0rd@127.0.0.1:1/db" and url.safe == "postgresql://are:***@127.0.0.1:1/db"
    with pytest.raises(StorageError) as info:  # no server there (or no driver): one line, nothing of the password
        open_storage(url, read_only=True)
    assert not [secret for secret in SECRETS if secret in str(info.value)], str(info.value)


def test_credentials_without_a_scheme_and_in_the_query_are_masked_too():
    with pytest.raises(StorageError) as info:
        StorageURL.parse("are:p@ss:w0rd@127.0.0.1/db")  # the scheme forgotten
    assert str(info.value).startswith("bad storage URL '***@127.0.0.1/db': ")
    url = StorageURL.parse("postgresql://are@127.0.0.1/db?password=w0rd&sslmode=require")
    assert url.safe == "postgresql://are@127.0.0.1/db?password=***&sslmode=require"


def test_status_with_an_unescaped_at_in_the_password_shows_none_of_it(tmp_path):
    result = cli("status", "--storage", "postgresql://are:p@ss:w0rd@127.0.0.1:1/db", cwd=tmp_path)
    message = one_error(result)
    assert "percent-encode" in message
    assert not [secret for secret in SECRETS if secret in result.stdout + result.stderr], result.stderr


# ---------------------------------------------------------------------------------------------
# 6. a full disk under the storage

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 512 KiB tmpfs mounted in the test's folder (needs root: skipped where mount is not permitted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill it (mount: {mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    info = os.statvfs(folder)
    free = info.f_bavail * info.f_frsize
    with open(folder / "filler", "ab", buffering=0) as handle:
        try:
            handle.write(b"\0" * max(0, free - leave))
        except OSError as exc:  # the file system counted a little differently: full is full
            assert exc.errno == errno.ENOSPC and leave == 0, exc


PROBE = r"""
import sys
from search.errors import StorageError
from search.storage import create_or_load_study, open_storage
from search.study.names import StudyName
try:
    storage = open_storage(sys.argv[1])
except StorageError:
    print("schema"); raise SystemExit
try:
    create_or_load_study(storage, StudyName.parse("metafam/fixed"))
except StorageError:
    print("study"); raise SystemExit
print("ok")
"""


def _schema_only_size(tmp_path: Path) -> int:
    """The size of an SQLite file holding Optuna's schema only (what a launch writes first)."""
    path = tmp_path / "schema" / "s.db"
    done = python("import sys\nfrom search.storage import open_storage\nopen_storage(sys.argv[1])", str(path),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return path.stat().st_size


def _room_for_the_schema_only(disk: Path, tmp_path: Path) -> None:
    """Fill ``disk`` so that the schema can be written there but not the study (found by probing)."""
    schema = _schema_only_size(tmp_path)
    for pages in range(0, 16):
        for path in disk.iterdir():
            path.unlink()
        fill(disk, schema + pages * PAGE)
        probe = python(PROBE, str(disk / "s.db"), cwd=tmp_path)
        assert probe.returncode == 0, probe.stderr[-2000:]
        if probe.stdout.strip() == "study":
            for path in disk.iterdir():
                if path.name != "filler":
                    path.unlink()
            return
        if probe.stdout.strip() == "ok":
            break
    pytest.fail("no free space found where the schema fits but the study does not")


@pytest.mark.parametrize("stage", ["schema", "study", "journal"])
def test_a_launch_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small_disk, stage, data_root, text_root,
                                                                checkpoint_root, cache_dir):
    """schema: no room for Optuna's tables; study: the tables fit, the study does not (a 115-line traceback
    and exit 1 before); journal: a journal storage with no room left."""
    if stage == "study":
        _room_for_the_schema_only(small_disk, tmp_path)
    else:
        fill(small_disk, PAGE if stage == "schema" else 0)
    storage = f"journal:{small_disk / 's.log'}" if stage == "journal" else str(small_disk / "s.db")
    result = cli("launch", "--dataset", "metafam", "--checkpoint", "fusion", "--trials", "2", "--storage", storage,
                 "-q", "--data-root", str(data_root), "--text-root", str(text_root), "--checkpoint-root",
                 str(checkpoint_root), "--cache-dir", str(cache_dir), "--device", "cpu", "--threads", "1",
                 cwd=tmp_path, timeout=600)
    message = one_error(result)
    shown = StorageURL.parse(storage).safe
    reason = "No space left on device" if stage == "journal" else "database or disk is full"
    assert message == f"cannot write storage {shown}: {reason}"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no schema-only file, no lock


def test_a_full_disk_during_a_run_is_one_line_naming_the_storage(tmp_path, small_disk):
    """Trials written once the disk is full: StorageError naming the storage (Optuna said 'invalid data')."""
    path = small_disk / "s.db"
    storage = open_storage(path)
    study, _ = create_or_load_study(storage, StudyName.parse(STUDY))
    fill(small_disk, 0)
    with pytest.raises(StorageError, match=rf"^cannot write storage sqlite:///{path}: database or disk is full$"):
        for i in range(200):
            study.add_trial(create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                         value=0.1, user_attrs={"pad": "x" * 2000, "i": i}))
    assert [t.state for t in study.get_trials()].count(TrialState.COMPLETE) < 200


# ---------------------------------------------------------------------------------------------
# Resume after the dataset's files changed

def test_a_study_refuses_to_continue_on_changed_raw_files_and_old_studies_still_open(tmp_path, data_root, text_root,
                                                                                    checkpoint_root, cache_dir):
    """Metafam's files copied into a data root of the test's own; a study launched on them, then the
    validation file cut in half (whole lines kept): ``resume`` and a second ``launch`` are refused with one
    line naming the dataset and the file, exit 2, and no trial runs (before: resume scored (0, 2.0) on the
    half file next to trials measured on the whole one). A study without the record (made before it existed)
    still resumes, and from then on carries it."""
    import shutil

    import search
    from search.options import LoadOptions
    from search.study.prepare import DATA_FILES_KEY, LAUNCH_ATTR

    root = tmp_path / "data"
    shutil.copytree(data_root / "Metafam", root / "Metafam")
    valid = root / "Metafam" / "Metafam" / "raw" / "transductive_valid.txt"
    options = LoadOptions(data_root=str(root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                          cache_dir=str(cache_dir), device="cpu", threads=1)
    url = f"sqlite:///{tmp_path / 's.db'}"
    search.launch(dataset="Metafam", checkpoint="fusion", trials=1, pruner="none", storage=url, options=options)
    study = optuna.load_study(study_name=CANONICAL, storage=url)
    record = study.user_attrs[LAUNCH_ATTR][DATA_FILES_KEY]
    assert record["dataset"] == "Metafam:Metafam" and record["files"]["transductive_valid.txt"] == sha(valid)
    assert set(record["files"]) == {"transductive_train.txt", "inference_graph.txt", "transductive_valid.txt",
                                    "inf_test.txt"}  # the files the loader reads, not every file in the folder
    whole = sha(valid)
    lines = valid.read_text().splitlines(keepends=True)
    valid.write_text("".join(lines[:len(lines) // 2]))
    inputs = ["--data-root", str(root), "--text-root", str(text_root), "--checkpoint-root", str(checkpoint_root),
              "--cache-dir", str(cache_dir), "--device", "cpu", "--threads", "1", "--no-progress"]
    expected = (f"study {CANONICAL} was run on other raw files of Metafam:Metafam: transductive_valid.txt changed "
                f"(sha256 {whole[:12]}..., now {sha(valid)[:12]}...); its trial values would not be comparable: "
                "restore the files, or use another --storage")
    assert one_error(cli("resume", STUDY, "--trials", "2", "--storage", url, *inputs, cwd=tmp_path,
                         timeout=600)) == expected
    assert one_error(cli("launch", "--dataset", "Metafam", "--checkpoint", "fusion", "--trials", "2", "--storage", url,
                         *inputs, cwd=tmp_path, timeout=600)) == expected
    states = [t.state for t in optuna.load_study(study_name=CANONICAL, storage=url).trials]
    assert states.count(TrialState.COMPLETE) == 1 and TrialState.RUNNING not in states  # nothing ran on the cut file
    # a study made before the record existed: opens, runs, and records the files it now runs on
    study.set_user_attr(LAUNCH_ATTR, {k: v for k, v in study.user_attrs[LAUNCH_ATTR].items() if k != DATA_FILES_KEY})
    resumed = search.resume(STUDY, trials=2, storage=url, options=options)
    assert resumed.trials_added == 1
    stored = optuna.load_study(study_name=CANONICAL, storage=url).user_attrs[LAUNCH_ATTR][DATA_FILES_KEY]
    assert stored["files"]["transductive_valid.txt"] == sha(valid)


def test_a_campaign_member_refuses_to_continue_on_changed_raw_files(tmp_path, data_root, text_root, checkpoint_root,
                                                                   cache_dir):
    """The same fault through a campaign: each member study records its own dataset's raw files; after Metafam's
    validation file is cut in half, ``campaign resume`` is refused with the same one line before any trial runs."""
    import shutil

    import search.campaign as campaign
    from search.errors import StudyError

    root = tmp_path / "data"
    shutil.copytree(data_root / "Metafam", root / "Metafam")
    valid = root / "Metafam" / "Metafam" / "raw" / "transductive_valid.txt"
    inputs = dict(data_root=str(root), text_root=str(text_root), checkpoint_root=str(checkpoint_root),
                  cache_dir=str(cache_dir), device="cpu", threads=1)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    campaign.launch(name="d", datasets="Metafam", checkpoint="fusion", trials=1, pruner="none", storage=storage,
                    **inputs)
    whole = sha(valid)
    lines = valid.read_text().splitlines(keepends=True)
    valid.write_text("".join(lines[:len(lines) // 2]))
    with pytest.raises(StudyError) as info:
        campaign.resume("d", trials=2, storage=storage, **inputs)
    assert str(info.value) == (
        f"study {CANONICAL} was run on other raw files of Metafam:Metafam: transductive_valid.txt changed (sha256 "
        f"{whole[:12]}..., now {sha(valid)[:12]}...); its trial values would not be comparable: restore the files, "
        "or use another --storage")
    states = [t.state for t in optuna.load_study(study_name=CANONICAL, storage=storage).trials]
    assert states.count(TrialState.COMPLETE) == 1 and TrialState.RUNNING not in states
