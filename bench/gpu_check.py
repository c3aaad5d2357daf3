"""A prepared GPU check: CUDA ranks against CPU ranks, CUDA speed, K settings per entity pass, a 2-worker search.

One command on a machine with CUDA, a few minutes at most, one JSON line on stdout and a table on stderr.
It reads only a bundle folder made by ``bench/gpu_bundle.py`` (raw triples, relation texts, fusion.pth
and precomputed MiniLM text vectors; about 6 MB), so it needs neither ``../shared``, nor the MiniLM
package, nor a network, nor the project installed (it puts the repository root on ``sys.path``).

Steps (each timed; one that fails is recorded as ``{"error": ...}`` and the others still run):

equality
    FB15k237Inductive:v1 test (822 queries) with fusion.pth and its own fusion, ranked on the CPU and on
    ``--device``, both with the same pairs per entity pass (the device's default, 64). ``equal`` is
    True when every rank is identical. Otherwise the differing queries (up to 256) are analysed: their
    score rows are computed again on both devices, and a query is *tie-sensitive* when
    (1) the largest score difference of its row, δ = max_e |s_cpu(e) − s_dev(e)|, is within float
        tolerance: δ ≤ SCORE_ATOL + SCORE_RTOL · max_e |s_cpu(e)| (1e-5 + 1e-4 · scale), and
    (2) the device rank lies within the ranks a perturbation of δ can reach from the CPU scores:
        1 + #{c : s_c > a + 2δ} ≤ rank_dev ≤ 1 + #{c : s_c ≥ a − 2δ}, c over the filtered candidates
        and a the answer's CPU score (ranks are pessimistic: a tie counts against the answer).
    ``within_tolerance`` is True when the ranks are equal or every differing query is tie-sensitive.
    Also reported: how many differ, the largest |rank difference|, both MRRs, the largest |score
    difference| seen (differing rows and the first entity pass), whether a second device run gives the
    same ranks (``device_repeatable``: CUDA's atomic adds may sum in another order), and the device
    CPU's ranks against those the bundle's builder computed on its own CPU (``reference_equal``).
speed
    FBNELL test (1194 queries, 884 entity passes) on ``--device`` with fusion.pth, as ``are-search
    evaluate`` runs it (relation side included), after a warm-up on a few queries; ``--repeats`` timed
    runs, queries/s of the median.
settings
    Fusion settings per second when K = 1..8 settings share each entity pass, on FBNELL test with the
    relation side cached (what a fixed-mode trial costs): ``rank_queries(weights=[K, 2])`` returning
    ranks [K, Q] (its ``batch_size`` counts rows, one row a (pair, setting)), with ``64·K`` rows per
    pass: the same 64 pairs a one-setting pass holds, each for the K settings. Where that API is
    missing (a probe on one pair decides) the K settings are ranked one call each and ``batched`` is
    False. Row 0 of each K is compared with the K = 1 ranks, and at K = 8 the last row with a
    one-setting call (``row0_mismatches``, ``last_row_mismatches``).
search
    When Optuna, SQLAlchemy and ruamel.yaml import: ``search.launch`` of a 4-trial fixed-mode study on
    FBNELL with two worker processes sharing ``--device``, a SQLite study in a temporary folder, the
    bundle's validation vectors as encoder; wall seconds, trial counts, best value. Otherwise
    ``{"skipped": "no optuna"}`` (or the module that is missing).

``--dry`` is the CPU dry mode of the test suite (tests/test_gpu_check.py), one thread, tiny slices:
32 queries for equality, 16 for speed, 4 queries of FB15k237Inductive:v1 test with 2 pairs per pass
for settings (FBNELL costs ~50 ms a row on one shared core), and, where Optuna imports, a 2-trial
search on FB15k237Inductive:v1 valid (the only slow part: a trial ranks the whole split, ~1.5 min on
this 2-core machine; the suite runs the dry mode without Optuna). A step whose start finds less than
its share of ``--budget-s`` left is skipped (``{"skipped": "time budget"}``).

The device command (the lent machine has torch and PyG but no Optuna, SQLAlchemy, alembic, Mako,
colorlog, greenlet or ruamel.yaml; ``.whl`` holds their wheels for Python 3.12 x86-64, ``.gpu`` the
bundle, both ignored by git and named in ``carry``; 12 MB together)::

    run(command="set -o pipefail; export PYTHONUNBUFFERED=1; "
                "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl "
                "&& export PYTHONPATH=/tmp/site || echo 'gpu_check: wheels not installed: search skipped' >&2; "
                "nvidia-smi -L; python3 bench/gpu_check.py --bundle .gpu --device cuda --out $OUT/gpu_check.json "
                "2>&1 | tee $OUT/gpu_check.log",
        carry=[".gpu", ".whl"], timeout_s=420)

Made here with::

    python bench/gpu_bundle.py --out .gpu
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \\
        optuna==5.0.0 SQLAlchemy==2.1.9 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 greenlet==3.5.6 ruamel.yaml==0.19.1

and tried here, as it will run there, with ``--device cpu --dry``. Exit status: 0 when every step ran
and the ranks are within tolerance, 1 otherwise, 2 for a bad bundle or an unavailable device.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the project need not be installed: its root is enough
    sys.path.insert(0, str(ROOT))

#: Bundle layout this script reads (bench/gpu_bundle.py writes it).
BUNDLE_FORMAT = 1
EQUALITY = ("FB15k237Inductive:v1", "test")
SPEED = ("FBNELL", "test")
SEARCH = ("FBNELL", "valid")
DRY_SEARCH = ("FB15k237Inductive:v1", "valid")
#: Score tolerance of the tie rule (module docstring): δ ≤ SCORE_ATOL + SCORE_RTOL · max |score|.
SCORE_ATOL = 1e-5
SCORE_RTOL = 1e-4
#: Differing queries whose score rows are analysed (the rest are only counted).
MAX_ANALYSED = 256
#: The K fusion settings (w_sim, w_prompt); K uses the first K. The checkpoint's own, the known points,
#: the best quick-start setting, and a few others.
SETTINGS = ((0.225, 0.775), (0.2, 0.8), (0.0, 0.0), (0.4225, 1.2588), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.1, 2.0))
K_VALUES = tuple(range(1, 9))
#: Sizes of the full check and of the dry mode.
FULL = {"equality_queries": None, "speed_queries": None, "settings": SPEED, "settings_queries": None, "base_pairs": 64,
        "search": SEARCH, "search_trials": 4, "search_workers": 2}
#: The dry mode ranks K settings on the smallest graph (FBNELL costs ~50 ms a row on a shared CPU core).
DRY = {"equality_queries": 32, "speed_queries": 16, "settings": EQUALITY, "settings_queries": 4, "base_pairs": 2,
       "search": DRY_SEARCH, "search_trials": 2, "search_workers": 2}
#: Share of the time budget a step needs left to start.
STEP_SHARE = {"equality": 0.0, "speed": 0.1, "settings": 0.15, "search": 0.3}


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- bundle
class Bundle:
    """A bundle folder (see bench/gpu_bundle.py): its manifest and the paths of what it holds.

    Raises ValueError when the folder has no manifest of format BUNDLE_FORMAT, a listed file is
    missing or its sha256 differs (one line naming the file).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        import hashlib

        self.root = Path(root).resolve()
        manifest = self.root / "manifest.json"
        if not manifest.is_file():
            raise ValueError(f"{self.root} is not a bundle (no manifest.json): make one with bench/gpu_bundle.py")
        self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        if self.manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{manifest}: format {self.manifest.get('format')!r}, expected {BUNDLE_FORMAT}")
        for rel, digest in self.manifest["files"].items():
            path = self.root / rel
            if not path.is_file():
                raise ValueError(f"bundle file {path} is missing")
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                raise ValueError(f"bundle file {path} does not match its sha256 in manifest.json")

    @property
    def data_root(self) -> str:
        return str(self.root / "data")

    @property
    def text_root(self) -> str:
        return str(self.root / "texts")

    @property
    def checkpoint(self) -> Path:
        return self.root / self.manifest["checkpoint"]

    def vectors(self, dataset: str, split: str) -> str:
        """The vectors file of ``dataset``'s ``split`` graph (any spelling of the dataset)."""
        from are_model.data import resolve_dataset_name

        entry = self.manifest["datasets"].get(resolve_dataset_name(dataset))
        if entry is None:
            raise ValueError(f"the bundle holds no {dataset} (it has {', '.join(self.manifest['datasets'])})")
        return str(self.root / entry["vectors"][split])

    def text(self, dataset: str, split: str):
        """TextOptions reading the bundle's texts and the split's precomputed vectors; never downloads."""
        from are_model.pipeline import TextOptions

        return TextOptions(root=self.text_root, encoder=self.vectors(dataset, split), download=False)

    def reference_ranks(self):
        """The builder machine's CPU ranks of the equality split ([Q] LongTensor), or None."""
        import torch

        reference = self.manifest.get("reference")
        if not reference:
            return None
        return torch.load(self.root / reference["file"], map_location="cpu", weights_only=True)["ranks"]


# ------------------------------------------------------------------------------------------ helpers
def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Loaded:
    """Datasets, models and prepared splits loaded once per run (keyed by name / device / split)."""

    def __init__(self, bundle: Bundle, cache_dir: str) -> None:
        self.bundle, self.cache_dir = bundle, cache_dir
        self._datasets: dict[str, Any] = {}
        self._models: dict[str, Any] = {}
        self._splits: dict[tuple, Any] = {}

    def dataset(self, name: str):
        from are_model.data import load_dataset

        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, self.bundle.data_root, cache_dir=self.cache_dir, download=False)
        return self._datasets[name]

    def model(self, device: str):
        """fusion.pth on ``device`` in eval mode, without gradients."""
        from are_model.checkpoint import load_checkpoint

        if device not in self._models:
            model, _ = load_checkpoint(self.bundle.checkpoint, device)
            self._models[device] = model.requires_grad_(False).eval()
        return self._models[device]

    def split(self, name: str, split: str, device: str, limit: int | None):
        """(prepared split on ``device``, its queries cut to the first ``limit`` (None: all))."""
        import torch

        from are_model.pipeline import prepare_split

        key = (name, split, device)
        if key not in self._splits:
            self._splits[key] = prepare_split(self.dataset(name), split, text=self.bundle.text(name, split), device=device)
        prepared = self._splits[key]
        queries = prepared.queries
        if limit is not None and limit < len(queries):
            queries = queries.subset(torch.arange(limit, device=queries.anchors.device))
        return prepared, queries


def relation_side(model, graph, queries):
    """The model's relation side for every forward relation of ``queries`` (no autograd)."""
    import torch

    with torch.inference_mode():
        return model.relation_side(graph, torch.unique(queries.forward_relations))


def pair_scores(model, prepared, queries, side, pair_ids, batch_size: int):
    """Scores [len(pair_ids), N] (CPU float32) of the given query pairs, computed as rank_queries does.

    Each entity pass holds exactly ``batch_size`` pairs (the last padded), the relation vectors are
    projected once, so the rows are those the ranking used (rank_queries' batching contract).
    """
    import torch

    from are_model.evaluate import PROJECTION_CACHE_BYTES, query_pairs, relation_rows

    graph = prepared.graph
    with torch.inference_mode():
        pairs = query_pairs(queries.to(graph.device), graph.num_nodes)
        fused = model.fuse(side, None)
        fits = fused.numel() * fused.element_size() * len(model.entity_model.layers) <= PROJECTION_CACHE_BYTES
        projected = model.project_relations(fused) if fits else None
        rows = relation_rows(side.relations, pairs.relations % (graph.num_relations // 2))
        out = []
        for chunk in pair_ids.to(graph.device).split(batch_size):
            padded = torch.cat([chunk, chunk[-1:].expand(batch_size - chunk.numel())])
            scores = model.entity_scores(graph, fused, rows[padded], pairs.anchors[padded], pairs.relations[padded],
                                         projected=projected)
            out.append(scores[: chunk.numel()].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, graph.num_nodes)


def tie_analysis(queries, filters, cpu_scores, dev_scores, rows_of, index, ranks_cpu, ranks_dev) -> list[dict]:
    """Per differing query (``index`` [M]): δ, scale, window ranks and whether it is tie-sensitive.

    cpu_scores/dev_scores: [P', N] score rows; rows_of: [M] the row of each query there; ranks: [Q] CPU tensors.
    """
    import torch

    out = []
    anchors, relations = queries.anchors.cpu(), queries.query_relations.cpu()
    true_rows, true_entities = filters.to("cpu").true_answers(anchors[index], relations[index])
    for m, q in enumerate(index.tolist()):
        s_cpu, s_dev = cpu_scores[rows_of[m]].double(), dev_scores[rows_of[m]].double()
        answer = int(queries.answers[q])
        keep = torch.ones_like(s_cpu, dtype=torch.bool)
        keep[true_entities[true_rows == m]] = False
        keep[answer] = False
        delta = float((s_cpu - s_dev).abs().max())
        scale = float(s_cpu.abs().max())
        a = float(s_cpu[answer])
        low = 1 + int((s_cpu[keep] > a + 2 * delta).sum())
        high = 1 + int((s_cpu[keep] >= a - 2 * delta).sum())
        rank_dev = int(ranks_dev[q])
        within = delta <= SCORE_ATOL + SCORE_RTOL * scale
        out.append({"query": q, "rank_cpu": int(ranks_cpu[q]), "rank_dev": rank_dev, "delta": delta, "scale": scale,
                    "window": [low, high], "within_tolerance": within, "tie_sensitive": within and low <= rank_dev <= high,
                    "scores_reproduce": (1 + int((s_cpu[keep] >= a).sum()) == int(ranks_cpu[q])
                                         and 1 + int((s_dev[keep] >= float(s_dev[answer])).sum()) == rank_dev)})
    return out


# ---------------------------------------------------------------------------------------------- steps
def step_equality(loaded: Loaded, device: str, sizes: dict, batch_size: int) -> dict:
    """CPU and ``device`` ranks of EQUALITY with fusion.pth (see the module docstring)."""
    import torch

    from are_model.evaluate import query_pairs, rank_queries, ranking_metrics

    name, split = EQUALITY
    limit = sizes["equality_queries"]
    results: dict[str, Any] = {"dataset": loaded.dataset(name).name, "split": split, "batch_size": batch_size,
                               "rule": f"tie-sensitive: delta <= {SCORE_ATOL:g} + {SCORE_RTOL:g}*max|s| and the device rank "
                                       "within the ranks a 2*delta score window allows"}
    ranks, seconds, sides, prepared_of = {}, {}, {}, {}
    places = {"cpu": "cpu", "device": device}  # in the dry mode both are the CPU
    for label, where in places.items():
        prepared, queries = loaded.split(name, split, where, limit)
        model = loaded.model(where)
        synchronize(where)
        start = time.perf_counter()
        side = relation_side(model, prepared.graph, queries)
        ranks[label] = rank_queries(model, prepared.graph, queries, prepared.filters, side=side,
                                    batch_size=batch_size).cpu()
        synchronize(where)
        seconds[label] = time.perf_counter() - start
        sides[label], prepared_of[label] = side, (prepared, queries)
    cpu, dev = ranks["cpu"], ranks["device"]
    # The device again, same inputs: CUDA's atomic index_add_ may sum in another order on each run.
    prepared, queries = prepared_of["device"]
    again = rank_queries(loaded.model(device), prepared.graph, queries, prepared.filters, side=sides["device"],
                         batch_size=batch_size).cpu()
    results["device_repeatable"] = bool(torch.equal(again, dev))
    results["device_repeat_num_differ"] = int((again != dev).sum())
    differ = torch.nonzero(cpu != dev).flatten()
    queries = prepared_of["cpu"][1]
    results.update({"num_queries": int(cpu.numel()), "equal": bool(differ.numel() == 0), "num_differ": int(differ.numel()),
                    "max_abs_rank_diff": int((cpu - dev).abs().max()) if cpu.numel() else 0,
                    "mrr_cpu": ranking_metrics(cpu)["mrr"], "mrr_device": ranking_metrics(dev)["mrr"],
                    "cpu_seconds": round(seconds["cpu"], 3), "device_seconds": round(seconds["device"], 3)})
    results["mrr_abs_diff"] = abs(results["mrr_cpu"] - results["mrr_device"])
    # Score rows: the differing queries (up to MAX_ANALYSED) and, always, the first entity pass.
    pairs = query_pairs(queries.to("cpu"), prepared_of["cpu"][0].graph.num_nodes)
    analysed = differ[:MAX_ANALYSED]
    sample = torch.arange(min(batch_size, len(pairs)))
    wanted = torch.unique(torch.cat([pairs.query_pair[analysed], sample]))
    scores = {label: pair_scores(loaded.model(where), prepared_of[label][0], prepared_of[label][1], sides[label], wanted,
                                 batch_size) for label, where in places.items()}
    results["max_abs_score_diff"] = float((scores["cpu"] - scores["device"]).abs().max()) if wanted.numel() else 0.0
    rows_of = torch.searchsorted(wanted, pairs.query_pair[analysed])
    details = tie_analysis(queries, prepared_of["cpu"][0].filters, scores["cpu"], scores["device"], rows_of, analysed, cpu, dev)
    results["analysed"] = len(details)
    results["all_tie_sensitive"] = None if not details else all(d["tie_sensitive"] for d in details)
    results["within_tolerance"] = results["equal"] or (results["all_tie_sensitive"] is True
                                                       and len(details) == int(differ.numel()))
    results["scores_reproduce"] = all(d["scores_reproduce"] for d in details) if details else None
    results["differing"] = details[:16]
    reference = loaded.bundle.reference_ranks()
    if reference is not None:
        reference = reference[: cpu.numel()]
        results["reference_equal"] = bool(torch.equal(reference, cpu))
        results["reference_num_differ"] = int((reference != cpu).sum())
    else:
        results["reference_equal"] = None
    return results


def step_speed(loaded: Loaded, device: str, sizes: dict, batch_size: int, repeats: int) -> dict:
    """Queries/s of SPEED on ``device``, relation side included, median of ``repeats`` runs after a warm-up."""
    import torch

    from are_model.evaluate import rank_queries, ranking_metrics

    name, split = SPEED
    prepared, queries = loaded.split(name, split, device, sizes["speed_queries"])
    model = loaded.model(device)
    warm = queries.subset(torch.arange(min(2 * batch_size, len(queries)), device=queries.anchors.device))
    rank_queries(model, prepared.graph, warm, prepared.filters, batch_size=batch_size)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, ranks = [], None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        ranks = rank_queries(model, prepared.graph, queries, prepared.filters, batch_size=batch_size)
        synchronize(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    passes = int(torch.unique(queries.query_relations * prepared.graph.num_nodes + queries.anchors).numel())
    result = {"dataset": loaded.dataset(name).name, "split": split, "queries": len(queries), "entity_passes": passes,
              "batch_size": batch_size, "repeats": repeats, "seconds": [round(t, 4) for t in times],
              "queries_per_s": round(len(queries) / seconds, 2), "passes_per_s": round(passes / seconds, 2),
              "mrr": ranking_metrics(ranks.cpu())["mrr"]}
    if torch.device(device).type == "cuda":
        result["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return result


def batched_supported(model, prepared, queries, side, batch_size: int) -> bool:
    """Whether rank_queries takes weights [K, 2] and returns ranks [K, Q] (probed on one pair)."""
    import torch

    from are_model.evaluate import rank_queries

    weights = torch.tensor(SETTINGS[:2], dtype=torch.float32, device=prepared.device)
    try:
        ranks = rank_queries(model, prepared.graph, queries, prepared.filters, side=side, weights=weights,
                             batch_size=batch_size, select=torch.zeros(1, dtype=torch.long))
    except (RuntimeError, ValueError, IndexError, TypeError):
        return False
    return tuple(ranks.shape) == (2, len(queries))


def step_settings(loaded: Loaded, device: str, sizes: dict) -> dict:
    """Settings/s with K = 1..8 settings per entity pass (module docstring), relation side cached."""
    import torch

    from are_model.evaluate import rank_queries

    name, split = sizes["settings"]
    prepared, queries = loaded.split(name, split, device, sizes["settings_queries"])
    model = loaded.model(device)
    side = relation_side(model, prepared.graph, queries)
    base = sizes["base_pairs"]
    batched = batched_supported(model, prepared, queries, side, 2 * base)

    def rank(k: int) -> torch.Tensor:
        weights = torch.tensor(SETTINGS[:k], dtype=torch.float32, device=prepared.device)
        if batched:
            return rank_queries(model, prepared.graph, queries, prepared.filters, side=side, weights=weights,
                                batch_size=base * k)
        return torch.stack([rank_queries(model, prepared.graph, queries, prepared.filters, side=side, weights=w,
                                         batch_size=base) for w in weights])

    num_pairs = int(torch.unique(queries.query_relations * prepared.graph.num_nodes + queries.anchors).numel())
    rows, first = [], None
    for k in K_VALUES:
        if batched:  # warm-up at this shape: one pass
            weights = torch.tensor(SETTINGS[:k], dtype=torch.float32, device=prepared.device)
            rank_queries(model, prepared.graph, queries, prepared.filters, side=side, weights=weights, batch_size=base * k,
                         select=torch.arange(min(base, num_pairs), dtype=torch.long))
        synchronize(device)
        start = time.perf_counter()
        ranks = rank(k).cpu()
        synchronize(device)
        seconds = time.perf_counter() - start
        if first is None:
            first = ranks[0]
        rows.append({"k": k, "seconds": round(seconds, 4), "settings_per_s": round(k / seconds, 3),
                     "query_settings_per_s": round(k * len(queries) / seconds, 1),
                     "row0_mismatches": int((ranks[0] != first).sum())})
    single = rank_queries(model, prepared.graph, queries, prepared.filters, side=side, batch_size=base,
                          weights=torch.tensor(SETTINGS[K_VALUES[-1] - 1], dtype=torch.float32, device=prepared.device))
    for row in rows:
        row["speedup_vs_k1"] = round(row["settings_per_s"] / rows[0]["settings_per_s"], 3)
    return {"dataset": loaded.dataset(name).name, "split": split, "queries": len(queries), "batched": batched,
            "api": "rank_queries(weights=[K, 2]) -> [K, Q]" if batched else "fallback: K calls of rank_queries(weights=[2])",
            "base_pairs_per_pass": base, "rows_per_pass": [base * k if batched else base for k in K_VALUES],
            "k": list(K_VALUES), "settings_per_s": {str(r["k"]): r["settings_per_s"] for r in rows},
            "last_row_mismatches": int((ranks[-1] != single.cpu()).sum()), "runs": rows}


def search_arguments(bundle: Bundle, device: str, sizes: dict, storage: str, cache_dir: str) -> dict:
    """The keyword arguments of the step's ``search.launch`` call (a test binds them to its signature)."""
    name, split = sizes["search"]
    return {"dataset": name, "checkpoint": str(bundle.checkpoint), "mode": "fixed", "trials": sizes["search_trials"],
            "seed": 0, "storage": storage, "workers": sizes["search_workers"], "device": device,
            "data_root": bundle.data_root, "text_root": bundle.text_root, "cache_dir": cache_dir,
            "encoder": bundle.vectors(name, split), "offline": True, "no_stop": True, "progress": False}


def step_search(loaded: Loaded, device: str, sizes: dict, cache_dir: str) -> dict:
    """A fixed-mode study of ``search_trials`` trials with ``search_workers`` workers on ``device``."""
    try:  # what the lent machine lacks unless the wheels of .whl were installed
        import optuna  # noqa: F401
        import ruamel.yaml  # noqa: F401
        import sqlalchemy  # noqa: F401

        import search
    except ImportError as error:
        missing = (error.name or str(error)).split(".")[0]
        return {"skipped": "no optuna" if missing == "optuna" else f"no {missing}"}
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory(prefix="gpu-check-study-") as folder:
        arguments = search_arguments(loaded.bundle, device, sizes, f"sqlite:///{Path(folder) / 'study.db'}", cache_dir)
        start = time.perf_counter()
        result = search.launch(**arguments)
        wall = time.perf_counter() - start
    best = result.best
    return {"dataset": arguments["dataset"], "split": sizes["search"][1], "study": result.study,
            "trials": arguments["trials"], "workers": arguments["workers"], "device": device, "wall_s": round(wall, 2),
            "trials_per_s": round(result.trials_added / wall, 3), "counts": result.counts,
            "trials_added": result.trials_added, "optuna": optuna.__version__,
            "best": None if best is None else {"trial": best.trial, "value": best.value, "params": best.params}}


# ------------------------------------------------------------------------------------------- driver
def environment(device: str) -> dict:
    """Device name, library versions and CPU count of this machine."""
    import torch

    info = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        import torch_geometric

        info["torch_geometric"] = torch_geometric.__version__
    except ImportError:
        info["torch_geometric"] = None
    if torch.device(device).type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def table(report: dict) -> str:
    """A few lines for a human (stderr)."""
    lines = [f"gpu_check on {report.get('device_name')} ({report.get('device')}), torch {report.get('torch')}, "
             f"{report['seconds']} s, ok={report['ok']}"]
    eq, sp, st, se = (report.get(name) or {} for name in ("equality", "speed", "settings", "search"))
    if "equal" in eq:
        lines.append(f"  equality {eq['dataset']} {eq['split']}: {eq['num_queries']} queries, equal={eq['equal']}, "
                     f"differ={eq['num_differ']} (max |rank diff| {eq['max_abs_rank_diff']}), within tolerance="
                     f"{eq['within_tolerance']}, max |score diff| {eq['max_abs_score_diff']:.3g}, MRR cpu "
                     f"{eq['mrr_cpu']:.5f} / device {eq['mrr_device']:.5f}, device repeatable={eq['device_repeatable']}, "
                     f"reference equal={eq['reference_equal']}")
    else:
        lines.append(f"  equality: {eq or 'not run'}")
    if "queries_per_s" in sp:
        lines.append(f"  speed {sp['dataset']} {sp['split']}: {sp['queries']} queries, {sp['queries_per_s']} queries/s, "
                     f"{sp['passes_per_s']} passes/s, MRR {sp['mrr']:.5f}")
    else:
        lines.append(f"  speed: {sp or 'not run'}")
    if "runs" in st:
        lines.append(f"  settings per entity pass, {st['dataset']} {st['split']} "
                     f"({'batched' if st['batched'] else 'fallback, one call per setting'}):")
        lines.append(f"  {'K':>4} {'seconds':>9} {'settings/s':>11} {'speedup':>8} {'row0 diff':>9}")
        for row in st["runs"]:
            lines.append(f"  {row['k']:>4} {row['seconds']:>9.3f} {row['settings_per_s']:>11.3f} "
                         f"{row['speedup_vs_k1']:>8.2f} {row['row0_mismatches']:>9}")
    else:
        lines.append(f"  settings: {st or 'not run'}")
    if "wall_s" in se:
        best = se["best"] or {}
        lines.append(f"  search {se['study']}: {se['trials']} trials, {se['workers']} workers on {se['device']}, "
                     f"{se['wall_s']} s, counts {se['counts']}, best {best.get('value')} {best.get('params')}")
    else:
        lines.append(f"  search: {se or 'not run'}")
    return "\n".join(lines)


def run_step(report: dict, name: str, started: float, budget: float, function: Callable[[], dict]) -> None:
    """Run one step into ``report[name]``: skipped when too little budget is left, its error recorded."""
    left = budget - (time.perf_counter() - started)
    if left < STEP_SHARE[name] * budget:
        report[name] = {"skipped": "time budget"}
        log(f"gpu_check: {name} skipped ({left:.0f} s of the {budget:.0f} s budget left)")
        return
    log(f"gpu_check: {name} ...")
    start = time.perf_counter()
    try:
        report[name] = function()
    except Exception as error:  # one step's failure must not cost the others' figures
        traceback.print_exc(file=sys.stderr)
        report[name] = {"error": f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]}
    report[name]["step_s"] = round(time.perf_counter() - start, 2)
    log(f"gpu_check: {name} done in {report[name]['step_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="the bundle folder (bench/gpu_bundle.py)")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--dry", action="store_true", help="CPU dry mode: tiny slices, seconds (the test suite's)")
    parser.add_argument("--out", help="also write the JSON line to this file")
    parser.add_argument("--steps", nargs="+", default=["equality", "speed", "settings", "search"],
                        choices=["equality", "speed", "settings", "search"])
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per entity pass (default: the device's)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of the speed step (default 3; dry 1)")
    parser.add_argument("--budget-s", type=float, default=210.0, help="time budget; later steps are skipped past it")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and Numba CPU threads (default: theirs; dry 1, which a shared CPU needs)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import torch

    threads = args.threads or (1 if args.dry else None)
    if threads is not None:
        torch.set_num_threads(threads)
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    from are_model.pipeline import default_batch_size

    try:
        bundle = Bundle(args.bundle)
        device = str(torch.device(args.device))
    except (ValueError, RuntimeError) as error:
        print(f"gpu_check: error: {error}", file=sys.stderr)
        return 2
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: error: device {device}: CUDA is not available here (use --device cpu --dry)", file=sys.stderr)
        return 2
    sizes = DRY if args.dry else FULL
    batch_size = args.batch_size or (sizes["base_pairs"] if args.dry else default_batch_size(device))
    repeats = args.repeats or (1 if args.dry else 3)
    report: dict[str, Any] = {"benchmark": "gpu_check", "dry": args.dry, **environment(device),
                              "bundle": {"path": str(bundle.root), "encoder": bundle.manifest.get("encoder"),
                                         "reference_mrr": (bundle.manifest.get("reference") or {}).get("mrr")}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-cache-") as cache_dir:
        loaded = Loaded(bundle, cache_dir)
        steps = {"equality": lambda: step_equality(loaded, device, sizes, batch_size),
                 "speed": lambda: step_speed(loaded, device, sizes, batch_size, repeats),
                 "settings": lambda: step_settings(loaded, device, sizes),
                 "search": lambda: step_search(loaded, device, sizes, cache_dir)}
        for name in ("equality", "speed", "settings", "search"):
            if name in args.steps:
                run_step(report, name, started, args.budget_s, steps[name])
    errors = [name for name in args.steps if "error" in report.get(name, {})]
    equality = report.get("equality", {})
    report["ok"] = not errors and equality.get("within_tolerance", "equality" not in args.steps) is True
    report["errors"] = errors
    report["seconds"] = round(time.perf_counter() - started, 2)
    line = json.dumps(report, default=str)
    print(line, flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    log(table(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
