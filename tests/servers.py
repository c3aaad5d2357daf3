"""Real servers for the tests: a PostgreSQL server and a two-node Ray cluster, both on localhost; and
``are-search`` run as a user runs it (:class:`Cli`), with :func:`wait_for` to watch it.

Each is started from the installed binaries into its own short temporary folder and stopped whatever
happens: by the pytest fixture's finalizer and, should the interpreter leave without it, by ``atexit``.
Stopping kills only the processes this module started (found by their folder in their command line,
and their descendants); it never kills processes by name, so other Ray clusters or PostgreSQL servers
on the machine are left alone (``ray stop --force`` would stop every Ray process of the machine).

PostgreSQL is what Debian's ``postgresql`` package installs (``/usr/lib/postgresql/<version>/bin``).
It refuses to run as root, so as root the server runs as the ``postgres`` user (``runuser``). A machine
without it skips the tests that need it with one line saying how to install it; in CI (CI=true) a
missing server is a failure, never a skip (``.ci/run`` installs it).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import in_ci

__all__ = ["INSTALL_POSTGRES", "Cli", "PostgresServer", "RayCluster", "cli", "free_port", "kill_tree",
           "postgres_bin_dir", "postgres_server", "processes_under", "ray_cluster", "require_postgres", "wait_for"]

#: The one line a skipped PostgreSQL test prints.
INSTALL_POSTGRES = ("PostgreSQL is not installed: apt-get install postgresql (Debian/Ubuntu; .ci/run does it), "
                    "or put initdb and pg_ctl on PATH")
#: Seconds to wait for a server or a node to come up.
START_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _short_temp_dir(prefix: str) -> Path:
    """A new folder directly under /tmp: Unix socket paths (PostgreSQL's, Ray's) must stay under 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))


# ---------------------------------------------------------------------------------------------
# processes


def processes_under(marker: str) -> list[int]:
    """Pids of the live processes whose command line contains ``marker``, and of their descendants."""
    import psutil

    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.pid != me and marker in " ".join(process.info["cmdline"] or []):
                found[process.pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        except psutil.Error:
            continue
    return sorted(pid for pid in found if pid != me)


def kill_tree(pids: list[int]) -> list[int]:
    """SIGKILL each pid (those already gone are skipped); returns the pids signalled."""
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return killed


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: PATH first, then the newest /usr/lib/postgresql/<v>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(part) if part.isdigit() else part for part in p.parent.parent.name.split(".")])
    for initdb_path in reversed(versions):
        if (initdb_path.parent / "pg_ctl").is_file():
            return initdb_path.parent
    return None


def require_postgres() -> Path:
    """The PostgreSQL binaries and a driver, or skip (fail with CI=true) with one line on how to install them."""
    bin_dir = postgres_bin_dir()
    problem = None if bin_dir is not None else INSTALL_POSTGRES
    if problem is None:
        try:
            import psycopg  # noqa: F401  (SQLAlchemy's default postgresql:// driver since 2.1)
        except ImportError:
            problem = "the PostgreSQL driver is missing: pip install -e '.[postgres]'"
    if problem is not None:
        if in_ci():
            pytest.fail(f"CI=true: {problem}")
        pytest.skip(problem)
    return bin_dir


class PostgresServer:
    """A throw-away PostgreSQL server on 127.0.0.1:``port``, data and socket in one temporary folder.

    ``user`` / ``password`` log in over TCP with scram-sha-256; :meth:`database` creates a database and
    returns its URL (``postgresql://user:password@127.0.0.1:port/name``). :meth:`stop` is idempotent.
    """

    def __init__(self, bin_dir: Path, *, user: str = "are", password: str | None = None) -> None:
        self.bin_dir = bin_dir
        self.user = user
        self.password = password or "pw-" + secrets.token_hex(12)
        self.port = free_port()
        self.root = _short_temp_dir("are-pg-")
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._runas: list[str] = []
        self._started = False

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        result = subprocess.run([*self._runas, *args], capture_output=True, text=True, timeout=timeout,
                                env=dict(os.environ, LC_ALL="C", LANG="C"))
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        return result

    def start(self) -> "PostgresServer":
        """initdb + pg_ctl start (waits until it accepts connections); stopped at exit whatever happens."""
        atexit.register(self.stop)
        if os.geteuid() == 0:  # the server refuses to run as root
            account = "postgres"
            try:
                pwd.getpwnam(account)
            except KeyError:
                account = "nobody"
            entry = pwd.getpwnam(account)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._runas = ["runuser", "-u", account, "--"]
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._runas:
            entry = pwd.getpwnam(self._runas[2])
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C",
                  "--no-sync")
        pwfile.unlink()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._started = True
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(START_TIMEOUT_S), "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` (password included: never print it)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self, name: str) -> str:
        """Create the database ``name`` (lower case, no quotes needed) and return its URL."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once (pg_ctl -m immediate, then SIGKILL of what is left) and remove its folder."""
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                subprocess.run([*self._runas, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                "-w", "-t", "30", "stop"], capture_output=True, timeout=60)
            kill_tree(processes_under(str(self.data)))
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Ray


class RayCluster:
    """A Ray cluster of two nodes on this machine: a head and a second node, ``cpus`` CPUs each.

    Each node has its own short temp dir (``node_dirs``), so the processes of one node are those whose
    command line names its dir, and their descendants (:meth:`node_pids`). The cluster uses token
    authentication with a token of its own (``env``: pass it to every process that connects), whatever
    ``~/.ray`` holds. :meth:`stop` kills every process of both nodes and is idempotent.
    """

    def __init__(self, cpus: int = 1) -> None:
        self.cpus = cpus
        self.root = _short_temp_dir("are-ray-")
        self.node_dirs = [self.root / "h", self.root / "n"]
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = self.root / "token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                        RAY_USAGE_STATS_ENABLED="0")
        self.ray = str(Path(sys.executable).with_name("ray"))

    def _start(self, *args: str) -> None:
        result = subprocess.run([self.ray, "start", *args, f"--num-cpus={self.cpus}", "--num-gpus=0",
                                 "--node-ip-address=127.0.0.1", "--disable-usage-stats"],
                                capture_output=True, text=True, timeout=START_TIMEOUT_S, env=self.env)
        if result.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed ({result.returncode}): "
                               f"{(result.stderr or result.stdout).strip()[-2000:]}")

    def start(self) -> "RayCluster":
        """Start the head, then the second node, and wait until the cluster has both (stopped at exit)."""
        atexit.register(self.stop)
        for folder in self.node_dirs:
            folder.mkdir()
        self._start("--head", f"--port={self.port}", f"--temp-dir={self.node_dirs[0]}", "--include-dashboard=false")
        self._start(f"--address={self.address}", f"--temp-dir={self.node_dirs[1]}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.alive_nodes() < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster at {self.address} did not reach 2 nodes")
            time.sleep(0.5)
        return self

    def alive_nodes(self) -> int:
        """How many nodes the head counts as active (``ray status``; the dashboard is off, so no state API)."""
        result = subprocess.run([self.ray, "status", f"--address={self.address}"], capture_output=True, text=True,
                                timeout=60, env=self.env)
        if result.returncode != 0 or "Active:" not in result.stdout:
            return 0
        active = result.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
        return sum(1 for line in active.splitlines() if " node_" in line)

    def node_pids(self, node: int) -> list[int]:
        """Pids of node ``node`` (0: head, 1: the second node): its daemons and their workers."""
        return processes_under(str(self.node_dirs[node]))

    def kill_node(self, node: int) -> list[int]:
        """SIGKILL every process of node ``node``, as a machine that dies; returns the pids killed."""
        return kill_tree(self.node_pids(node))

    def stop(self) -> None:
        """Kill both nodes' processes and remove the temp dirs."""
        for node in (1, 0):
            for _ in range(3):  # a dying raylet may still fork a worker: repeat until none is left
                if not kill_tree(self.node_pids(node)):
                    break
                time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# fixtures (import them into a test module to use them)


@pytest.fixture(scope="module")
def postgres_server(request) -> PostgresServer:
    """A PostgreSQL server for the module's tests (skipped without PostgreSQL, failed in CI); stopped at the end."""
    server = PostgresServer(require_postgres())
    request.addfinalizer(server.stop)
    return server.start()


@pytest.fixture
def ray_cluster(request) -> RayCluster:
    """A fresh two-node Ray cluster on localhost (one CPU per node); every process of it killed at the end."""
    cluster = RayCluster(cpus=1)
    request.addfinalizer(cluster.stop)
    return cluster.start()


# ---------------------------------------------------------------------------------------------
# the command line, as a user runs it


class Cli:
    """Runs ``python -m search`` in ``cwd`` with the real roots, and keeps every stdout / stderr it saw.

    ``outputs`` lets a test check that a secret (a storage password) was never printed.
    """

    def __init__(self, cwd: Path, data_root: Path, text_root: Path, checkpoint_root: Path, cache_dir: Path) -> None:
        self.cwd = cwd
        self.inputs = ["--data-root", str(data_root), "--text-root", str(text_root), "--checkpoint-root",
                       str(checkpoint_root), "--cache-dir", str(cache_dir), "--offline"]
        self.outputs: list[str] = []
        self._files: list[Path] = []
        self._count = 0

    def _command(self, args: tuple[str, ...], inputs: bool) -> list[str]:
        command = [sys.executable, "-m", "search", *args]
        if inputs:
            command += self.inputs
        return command

    def run(self, *args: str, inputs: bool = True, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run one command to its end; stdout and stderr are kept in ``outputs``."""
        done = subprocess.run(self._command(args, inputs), cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ if env is None else env))
        self.outputs += [done.stdout, done.stderr]
        return done

    def start(self, *args: str, prefix: tuple[str, ...] = (), inputs: bool = True,
              env: dict | None = None) -> subprocess.Popen:
        """Start one command in the background (its output goes to files read by :meth:`read_outputs`)."""
        self._count += 1
        out, err = self.cwd / f"cmd{self._count}.out", self.cwd / f"cmd{self._count}.err"
        self._files += [out, err]
        with open(out, "w") as stdout, open(err, "w") as stderr:
            return subprocess.Popen([*prefix, *self._command(args, inputs)], cwd=self.cwd, stdout=stdout,
                                    stderr=stderr, env=dict(os.environ if env is None else env),
                                    start_new_session=True)

    def read_outputs(self) -> list[str]:
        """The outputs of the background commands so far, and of the others."""
        return self.outputs + [path.read_text(errors="replace") for path in self._files if path.exists()]


@pytest.fixture
def cli(tmp_path, data_root, text_root, checkpoint_root, cache_dir) -> Cli:
    """``are-search`` as a subprocess in ``tmp_path`` with the real roots (offline)."""
    return Cli(tmp_path, data_root, text_root, checkpoint_root, cache_dir)


def wait_for(predicate, timeout: float, what: str, *, every: float = 0.2, alive: subprocess.Popen | None = None):
    """Poll ``predicate()`` until it returns something true (returned); AssertionError naming ``what`` after
    ``timeout`` seconds, or as soon as the process ``alive`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the process ended (status {alive.returncode}) before {what}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
