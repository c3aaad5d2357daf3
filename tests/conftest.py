"""Shared fixtures: the real datasets, relation texts and checkpoints.

The roots come from ARE_DATA_ROOT, ARE_TEXT_ROOT and ARE_CHECKPOINT_ROOT (set by `.ci/run` and the
Makefile); a test that needs one of them is skipped with the variable's name when it is unset.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _root(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} is not set: point it at the real files (see README)")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{var}={value} is not a directory")
    return path


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
