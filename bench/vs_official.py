"""Benchmark: are-search's evaluation against the official ULTRA code, side by side, same checkpoint and data.

    python bench/vs_official.py --device cpu --dataset FBNELL [--threads 2] [--rounds 2]
    python bench/vs_official.py --device cpu --dataset FB15k237Inductive:v1 --threads 1
    python bench/vs_official.py --device cuda --dataset FB15k237          # on a GPU machine
    python bench/vs_official.py --setup                                   # only build the official environment
    python bench/vs_official.py --dataset FBNELL --limit-queries 64 --rounds 1   # a quick check

Two worker processes, each loaded once and then driven over a pipe, run the test split A B A B (official, then
ours, `--rounds` times), each pass timed inside its worker (model and data loading, one warm-up batch and
turning the ranks into lists are not timed):

* official (A): bench/official_runner.py, run by the separate environment's interpreter, calls ULTRA's own
  code from `--ultra-root` (default ../shared/reference/ULTRA, MIT, read-only, nothing of it copied into
  this project): its dataset class and config (config/<setting>/inference.yaml), `ultra.models.Ultra`, and
  `test()` of script/run.py with its batch size (16 test triples per batch for inductive graphs, 8 for
  transductive ones; each triple is two queries, each query one entity pass scored against every entity)
  and its fused rspmm C++ kernel (OpenMP on the CPU), JIT-built by torch into .cache/ultra-official/;
* ours (B): are_model's `rank_queries` on `prepare_split(dataset, "test")`, as `are-search evaluate` and
  bench/eval_speed.py do, with `default_batch_size(device)` (anchor, relation) pairs per entity pass
  (16 on the CPU, 64 on CUDA; queries sharing a pair share its pass) unless --batch-size is given.

Both use the same checkpoint (--checkpoint, default ultra_3g from $ARE_CHECKPOINT_ROOT), the same raw files
($ARE_DATA_ROOT; the official side reads them through symlinks in ULTRA's folder layout under
.cache/ultra-official/data, where ULTRA writes its processed/ files), the same device, and the same thread
count (torch.set_num_threads plus OMP/MKL/NUMBA_NUM_THREADS in each worker's environment).

Output: one JSON line on stdout (`official_qps`, `ours_qps` = queries / seconds summed over the rounds,
`ratio` = ours / official, `ranks_equal`, the settings used, per-round figures and `round_ratios`, the load
average before and after: on a shared machine the ratio of the same round is the figure to trust), then a
table on stderr.

Ranks and the tie rule: both sides give the filtered rank 1 + #{candidates, known true answers other than the
query's own excluded, whose score is >= the answer's}: ULTRA's `tasks.compute_ranking` counts `pos <= pred`
under its strict-negative mask; are_model's `filtered_ranks` counts `scores >= answer` with the known true
answers removed. The rule being the same, `ranks_exactly_equal` is exact equality of every query's rank. The
two implementations sum messages in different orders, so scores differ in their last float bits and a
candidate scoring that close to the answer may land on either side of it; `ranks_equal` therefore also
accepts a differing rank when it lies in the official rank's near-tie band, counted by official_runner from
ULTRA's own scores: [1 + #{filtered candidates > answer + tol}, 1 + #{filtered candidates >= answer - tol}],
tol = 1e-5 + 1e-4 * max|score| of the row (the tolerance of bench/gpu_check.py). `rank_mismatches` and
`first_mismatches` (with their bands) say how many differ at all. Ranks are compared in are-search's query
order (tail queries of the test triples in file order, then head queries); the official ranks are put in
that order from the triples of each batch `test()` drew (it draws them through a seeded,
shuffled DistributedSampler). `triples_equal` says whether both loaders gave the same (h, t, r) ids.

The official environment (`--setup`, run on first use when missing): a venv at .cache/ultra-official-venv
(`--official-venv`) made from the base interpreter of this one, without pip, whose site-packages holds a .pth
file naming this interpreter's site-packages (torch, torch_geometric, jinja2, pyyaml come from there: the
same torch build on both sides). Into it go, from PyPI with this venv's pip: `easydict` (ULTRA's config
objects; a ten-line stand-in is written if PyPI is unreachable) and `ninja` when no ninja is on PATH (torch's
JIT build of rspmm needs it, and a C++ compiler). `torch_scatter` (requirements.txt) has no wheel on PyPI for
this torch, so unless it already imports (or `--setup --torch-scatter-pypi` builds it from source, slow), a
stand-in package written into the venv provides `scatter`/`scatter_add`/`scatter_mean` on torch's
`scatter_reduce_`; on ULTRA's inference path it is only called by `build_relation_graph` while the dataset is
processed (node degrees), never inside the timed passes: with sum aggregation and no gradient ULTRA's layers
use the fused rspmm kernel, not scatter. The JSON reports which torch_scatter ran.

CUDA (`--device cuda`): both sides on the same GPU; the official side JIT-builds rspmm.cu as well, so the
machine needs nvcc (CUDA_HOME) and ninja besides the CUDA torch; the venv is redone when the interpreter or
its site-packages differ from the ones it was made for.

Measured on this project's 2-core CPU (Intel Xeon with AVX-512, torch 2.13 CPU), 2026-12-06, after the kernel work of
are_model.kernels (687e667): FBNELL test, 1194 queries: 1 thread 30.7 vs 158.7 q/s, 5.18x (rounds 5.23x, 5.12x);
2 threads 62.2 vs 310.0 q/s, 4.98x. FB15k237Inductive:v1 test, 822 queries: 1 thread 156.1 vs 673.1 q/s, 4.31x
(4.20x, 4.42x); 2 threads 266.2 vs 1073.9 q/s, 4.03x. Ranks: FBNELL 4 of 1194 differ (by 1, 1, 3, 3), FB15k237Inductive:v1
1 of 822 (by 1), each inside the official near-tie band; MRR 0.47341 both, 0.48626 / 0.48627. The JSON lines are in
bench/results/vs-official-cpu/. Before that work: 2.47x and 2.80x at 1 thread.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ULTRA = REPO.parent / "shared" / "reference" / "ULTRA"
DEFAULT_VENV = REPO / ".cache" / "ultra-official-venv"
WORK_DIR = REPO / ".cache" / "ultra-official"
SETUP_MARK = ".are-setup"
TIE_RULE = ("both sides pessimistic: rank = 1 + #{filtered candidates scoring >= the answer} (ULTRA "
            "tasks.compute_ranking: pos_pred <= pred & mask; are_model filtered_ranks: scores >= answer). "
            "ranks_exactly_equal: every query's rank identical. ranks_equal: every rank identical, or ours inside "
            "the official near-tie band [low, high] (candidates within 1e-5 + 1e-4*max|row score| of the "
            "answer's score, on the official scores, may fall either side: float rounding)")

TORCH_SCATTER_SHIM = '''"""Stand-in for torch_scatter, written by are-search's bench/vs_official.py --setup.

ULTRA imports torch_scatter; on its inference path only build_relation_graph calls scatter_add (degrees, while
the dataset is processed). These use torch's own scatter_reduce_ with torch_scatter's broadcasting rule.
"""
import torch

ARE_SHIM = True
__version__ = "0+are-shim"


def _broadcast(index, src, dim):
    dim = dim % src.dim()
    if index.dim() == 1:
        index = index.view([-1 if d == dim else 1 for d in range(src.dim())])
    return index.expand_as(src)


def scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
    dim = dim % src.dim()
    index = _broadcast(index, src, dim)
    if out is None:
        size = list(src.shape)
        size[dim] = dim_size if dim_size is not None else (int(index.max()) + 1 if index.numel() else 0)
        out = torch.zeros(size, dtype=src.dtype, device=src.device)
    mode = {"sum": "sum", "add": "sum", "mul": "prod", "mean": "mean", "max": "amax", "min": "amin"}[reduce]
    return out.scatter_reduce_(dim, index, src, reduce=mode, include_self=False)


def scatter_add(src, index, dim=-1, out=None, dim_size=None):
    return scatter(src, index, dim, out, dim_size, "sum")


def scatter_sum(src, index, dim=-1, out=None, dim_size=None):
    return scatter(src, index, dim, out, dim_size, "sum")


def scatter_mean(src, index, dim=-1, out=None, dim_size=None):
    return scatter(src, index, dim, out, dim_size, "mean")


def scatter_max(src, index, dim=-1, out=None, dim_size=None):
    raise NotImplementedError("are-search torch_scatter stand-in: scatter_max (with argmax) is not provided")


def scatter_min(src, index, dim=-1, out=None, dim_size=None):
    raise NotImplementedError("are-search torch_scatter stand-in: scatter_min (with argmin) is not provided")
'''
TORCH_SCATTER_COMPOSITE = '''def scatter_softmax(*args, **kwargs):
    raise NotImplementedError("are-search torch_scatter stand-in: scatter_softmax is not provided")


def scatter_log_softmax(*args, **kwargs):
    raise NotImplementedError("are-search torch_scatter stand-in: scatter_log_softmax is not provided")
'''
EASYDICT_SHIM = '''"""Stand-in for easydict, written by are-search's bench/vs_official.py --setup (no PyPI)."""
ARE_SHIM = True


class EasyDict(dict):
    def __init__(self, d=None, **kwargs):
        super().__init__()
        for key, value in dict(d or {}, **kwargs).items():
            self[key] = value

    def __setitem__(self, key, value):
        if isinstance(value, dict) and not isinstance(value, EasyDict):
            value = EasyDict(value)
        elif isinstance(value, (list, tuple)):
            value = type(value)(EasyDict(v) if isinstance(v, dict) else v for v in value)
        super().__setitem__(key, value)

    __setattr__ = __setitem__

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def __delattr__(self, key):
        del self[key]
'''


# ---------------------------------------------------------------------------------------------- environment

def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def venv_site(path: Path) -> Path:
    run = subprocess.run([str(venv_python(path)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONNOUSERSITE="1"))
    return Path(run.stdout.strip())


def _imports(python: Path, module: str) -> bool:
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


def _pip(python: Path, *packages: str) -> bool:
    run = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                          "--timeout", "20", "--retries", "1", *packages],
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(f"vs_official: pip install {' '.join(packages)} failed: {run.stderr.strip()[-400:]}", file=sys.stderr)
    return run.returncode == 0


def setup(path: Path, *, torch_scatter_pypi: bool = False, force: bool = False) -> None:
    """Create or complete the official environment (see the module docstring)."""
    mark = path / SETUP_MARK
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    stamp = json.dumps({"python": sys.executable, "site": ours})
    if mark.exists() and mark.read_text() == stamp and venv_python(path).exists() and not force:
        return  # set up for this very interpreter (a copy elsewhere, e.g. on another machine, is redone)
    print(f"vs_official: setting up the official environment in {path}", file=sys.stderr)
    if not venv_python(path).exists():
        venv.EnvBuilder(with_pip=False, system_site_packages=False, symlinks=True).create(path)
    site = venv_site(path)
    (site / "are_venv.pth").write_text("".join(f"{p}\n" for p in ours))
    python = venv_python(path)
    if not _imports(python, "torch") or not _imports(python, "torch_geometric"):
        raise SystemExit(f"vs_official: {python} does not see torch and torch_geometric through {ours}; "
                         "run this script with the project's interpreter (.venv/bin/python)")
    if not _imports(python, "easydict") and not _pip(python, "easydict"):
        (site / "easydict").mkdir(exist_ok=True)
        (site / "easydict" / "__init__.py").write_text(EASYDICT_SHIM)
    if shutil.which("ninja") is None and not (path / "bin" / "ninja").exists():
        _pip(python, "ninja")
    if not _imports(python, "torch_scatter"):
        if not (torch_scatter_pypi and _pip(python, "--no-build-isolation", "torch-scatter")):
            (site / "torch_scatter").mkdir(exist_ok=True)
            (site / "torch_scatter" / "__init__.py").write_text(TORCH_SCATTER_SHIM)
            (site / "torch_scatter" / "composite.py").write_text(TORCH_SCATTER_COMPOSITE)
    for module in ("torch", "torch_geometric", "torch_scatter", "easydict", "jinja2", "yaml"):
        if not _imports(python, module):
            raise SystemExit(f"vs_official: the official environment {path} cannot import {module}")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        print("vs_official: warning: no C++ compiler on PATH; ULTRA's rspmm kernel cannot be built", file=sys.stderr)
    mark.write_text(stamp)


# --------------------------------------------------------------------------------------------- our worker

def ours_worker(args: argparse.Namespace) -> None:
    """Our side: load once, warm up, then one timed rank_queries pass per 'run' line (protocol as official_runner)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import torch

    torch.set_num_threads(args.threads)
    from are_model.checkpoint import load_checkpoint
    from are_model.data import load_dataset
    from are_model.evaluate import query_pairs, rank_queries
    from are_model.pipeline import default_batch_size, prepare_split

    device = torch.device(args.device)
    start = time.perf_counter()
    model, info = load_checkpoint(args.checkpoint, device=device)
    dataset = load_dataset(args.dataset, args.data_root, cache_dir=args.cache_dir, download=False)
    prepared = prepare_split(dataset, "test", device=device)
    load_seconds = time.perf_counter() - start
    batch_size = args.batch_size or default_batch_size(device)
    total = prepared.triples.shape[0]
    limit = total if args.limit_triples is None else min(args.limit_triples, total)
    index = torch.cat([torch.arange(limit), total + torch.arange(limit)]).to(device)
    queries = prepared.queries.subset(index)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    begin = time.perf_counter()
    warm = queries.subset(torch.arange(min(32, len(queries)), device=device))
    rank_queries(model, prepared.graph, warm, prepared.filters, batch_size=batch_size)
    sync()
    warm_seconds = time.perf_counter() - begin
    passes = len(query_pairs(queries, prepared.graph.num_nodes))
    data = dataset.split("test")
    proto.write(json.dumps({
        "ready": True, "load_seconds": round(load_seconds, 3), "warmup_seconds": round(warm_seconds, 3),
        "num_nodes": int(data.num_nodes), "num_relations": int(data.num_relations), "test_triples": total,
        "triples": prepared.triples[:limit].cpu().tolist(), "batch_size": batch_size, "entity_passes": passes,
        "threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__,
        "profile": info.profile}) + "\n")
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        sync()
        begin = time.perf_counter()
        ranks = rank_queries(model, prepared.graph, queries, prepared.filters, batch_size=batch_size)
        sync()
        seconds = time.perf_counter() - begin
        proto.write(json.dumps({"seconds": seconds, "queries": int(ranks.numel()), "ranks": ranks.cpu().tolist()})
                    + "\n")


# ------------------------------------------------------------------------------------------------- driver

class Worker:
    """A worker process: JSON lines on its stdout, its stderr in a log file (shown when it fails)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path, verbose: bool) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = None if verbose else open(self.log_path, "w")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=None if verbose else self.log, text=True, env=env, cwd=str(REPO))
        self.ready: dict | None = None

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = "" if self.log is None else "\n".join(self.log_path.read_text().strip().splitlines()[-15:])
            raise SystemExit(f"vs_official: the {self.name} worker ended (exit {self.process.returncode}):\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"vs_official: the {self.name} worker: {reply['error']}")
        return reply

    def request(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def resolve_inputs(args: argparse.Namespace) -> tuple[str, str, str, str, str]:
    """(canonical dataset name, setting, checkpoint file, data root, cache dir) from flags and ARE_* variables."""
    from are_model.data.registry import get_spec, resolve_dataset_name
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, checkpoint_root=args.checkpoint_root,
                                  cache_dir=args.cache_dir)
    name = resolve_dataset_name(args.dataset)
    setting = get_spec(name).setting
    checkpoint = Path(args.checkpoint).expanduser()
    if not checkpoint.is_file():
        if options.checkpoint_root is None:
            raise ValueError("no checkpoint root: pass --checkpoint-root or set ARE_CHECKPOINT_ROOT")
        stem = args.checkpoint if args.checkpoint.endswith(".pth") else args.checkpoint + ".pth"
        checkpoint = Path(options.checkpoint_root) / stem
    if not checkpoint.is_file():
        raise ValueError(f"--checkpoint: {checkpoint} not found")
    return name, setting, str(checkpoint.resolve()), str(options.data_root), str(options.cache_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="FBNELL")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (the same for both sides)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of each side (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds, official first (default 2)")
    parser.add_argument("--checkpoint", default="ultra_3g", help="a .pth file or a name in the checkpoint root")
    parser.add_argument("--data-root", help="default: $ARE_DATA_ROOT")
    parser.add_argument("--checkpoint-root", help="default: $ARE_CHECKPOINT_ROOT")
    parser.add_argument("--cache-dir", help="are-search's cache (default: $ARE_CACHE_DIR, else ~/.cache/are-search)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="our (anchor, relation) pairs per entity pass (default: 16 on the CPU, 64 on CUDA)")
    parser.add_argument("--official-batch-size", type=int, default=None,
                        help="official test triples per batch (default: its config's, 16 inductive, 8 transductive)")
    parser.add_argument("--limit-queries", type=int, default=None,
                        help="rank only the first N/2 test triples' 2 queries each (default: the whole split)")
    parser.add_argument("--ultra-root", default=str(DEFAULT_ULTRA), help="the official ULTRA checkout")
    parser.add_argument("--official-venv", default=str(DEFAULT_VENV))
    parser.add_argument("--setup", action="store_true", help="(re)build the official environment and stop")
    parser.add_argument("--torch-scatter-pypi", action="store_true",
                        help="with --setup: build torch-scatter from PyPI's source instead of the stand-in")
    parser.add_argument("--verbose", action="store_true", help="show the workers' logs as they run")
    parser.add_argument("--worker", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--limit-triples", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        ours_worker(args)
        return
    official_venv = Path(args.official_venv).resolve()
    if args.setup:
        setup(official_venv, torch_scatter_pypi=args.torch_scatter_pypi, force=True)
        print(f"vs_official: official environment ready: {venv_python(official_venv)}", file=sys.stderr)
        return
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    ultra_root = Path(args.ultra_root).resolve()
    if not (ultra_root / "script" / "run.py").is_file():  # bad input: exit 2, naming the option
        parser.error(f"--ultra-root: no official ULTRA checkout at {ultra_root} (script/run.py missing); point "
                     "--ultra-root at a checkout of https://github.com/DeepGraphLearning/ULTRA")
    try:
        name, setting, checkpoint, data_root, cache_dir = resolve_inputs(args)
    except (ValueError, KeyError) as error:  # an unknown dataset, a missing checkpoint: bad input, exit 2
        parser.error(str(error).strip("'\""))
    setup(official_venv)  # after the inputs are known good: it may take a minute the first time
    limit_triples = None if args.limit_queries is None else max(1, args.limit_queries // 2)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               NUMBA_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1", PYTHONNOUSERSITE="1")
    official_env = dict(env, TORCH_EXTENSIONS_DIR=str(WORK_DIR / "torch_extensions"),
                        PATH=f"{official_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    common = ["--dataset", name, "--data-root", data_root, "--checkpoint", checkpoint, "--threads", str(args.threads),
              "--device", args.device]
    limit = [] if limit_triples is None else ["--limit-triples", str(limit_triples)]
    official_cmd = [str(venv_python(official_venv)), str(REPO / "bench" / "official_runner.py"), *common, *limit,
                    "--ultra-root", str(ultra_root), "--setting", setting, "--work-dir", str(WORK_DIR)]
    if args.official_batch_size:
        official_cmd += ["--batch-size", str(args.official_batch_size)]
    ours_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "ours", *common, *limit,
                "--cache-dir", cache_dir]
    if args.batch_size:
        ours_cmd += ["--batch-size", str(args.batch_size)]

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="vs_official-", dir=WORK_DIR))
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    official = Worker("official", official_cmd, official_env, log_dir, args.verbose)
    ours = Worker("ours", ours_cmd, env, log_dir, args.verbose)
    try:
        official.ready, ours.ready = official.read(), ours.read()  # both load (and warm up) at once; untimed
        rows = []
        for round_ in range(1, args.rounds + 1):
            for worker in (official, ours):  # A B A B
                reply = worker.request("run")
                rows.append({"side": worker.name, "round": round_, **reply})
    finally:
        official.close()
        ours.close()
    wall = time.perf_counter() - started
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when a worker failed

    def side(which: str) -> list[dict]:
        return [row for row in rows if row["side"] == which]

    def qps(which: str) -> float:
        return sum(r["queries"] for r in side(which)) / sum(r["seconds"] for r in side(which))

    first = side("official")[0]
    official_ranks, ours_ranks = first["ranks"], side("ours")[0]["ranks"]
    low, high = first["tie_low"], first["tie_high"]
    mismatches = [i for i, (a, b) in enumerate(zip(official_ranks, ours_ranks)) if a != b]
    same_length = len(official_ranks) == len(ours_ranks)
    exact = same_length and not mismatches
    outside = [i for i in mismatches if not low[i] <= ours_ranks[i] <= high[i]]
    equal = same_length and not outside
    stable = all(r["ranks"] == official_ranks for r in side("official")) and \
        all(r["ranks"] == ours_ranks for r in side("ours"))

    def mrr(ranks: list[int]) -> float:
        return round(sum(1.0 / r for r in ranks) / len(ranks), 5)

    result = {
        "benchmark": "vs_official", "dataset": name, "split": "test", "setting": setting,
        "checkpoint": Path(checkpoint).name, "device": args.device, "threads": args.threads, "rounds": args.rounds,
        "order": "A B (official, ours) per round", "queries": len(ours_ranks),
        "test_queries": 2 * ours.ready["test_triples"],
        "official_qps": round(qps("official"), 2), "ours_qps": round(qps("ours"), 2),
        "ratio": round(qps("ours") / qps("official"), 3),
        "ranks_equal": equal, "ranks_exactly_equal": exact, "rank_mismatches": len(mismatches),
        "rank_mismatches_outside_tie_band": len(outside), "ranks_stable_across_rounds": stable,
        "triples_equal": official.ready["triples"] == ours.ready["triples"],
        "tie_rule": TIE_RULE,
        "mrr_official": mrr(official_ranks), "mrr_ours": mrr(ours_ranks),
        "official_seconds": [round(r["seconds"], 3) for r in side("official")],
        "ours_seconds": [round(r["seconds"], 3) for r in side("ours")],
        "round_ratios": [round(o["seconds"] / u["seconds"], 3) for o, u in zip(side("official"), side("ours"))],
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "official_batch_size": official.ready["batch_size"],
        "official_batch_unit": "test triples per batch (x2 queries, one entity pass each)",
        "ours_batch_size": ours.ready["batch_size"], "ours_batch_unit": "(anchor, relation) pairs per entity pass",
        "ours_entity_passes": ours.ready["entity_passes"],
        "official_threads": official.ready["threads"], "ours_threads": ours.ready["threads"],
        "torch": ours.ready["torch"], "official_torch_scatter": official.ready["torch_scatter"],
        "ultra_root": str(ultra_root), "cpu": cpu_name(), "wall_seconds": round(wall, 1),
    }
    if mismatches:
        result["first_mismatches"] = [{"query": i, "official": official_ranks[i], "ours": ours_ranks[i],
                                       "official_tie_band": [low[i], high[i]]} for i in mismatches[:5]]
    print(json.dumps(result), flush=True)
    err = sys.stderr
    print(f"\n{name} test, {result['queries']} queries, {args.device}, {args.threads} thread(s), "
          f"checkpoint {result['checkpoint']}", file=err)
    print(f"{'side':>9} {'round':>5} {'seconds':>9} {'queries/s':>10}", file=err)
    for row in rows:
        print(f"{row['side']:>9} {row['round']:>5} {row['seconds']:>9.2f} {row['queries'] / row['seconds']:>10.1f}",
              file=err)
    print(f"official {result['official_qps']:.1f} q/s, ours {result['ours_qps']:.1f} q/s, "
          f"ratio {result['ratio']:.2f}x; ranks equal: {equal} ({len(mismatches)} differ, {len(outside)} outside "
          f"the official near-tie band), MRR {result['mrr_official']} / {result['mrr_ours']}",
          file=err)


if __name__ == "__main__":
    main()
