"""The layering rules, checked on the code itself.

* ``are_model`` is the model core: importing any of its modules loads nothing of the search stack
  (search, Optuna, Ray, YAML readers), and no module of it imports one;
* ``are_model`` reads no environment variable (nor ``$HOME`` through ``~``): every location is an
  argument, resolved at the edge (``search.options``);
* the command line's help works where ``fcntl`` does not exist (Windows): no import-time ``fcntl``.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "are_model"
#: top-level modules of the search stack that are_model must never load
SEARCH_STACK = ("search", "optuna", "ray", "yaml", "ruamel")
#: os attributes that read (or write) the environment
ENV_ATTRIBUTES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
#: calls that read $HOME or other variables to expand a path
EXPANDING_CALLS = {"expanduser", "expandvars", "home"}


def _python(code: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (``args`` in ``sys.argv[1:]``) from the repository root."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20 and PACKAGE / "__init__.py" in files
    return files


# ------------------------------------------------------------------------------------ (a) imports


_IMPORT_EVERYTHING = textwrap.dedent("""\
    import importlib, json, pkgutil, sys, traceback

    FORBIDDEN = set(json.loads(sys.argv[1]))
    requests = []

    class Guard:
        # Every import of a search-stack module fails and is recorded with the file that asked for it.
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in FORBIDDEN:
                frames = [f.filename for f in traceback.extract_stack()[:-1]
                          if not f.filename.startswith("<frozen") and "importlib" not in f.filename]
                requests.append([name, frames[-1] if frames else "?"])
                raise ModuleNotFoundError(f"blocked by the test: {name}", name=name)
            return None

    sys.meta_path.insert(0, Guard())
    import are_model

    modules = sorted(info.name for info in pkgutil.walk_packages(are_model.__path__, "are_model."))
    for name in modules:
        importlib.import_module(name)
    for name in are_model.__all__:  # the lazily exported names too
        getattr(are_model, name)
    loaded = sorted(name for name, module in sys.modules.items()
                    if module is not None and name.partition(".")[0] in FORBIDDEN)
    print(json.dumps({"modules": modules, "loaded": loaded, "requests": requests}))
""")


def test_importing_every_are_model_module_loads_nothing_of_the_search_stack():
    """Each import of a search-stack module is blocked and traced to the file that asked for it.

    Nothing in are_model may ask for any of them. Third-party packages may ask for ``yaml`` alone, in
    imports they treat as optional: numba (for a config file; it comes with torch_geometric and the CPU
    kernel) and, when ``transformers`` is installed, torch_geometric's LLM helpers through the Hugging Face
    hub. Blocked, those imports fail harmlessly, and every are_model module still imports."""
    result = _python(_IMPORT_EVERYTHING, json.dumps(SEARCH_STACK))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"are_model.kernels", "are_model.pipeline", "are_model.data.download", "are_model.text.extras",
            "are_model.checkpoint"} <= set(report["modules"])                     # the walk is not vacuous
    assert report["loaded"] == []
    ours = (str(PACKAGE) + os.sep, str(REPO / "search") + os.sep)
    unexpected = [(name, where) for name, where in report["requests"]
                  if name.partition(".")[0] != "yaml" or where.startswith(ours)]
    assert unexpected == []


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_are_model_source_imports_the_search_stack():
    """Also function-level and guarded imports, which an import-time check cannot see."""
    offences = [f"{path.relative_to(REPO)}:{line}: import {name}"
                for path in _sources()
                for line, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
                if name.partition(".")[0] in SEARCH_STACK]
    assert offences == []


# ------------------------------------------------------------------------------------ (b) no fcntl


@pytest.mark.parametrize("argv", [["--help"], ["launch", "--help"]], ids=["search", "launch"])
def test_command_line_help_works_without_fcntl(argv):
    """``python -m search ...`` where ``fcntl`` cannot be imported (as on Windows)."""
    code = textwrap.dedent(f"""\
        import runpy, sys
        sys.modules["fcntl"] = None
        sys.argv = ["search", *{argv!r}]
        runpy.run_module("search", run_name="__main__", alter_sys=True)
    """)
    result = _python(code)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.lstrip().startswith("usage:")
    if argv[0] == "launch":
        assert "launch" in result.stdout.splitlines()[0]


# ------------------------------------------------------------------------------------ (c) no environment


def _environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for every use of os.environ / os.getenv & co., and of ~ / $VAR expansion."""
    tree = ast.parse(source)
    os_names = {"os"}
    for node in ast.walk(tree):  # `import os as something`
        if isinstance(node, ast.Import):
            os_names |= {alias.asname for alias in node.names if alias.name == "os" and alias.asname}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "os.path"):
            found += [(node.lineno, f"from {node.module} import {alias.name}") for alias in node.names
                      if alias.name in ENV_ATTRIBUTES | EXPANDING_CALLS or alias.name == "*"]
        elif isinstance(node, ast.Attribute):
            if node.attr in ENV_ATTRIBUTES and isinstance(node.value, ast.Name) and node.value.id in os_names:
                found.append((node.lineno, f"{node.value.id}.{node.attr}"))
            elif node.attr in EXPANDING_CALLS:
                found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Name) and node.id in ENV_ATTRIBUTES - {"environ"} | {"expanduser", "expandvars"}:
            found.append((node.lineno, node.id))
    return sorted(set(found))


def test_the_environment_check_sees_what_it_looks_for():
    sample = textwrap.dedent("""\
        import os
        import os as o
        from os import getenv
        from pathlib import Path
        a = os.environ.get("ARE_DATA_ROOT")
        b = o.getenv("X")
        c = Path("~/x").expanduser()
        d = Path.home()
        e = os.path.expanduser("~")
        f = getenv("Y")
        os.environ["Z"] = "1"
        ok = os.fspath("x"), os.path.join("a", "b")
    """)
    assert [line for line, _ in _environment_reads(sample)] == [3, 5, 6, 7, 8, 9, 10, 11]


def test_no_are_model_module_reads_the_environment():
    offences = [f"{path.relative_to(REPO)}:{line}: {what}"
                for path in _sources()
                for line, what in _environment_reads(path.read_text(encoding="utf-8"))]
    assert offences == []


# ------------------------------------------------------------------------------------ (d) search/ layering
#
# search/ is read as a graph of modules: an edge for every import of another search module, at module level or
# inside a function (only imports under ``if TYPE_CHECKING:`` do not count: they never run). Three rules:
# no cycle between modules, no import of another module's private (``_name``) names, and no Optuna internal
# (a private module such as ``optuna.storages._rdb``, a private name, or a private attribute such as
# ``study._storage``) outside the one compatibility module, :mod:`search.compat`.

SEARCH = REPO / "search"
#: the one module allowed to use Optuna's internals
COMPAT_MODULE = "search.compat"
#: private attributes of the standard library that are its documented API
DOCUMENTED_PRIVATE = {"_exit"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _search_sources(root: Path = SEARCH) -> dict[str, tuple[str, bool]]:
    """``{module: (source, is_package)}`` of every module under ``root`` (a package named like its folder)."""
    return {_module_name(path, root.parent): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
            for path in sorted(root.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                lines |= {sub.lineno for sub in ast.walk(statement) if hasattr(sub, "lineno")}
    return lines


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(sources: dict[str, tuple[str, bool]]) -> list[tuple[str, int, str, str | None]]:
    """``(module, line, imported module, imported name or None)`` for every import that runs.

    ``from package import name`` is an import of the module ``package.name`` when that is a module of
    ``sources``, else of ``package`` (with the name)."""
    found = []
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source)
        skipped = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            if isinstance(node, ast.Import):
                found += [(module, node.lineno, alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_package, node)
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    found.append((module, node.lineno, submodule, None) if submodule in sources
                                 else (module, node.lineno, target, alias.name))
    return found


def _cycles(sources: dict[str, tuple[str, bool]]) -> list[list[str]]:
    """The import cycles among ``sources``: each strongly connected component of more than one module."""
    graph: dict[str, set[str]] = {module: set() for module in sources}
    for module, _, target, _ in _imports(sources):
        if target in graph and target != module:
            graph[module].add(target)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return cycles


def _private_imports(sources: dict[str, tuple[str, bool]]) -> list[str]:
    return [f"{module}:{line}: from {target} import {name}" for module, line, target, name in _imports(sources)
            if name and target in sources and target != module and name.startswith("_") and not name.startswith("__")]


def _optuna_internals(sources: dict[str, tuple[str, bool]], allowed: str = COMPAT_MODULE) -> list[str]:
    found = []
    for module, (source, _) in sources.items():
        if module == allowed:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names]
                targets = names if isinstance(node, ast.Import) else [node.module or ""]
                for target in targets:
                    if target.partition(".")[0] != "optuna":
                        continue
                    private_path = any(part.startswith("_") for part in target.split("."))
                    private_name = isinstance(node, ast.ImportFrom) and any(n.startswith("_") for n in names)
                    if private_path or private_name:
                        found.append(f"{module}:{node.lineno}: import of {target}")
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and node.attr not in DOCUMENTED_PRIVATE
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{module}:{node.lineno}: .{node.attr}")
    return found


def _planted(files: dict[str, str]) -> dict[str, tuple[str, bool]]:
    return {name.removesuffix(".__init__"): (textwrap.dedent(text), name.endswith("__init__"))
            for name, text in files.items()}


def test_the_layering_checks_see_what_they_look_for():
    """Each rule fails on a planted example, and passes once it is fixed."""
    cyclic = _planted({
        "pkg.__init__": "",
        "pkg.a": "from pkg.b import run\n",
        "pkg.b": "def run():\n    from pkg import a  # a function-local import is an edge too\n",
        "pkg.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n",
    })
    assert _cycles(cyclic) == [["pkg.a", "pkg.b"]]
    assert _cycles({**cyclic, "pkg.b": ("def run():\n    pass\n", False)}) == []
    assert _cycles(_planted({"pkg.__init__": "from pkg import a\n", "pkg.a": "from pkg.b import x\n",
                             "pkg.b": "import pkg.a\n"})) == [["pkg.a", "pkg.b"]]

    private = _planted({"pkg.__init__": "", "pkg.a": "_hidden = 1\n",
                        "pkg.b": "from pkg.a import _hidden, __doc__\nfrom .a import _hidden as h\n"})
    assert _private_imports(private) == ["pkg.b:1: from pkg.a import _hidden", "pkg.b:2: from pkg.a import _hidden"]

    internal = _planted({
        "search.compat": "from optuna.storages._heartbeat import is_heartbeat_enabled\n",
        "search.x": "import optuna.storages._rdb.models\nfrom optuna.storages import _CachedStorage\n"
                    "def f(study, trial):\n    return study._storage, trial._trial_id, self._own, os._exit\n",
        "search.y": "import optuna\nfrom optuna.trial import TrialState\n",
    })
    assert _optuna_internals(internal) == [
        "search.x:1: import of optuna.storages._rdb.models", "search.x:2: import of optuna.storages",
        "search.x:4: ._storage", "search.x:4: ._trial_id"]


def test_search_has_no_import_cycle():
    sources = _search_sources()
    assert {"search.api", "search.cli", "search.runners.step", "search.storage"} <= set(sources)  # not vacuous
    assert _cycles(sources) == []


def test_no_search_module_imports_another_modules_private_names():
    assert _private_imports(_search_sources()) == []


def test_optuna_internals_are_used_only_in_the_compatibility_module():
    sources = _search_sources()
    assert COMPAT_MODULE in sources
    assert _optuna_internals(sources) == []


def test_search_writes_no_environment_and_reads_it_only_at_the_edge():
    """``search.options`` is the one module that reads the environment, ``search.values.path`` the one rule
    that expands ``~`` in a path that enters; no module writes the environment."""
    reads = {module: _environment_reads(source) for module, (source, _) in _search_sources().items()}
    offences = [f"{module}:{line}: {what}" for module, found in reads.items() for line, what in found
                if module != "search.options" and not (module == "search.values" and what == ".expanduser")]
    assert offences == []


def test_no_search_module_shadows_a_public_api_name():
    """``search.report(...)`` stays the API function after every module is imported: a subpackage named like a
    public function (``search/report/``) would replace the attribute once imported."""
    code = textwrap.dedent("""\
        import importlib, inspect, json, pkgutil
        import search, search.campaign
        for info in pkgutil.walk_packages(search.__path__, "search."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
        names = {"search": search.__all__, "search.campaign": search.campaign.__all__}
        print(json.dumps({where: {name: inspect.isfunction(getattr(importlib.import_module(where), name))
                                  for name in listed if name != "__version__"} for where, listed in names.items()}))
    """)
    result = _python(code)
    assert result.returncode == 0, result.stderr[-4000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["search"] == dict.fromkeys(("launch", "resume", "export", "status", "report"), True)
    assert found["search.campaign"] == dict.fromkeys(("launch", "resume", "status", "report", "export"), True)
    modules = {path.stem for path in SEARCH.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    assert not modules & {"launch", "resume", "export", "status", "report"}


# ------------------------------------------------------------------------------------ (e) reading commands
_WITHOUT_TORCH = textwrap.dedent("""\
    import runpy, sys

    class Guard:  # any import of torch or PyG fails, and says who asked
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "torch_geometric", "ray"):
                raise ImportError(f"blocked by the test: {name}")
            return None

    sys.meta_path.insert(0, Guard())
    sys.argv = ["are-search", *sys.argv[1:]]
    runpy.run_module("search", run_name="__main__", alter_sys=True)
""")


@pytest.mark.parametrize("argv", [
    ["status"], ["status", "--json"], ["datasets", "--json"], ["export", "Metafam/fixed", "--flags", "{tmp}/flags.yaml"],
    ["export", "--all", "{tmp}/flags"], ["campaign", "status", "oldcamp"], ["campaign", "export", "oldcamp", "--out",
                                                                             "{tmp}/campaign"],
    ["--version"], ["launch", "--help"]], ids=lambda argv: " ".join(argv[:2]))
def test_reading_commands_import_neither_torch_nor_pyg(argv, tmp_path):
    """``status``, ``datasets``, ``export``, ``campaign status|export``, ``--help`` and ``--version`` read a storage
    and the registry only: they run where torch, PyG and Ray cannot even be imported (a study written by 0.2.0)."""
    from oldstudies import write_old_studies

    storage = write_old_studies(tmp_path / "studies.db")
    args = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    if args[0] in ("status", "export") or args[:1] == ["campaign"]:
        args += ["--storage", str(storage)]
    result = _python(_WITHOUT_TORCH, *args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "blocked by the test" not in result.stderr
    assert result.stdout.strip()
