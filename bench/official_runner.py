"""The official ULTRA side of bench/vs_official.py: a worker process that runs DeepGraphLearning/ULTRA's own
code, unmodified and imported from its checkout (``--ultra-root``, read-only), never from this project.

Run by bench/vs_official.py with the interpreter of the separate environment it sets up
(``.cache/ultra-official-venv``, see that script's docstring); this file imports nothing from are-search and
nothing of ULTRA is copied here. What it calls, all ULTRA's own:

* the dataset: ``ultra.util.build_dataset`` on ULTRA's ``config/<setting>/inference.yaml`` (rendered with
  ``ultra.util.load_config``), i.e. ULTRA's dataset class and its ``process()`` / ``build_relation_graph``;
* the model: ``ultra.models.Ultra`` built from that config, weights ``torch.load(ckpt)["model"]`` as run.py does;
* the evaluation: ``test()`` of ``script/run.py`` (imported as a module; its ``__main__`` block does not run),
  with its batch size ``cfg.train.batch_size``, its ``tasks.all_negative`` / ``tasks.strict_negative_mask`` /
  ``tasks.compute_ranking`` and the fused rspmm kernel (``ultra/rspmm``, JIT-built by torch's
  cpp_extension into ``TORCH_EXTENSIONS_DIR``).

The one piece of run.py that is not a function, the filter graph of its ``__main__`` block, is rebuilt here
(``filter_graph``, written after run.py's "filtering for inductive datasets" branch): ILPC/Ingram filter with
the inference graph + valid + test targets, the other inductive graphs with the test graph + test targets,
transductive graphs with all target triples. Per-query ranks are recorded by wrapping ``ultra.tasks.compute_ranking`` (the wrapper
returns the very tensor it got) and ``ultra.tasks.all_negative`` (to learn which triples each batch holds:
``test()`` draws its batches through a ``DistributedSampler``, i.e. in a seeded shuffled order). The
compute_ranking wrapper also counts, from the same scores, each rank's near-tie band [low, high]: low counts
only candidates scoring above the answer's by more than 1e-5 + 1e-4 * max|row score|, high also those within
that tolerance below it (a few elementwise ops on the [batch, entities] score matrix, inside the timed pass,
negligible next to the forward pass that produced it: [batch, entities, 64] states through 12 layers).
Everything recorded stays on the device until the pass has ended.

Data: ULTRA's classes read ``<root>/<their layout>/raw/<file>``; the are-search data root is
``<Class>/<version>/raw/<file>`` with the same file names. ``--work-dir`` gets a writable root whose ``raw``
folders are symlinks to the data root's files (ULTRA writes ``processed/`` beside them), so nothing is
downloaded and the data root is never written.

torch >= 2.6 loads with weights_only=True by default, which refuses the PyG objects of ULTRA's processed
``data.pt``; this process sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (torch's own switch) as torch < 2.6 behaved.

Protocol (stdout is kept for it; everything else, ULTRA's prints included, goes to stderr): one JSON line
``{"ready": ...}`` after loading and a warm-up batch (sizes, batch size, threads, the target triples), then
for each line ``run`` on stdin one timed pass of ``test()`` over the (limited) test split, answered with one
JSON line: seconds, queries, and the ranks and their near-tie bands in the are-search order (tail queries of
the targets in target order, then head queries).
``quit`` (or EOF) ends it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path

# ULTRA's two dataset *functions* (not classes) wrap PyG datasets: their raw folder and files under the root.
# Scores within SCORE_ATOL + SCORE_RTOL * max|row score| of the answer's are near-ties (as in bench/gpu_check.py).
SCORE_ATOL, SCORE_RTOL = 1e-5, 1e-4

_FUNCTION_DATASETS = {"FB15k237": ("fb15k237/FB15k-237/raw", ["entities.dict", "relations.dict", "test.txt",
                                                              "train.txt", "valid.txt"]),
                      "WN18RR": ("wn18rr/raw", ["train.txt", "valid.txt", "test.txt"])}


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        if target.is_symlink() and os.readlink(target) == str(source):
            return
        target.unlink()
    target.symlink_to(source)


def layout_data(datasets_module, cls_name: str, version: str | None, data_root: Path, work_root: Path) -> None:
    """Symlink the data root's raw files of one dataset into ULTRA's layout under work_root."""
    ours = data_root / cls_name / version / "raw" if version else data_root / cls_name / "raw"
    if cls_name in _FUNCTION_DATASETS:
        folder, files = _FUNCTION_DATASETS[cls_name]
        raw_dir, names = work_root / folder, files
    else:
        cls = getattr(datasets_module, cls_name, None)
        if cls is None:
            raise SystemExit(f"official_runner: ULTRA has no dataset class {cls_name!r}")
        probe = cls.__new__(cls)  # only to read its raw_dir / raw_file_names properties (no __init__: no I/O)
        probe.root = str(work_root)
        if version is not None:
            probe.version = version
        try:
            raw_dir, names = Path(probe.raw_dir), list(probe.raw_file_names)
        except AttributeError as exc:
            raise SystemExit(f"official_runner: cannot lay out {cls_name} for ULTRA ({exc}); not supported here")
    for name in names:
        source = ours / name
        if not source.exists():
            raise SystemExit(f"official_runner: {source} is missing (ULTRA's {cls_name} reads {name})")
        _link(source.resolve(), raw_dir / name)


def filter_graph(cfg, dataset, valid_data, test_data, Data, torch):
    """The test filter graph of run.py's __main__ (see the module docstring)."""
    cls = cfg.dataset["class"]
    if cfg.task["name"] == "InductiveInference":
        if "ILPC" in cls or "Ingram" in cls:
            edges = [valid_data.edge_index, valid_data.target_edge_index, test_data.target_edge_index]
            types = [valid_data.edge_type, valid_data.target_edge_type, test_data.target_edge_type]
        else:
            edges = [test_data.edge_index, test_data.target_edge_index]
            types = [test_data.edge_type, test_data.target_edge_type]
        return Data(edge_index=torch.cat(edges, dim=1), edge_type=torch.cat(types), num_nodes=test_data.num_nodes)
    return Data(edge_index=dataset._data.target_edge_index, edge_type=dataset._data.target_edge_type,
                num_nodes=dataset[0].num_nodes)


def common_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every official worker takes (this one, bench/official_finetune_runner.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--ultra-root", required=True)
    parser.add_argument("--dataset", required=True, help="are-search canonical name, Class[:version]")
    parser.add_argument("--setting", required=True, choices=["inductive", "transductive"])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--threads", type=int, required=True)
    return parser


def start_worker(args: argparse.Namespace):
    """(protocol stream, ULTRA's script/run.py as a module, work dir): fd 1 kept for the protocol and everything
    printed by ULTRA, torch or the compiler sent to stderr; torch's threads, rspmm's build folder and ULTRA's
    checkout on sys.path set up; run.py loaded (its functions defined, its __main__ block not run)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    work = Path(args.work_dir).resolve()
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(work / "torch_extensions"))
    # ULTRA was written for torch < 2.6, whose torch.load unpickled anything: its datasets reload their own
    # processed data.pt (PyG Data objects) with a plain torch.load, which torch >= 2.6 refuses by default.
    # The files are the ones ULTRA just wrote under --work-dir (and the checkpoint is the one ours loads).
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    import torch

    torch.set_num_threads(args.threads)
    ultra_root = Path(args.ultra_root).resolve()
    sys.path.insert(0, str(ultra_root))
    spec = importlib.util.spec_from_file_location("ultra_official_run", ultra_root / "script" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    return proto, run, work


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="test triples per batch (default: the config's)")
    parser.add_argument("--limit-triples", type=int, default=None)
    args = parser.parse_args()

    proto, run, work = start_worker(args)  # run.test() is what is timed
    import torch

    def reply(payload: dict) -> None:
        proto.write(json.dumps(payload) + "\n")
        proto.flush()

    ultra_root = Path(args.ultra_root).resolve()
    from torch_geometric.data import Data
    from ultra import datasets, tasks, util
    from ultra.models import Ultra

    cls_name, _, version = args.dataset.partition(":")
    version = version or None
    data_root = work / "data"
    layout_data(datasets, cls_name, version, Path(args.data_root), data_root)
    gpus = "[0]" if args.device.startswith("cuda") else "null"
    if args.device.startswith("cuda") and ":" in args.device:
        gpus = f"[{args.device.split(':')[1]}]"
    context = {"dataset": cls_name, "version": version, "gpus": util.literal_eval(gpus), "epochs": 0,
               "bpe": None, "ckpt": str(Path(args.checkpoint).resolve())}
    cfg = util.load_config(str(ultra_root / "config" / args.setting / "inference.yaml"), context=context)
    cfg.dataset.root = str(data_root)
    if cfg.dataset.get("version") is None:
        cfg.dataset.pop("version", None)
    if args.batch_size:
        cfg.train.batch_size = args.batch_size
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="official %(message)s")
    logger = logging.getLogger("ultra-official")

    start = time.perf_counter()
    dataset = util.build_dataset(cfg)
    device = util.get_device(cfg)
    valid_data, test_data = dataset[1].to(device), dataset[2].to(device)
    filtered = filter_graph(cfg, dataset, valid_data, test_data, Data, torch).to(device)
    model = Ultra(rel_model_cfg=cfg.model.relation_model, entity_model_cfg=cfg.model.entity_model)
    state = torch.load(cfg.checkpoint, map_location="cpu")
    model.load_state_dict(state["model"])
    model = model.to(device)
    load_seconds = time.perf_counter() - start

    total = test_data.target_edge_index.shape[1]
    limit = total if args.limit_triples is None else min(args.limit_triples, total)
    part = test_data.clone()
    part.target_edge_index = test_data.target_edge_index[:, :limit]
    part.target_edge_type = test_data.target_edge_type[:limit]

    recorded: dict[str, list] = {"batches": [], "ranks": [], "low": [], "high": []}
    all_negative, compute_ranking = tasks.all_negative, tasks.compute_ranking

    def recording_all_negative(data, batch):
        recorded["batches"].append(batch)
        return all_negative(data, batch)

    def recording_compute_ranking(pred, target, mask=None):
        ranking = compute_ranking(pred, target, mask)
        # The near-tie band of each rank (not used by test()): candidates whose score is within
        # SCORE_ATOL + SCORE_RTOL * max|row| of the answer's could rank either side of it in another
        # implementation's float rounding. Kept on the device; a few elementwise ops on [B, N].
        pos = pred.gather(-1, target.unsqueeze(-1))
        mask = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask
        tol = SCORE_ATOL + SCORE_RTOL * pred.abs().amax(dim=-1, keepdim=True)
        recorded["low"].append(((pred > pos + tol) & mask).sum(-1) + 1)
        recorded["high"].append(((pred >= pos - tol) & mask).sum(-1) + 1)
        recorded["ranks"].append(ranking)
        return ranking

    tasks.all_negative, tasks.compute_ranking = recording_all_negative, recording_compute_ranking

    def one_pass(data) -> tuple[float, "torch.Tensor", "torch.Tensor", "torch.Tensor"]:
        for values in recorded.values():
            values.clear()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        begin = time.perf_counter()
        run.test(cfg, model, data, device=device, logger=logger, filtered_data=filtered)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - begin
        # test() ranks tails then heads per batch: entries 0, 2, 4... are tail ranks, 1, 3, 5... head ranks.
        batches = torch.cat(recorded["batches"]).cpu()                            # [n, 3] as (h, t, r)
        n = data.target_edge_index.shape[1]
        targets = torch.stack([data.target_edge_index[0], data.target_edge_index[1], data.target_edge_type], 1).cpu()
        positions: dict[tuple, list[int]] = {}
        for i, row in enumerate(targets.tolist()):
            positions.setdefault(tuple(row), []).append(i)
        order = torch.tensor([positions[tuple(row)].pop(0) for row in batches.tolist()])
        out = []
        for key in ("ranks", "low", "high"):
            values = torch.zeros(2 * n, dtype=torch.long)
            values[order] = torch.cat(recorded[key][0::2]).cpu()
            values[n + order] = torch.cat(recorded[key][1::2]).cpu()
            out.append(values)
        return seconds, *out

    # Warm-up: builds (or loads) the rspmm extension and touches every code path once.
    warm = test_data.clone()
    warm.target_edge_index = test_data.target_edge_index[:, :min(limit, cfg.train.batch_size)]
    warm.target_edge_type = test_data.target_edge_type[:min(limit, cfg.train.batch_size)]
    begin = time.perf_counter()
    one_pass(warm)
    warm_seconds = time.perf_counter() - begin
    triples = torch.stack([part.target_edge_index[0], part.target_edge_index[1], part.target_edge_type], 1).cpu()
    reply({"ready": True, "load_seconds": round(load_seconds, 3), "warmup_seconds": round(warm_seconds, 3),
           "num_nodes": int(test_data.num_nodes), "num_relations": int(test_data.num_relations),
           "test_triples": total, "triples": triples.tolist(), "batch_size": int(cfg.train.batch_size),
           "threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__,
           "torch_scatter": _torch_scatter_kind()})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "run":
            reply({"error": f"unknown command {command!r}"})
            continue
        seconds, ranks, low, high = one_pass(part)
        reply({"seconds": seconds, "queries": int(ranks.numel()), "ranks": ranks.tolist(), "tie_low": low.tolist(),
               "tie_high": high.tolist()})


def _torch_scatter_kind() -> str:
    import torch_scatter

    return "shim" if getattr(torch_scatter, "ARE_SHIM", False) else getattr(torch_scatter, "__version__", "?")


if __name__ == "__main__":
    main()
