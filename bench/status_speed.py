"""``are-search status`` against ``optuna studies`` on the same storage: wall time of each, interleaved.

Runs the two commands alternately ``--repeats`` times (fresh processes, as a user runs them) on one SQLite
storage (default: the 0.2.0 studies rebuilt from ``tests/fixtures/studies-0.2.0.sql``) and prints one JSON line with the best and
the median seconds of each and their ratio, then a table on stderr::

    python bench/status_speed.py [--storage FILE.db] [--repeats 5]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, help="an SQLite study file (default: the 0.2.0 fixture)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / "studies.db"
        if args.storage:
            shutil.copyfile(args.storage, storage)
        else:
            with contextlib.closing(sqlite3.connect(storage)) as connection:
                connection.executescript((REPO / "tests" / "fixtures" / "studies-0.2.0.sql").read_text(encoding="utf-8"))
        url = f"sqlite:///{storage}"
        bin_dir = Path(sys.executable).parent
        ours = [sys.executable, "-m", "search", "status", "--storage", url]
        theirs = [str(bin_dir / "optuna"), "studies", "--storage", url]
        _time(ours), _time(theirs)  # warm the file cache once
        times: dict[str, list[float]] = {"are_search_status": [], "optuna_studies": []}
        for _ in range(args.repeats):
            times["are_search_status"].append(_time(ours))
            times["optuna_studies"].append(_time(theirs))
    result = {name: {"best_s": min(values), "median_s": statistics.median(values)} for name, values in times.items()}
    result["ratio_best"] = result["are_search_status"]["best_s"] / result["optuna_studies"]["best_s"]
    result["ratio_median"] = result["are_search_status"]["median_s"] / result["optuna_studies"]["median_s"]
    result["repeats"] = args.repeats
    print(json.dumps(result))
    for name in ("are_search_status", "optuna_studies"):
        print(f"{name:<20} best {result[name]['best_s']:.2f} s  median {result[name]['median_s']:.2f} s",
              file=sys.stderr)
    print(f"{'ratio':<20} best {result['ratio_best']:.2f}x  median {result['ratio_median']:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
