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
