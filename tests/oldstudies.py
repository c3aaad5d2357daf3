"""The studies and the campaign written by are-search 0.2.0 (commit 03945a1), kept as SQL text, not a binary file.

``fixtures/studies-0.2.0.sql`` is the ``sqlite3`` dump (``Connection.iterdump``) of the SQLite storage that 0.2.0
wrote from its CLI on the real Metafam files with fusion.pth::

    are-search launch --dataset Metafam --checkpoint fusion --mode fixed --trials 4 --storage old.db
    are-search campaign launch fixtures/studies-0.2.0.yaml --storage old.db

:func:`write_old_studies` turns it back into that storage file, byte for byte the same rows.
"""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

__all__ = ["OLD_STUDIES_SQL", "write_old_studies"]

#: The dump of the 0.2.0 storage.
OLD_STUDIES_SQL = Path(__file__).resolve().parent / "fixtures" / "studies-0.2.0.sql"


def write_old_studies(target: Path) -> Path:
    """Write the 0.2.0 storage to ``target`` (an SQLite file that must not exist yet); returns ``target``."""
    if target.exists():
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(target)) as connection:
        connection.executescript(OLD_STUDIES_SQL.read_text(encoding="utf-8"))
    return target
