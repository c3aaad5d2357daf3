"""Shared fixtures: the real datasets, relation texts and checkpoints.

This file is the tests' edge: the only place in the suite's library-facing code that reads the
environment. The roots come from ARE_DATA_ROOT, ARE_TEXT_ROOT and ARE_CHECKPOINT_ROOT (set by `.ci/run`
and the Makefile) and are passed to the library as arguments.

Skips are only for a root that was not given at all (the variable is unset), and never in CI
(environment CI=true), where every root must be given. A root that is given but lacks what a test
needs is a failure, not a skip: see `require_dataset`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: The manifest of the files the project ships under the data root (`sha256sum -c` format).
MANIFEST = "SHA256SUMS"


def in_ci() -> bool:
    """Whether the suite runs in CI (CI=true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _root(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        message = f"{var} is not set: point it at the real files (see README)"
        if in_ci():
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{var}={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def ci() -> bool:
    """True in CI (CI=true): nothing may be skipped for want of files there."""
    return in_ci()


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _root("ARE_DATA_ROOT")


@pytest.fixture(scope="session")
def text_root() -> Path:
    return _root("ARE_TEXT_ROOT")


@pytest.fixture(scope="session")
def checkpoint_root() -> Path:
    return _root("ARE_CHECKPOINT_ROOT")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One processed-data cache for the whole session, so each dataset is parsed once."""
    return tmp_path_factory.mktemp("are-cache")


def shipped_files(data_root: Path) -> set[str]:
    """Paths (relative to the data root, '/'-separated) that the root's manifest lists; empty without one."""
    manifest = data_root / MANIFEST
    if not manifest.is_file():
        return set()
    files = set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            files.add(parts[1].lstrip("*").strip())
    return files


@pytest.fixture(scope="session")
def shipped(data_root: Path) -> set[str]:
    """The files this project ships under the data root (from its SHA256SUMS)."""
    return shipped_files(data_root)


@pytest.fixture(scope="session")
def require_dataset(data_root: Path, shipped: set[str]) -> Callable[[str], Path]:
    """``require_dataset(name)``: the dataset's raw folder under the data root.

    A missing folder fails the test in CI and when the dataset is one the project ships (listed in the
    root's SHA256SUMS); only a dataset that a user's own data root does not claim to hold is skipped.
    """
    from are_model.data import get_spec

    def require(name: str) -> Path:
        spec = get_spec(name)
        raw_dir = spec.raw_dir(data_root)
        relative = raw_dir.relative_to(data_root).as_posix()
        listed = sorted(f for f in shipped if f.startswith(relative + "/"))
        missing = [f for f in listed if not (data_root / f).is_file()]
        if raw_dir.is_dir() and not missing:
            return raw_dir
        what = (f"{name}: {len(missing)} shipped file(s) missing under {data_root}, e.g. {missing[0]}" if missing
                else f"{name} is not under {data_root} ({raw_dir} is missing)")
        if in_ci() or listed:
            pytest.fail(what)
        pytest.skip(what)

    return require


@pytest.fixture(scope="session")
def fusion_path(checkpoint_root: Path) -> Path:
    """The are-fusion checkpoint every search test uses."""
    return checkpoint_root / "fusion.pth"


@pytest.fixture(scope="module")
def nell_context(data_root: Path, text_root: Path, cache_dir: Path, fusion_path: Path):
    """The warm search context of fusion.pth on NELLInductive:v1 (MiniLM texts), shared by the engine tests:
    taken from the process's registry (:func:`search.objectives.context.get_context`) when a module starts, as a run does."""
    from are_model.pipeline import TextOptions
    from search.objectives.context import get_context

    text = TextOptions(root=str(text_root), cache_dir=str(cache_dir), download=False)
    return get_context("NELLInductive:v1", fusion_path, data_root=data_root, text=text, cache_dir=cache_dir)
