"""The official ULTRA side of bench/finetune_vs_official.py: one fine-tuning run of DeepGraphLearning/ULTRA's own
code, unmodified and imported from its checkout (``--ultra-root``, read-only), in a process of its own.

Run by bench/finetune_vs_official.py with the interpreter of the official environment (set up by
bench/vs_official.py, see its docstring); it imports nothing from are-search and copies nothing of ULTRA. It does
what ``script/run.py``'s ``__main__`` block does, in the same order, with ULTRA's own functions:

1. ``torch.manual_seed(seed)`` (run.py: ``args.seed + rank``, rank 0 here);
2. the config ``config/<setting>/inference.yaml`` rendered by ``ultra.util.load_config`` with the dataset,
   version, ``epochs``, ``bpe`` (batches per epoch; ``null`` is a full pass), ``gpus: null`` and the checkpoint;
   the dataset root pointed at a folder of symlinks to the are-search data root's raw files
   (bench/official_runner.py ``layout_data``);
3. ``ultra.util.build_dataset``, ``ultra.models.Ultra`` with the checkpoint's ``model`` state;
4. the filter graphs of run.py (``filter_graph`` of bench/official_runner.py for the test; for validation
   the training graph plus the validation targets, or the test one for ILPC / InGram, as run.py);
5. ``train_and_validate`` of run.py (AdamW lr 5e-4 of the config, batch 16, 256 strict negatives, adversarial
   temperature 1; its DataLoader draws batches through a ``DistributedSampler``, shuffled with its own seed 0
   and the epoch, whatever the run's seed), in a working folder of this process's own, where it writes
   ``model_epoch_<n>.pth`` and reloads the best epoch by validation MRR (the folder is removed afterwards);
6. ``test`` of run.py on the test split with the test filter graph, ``return_metrics=True``.

It also runs step 6 once before fine-tuning (zero-shot), so the output shows what fine-tuning changed.
``test`` is wrapped (the very function, called through) to time it apart: the reported ``finetune_seconds``
are ``train_and_validate``'s wall time less the validation passes it makes.

Output: one JSON line on stdout (everything ULTRA prints goes to stderr): ``zero_shot`` and ``finetuned``
metrics (mrr, hits@1, hits@3, hits@10 over head and tail queries of the test split), ``finetune_seconds``,
``batches`` (what one epoch ran), ``seed``, ``threads``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_runner import common_parser, filter_graph, layout_data, start_worker  # noqa: E402  (the sibling file)

METRICS = ("mrr", "hits@1", "hits@3", "hits@10")


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--bpe", type=int, default=None, help="batches per epoch (default: a full pass)")
    args = parser.parse_args()
    proto, run, work = start_worker(args)
    import torch

    ultra_root = Path(args.ultra_root).resolve()
    from torch_geometric.data import Data
    from ultra import datasets, util
    from ultra.models import Ultra

    torch.manual_seed(args.seed)
    cls_name, _, version = args.dataset.partition(":")
    version = version or None
    data_root = work / "data"
    layout_data(datasets, cls_name, version, Path(args.data_root), data_root)
    # the template is rendered to YAML text: "null" (not Python's None, which renders "None") for no value
    context = {"dataset": cls_name, "version": version, "gpus": "null", "epochs": args.epochs,
               "bpe": args.bpe if args.bpe else "null",
               "ckpt": str(Path(args.checkpoint).resolve())}
    cfg = util.load_config(str(ultra_root / "config" / args.setting / "inference.yaml"), context=context)
    cfg.dataset.root = str(data_root)
    if cfg.dataset.get("version") is None:
        cfg.dataset.pop("version", None)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="official %(message)s")
    logger = logging.getLogger("ultra-official")

    dataset = util.build_dataset(cfg)
    device = util.get_device(cfg)
    train_data, valid_data, test_data = dataset[0].to(device), dataset[1].to(device), dataset[2].to(device)
    test_filtered = filter_graph(cfg, dataset, valid_data, test_data, Data, torch).to(device)
    if cfg.task["name"] == "InductiveInference" and not ("ILPC" in cls_name or "Ingram" in cls_name):
        val_filtered = Data(edge_index=torch.cat([train_data.edge_index, valid_data.target_edge_index], dim=1),
                            edge_type=torch.cat([train_data.edge_type, valid_data.target_edge_type])).to(device)
    else:
        val_filtered = test_filtered
    model = Ultra(rel_model_cfg=cfg.model.relation_model, entity_model_cfg=cfg.model.entity_model)
    model.load_state_dict(torch.load(cfg.checkpoint, map_location="cpu")["model"])
    model = model.to(device)

    def metrics_of(result) -> dict:
        return {key: float(result[key]) for key in METRICS}

    zero_shot = metrics_of(run.test(cfg, model, test_data, device=device, logger=logger, filtered_data=test_filtered,
                                     return_metrics=True))
    official_test, in_test = run.test, [0.0]

    def timed_test(*a, **k):
        begin = time.perf_counter()
        try:
            return official_test(*a, **k)
        finally:
            in_test[0] += time.perf_counter() - begin

    run.test = timed_test  # train_and_validate looks test() up in run.py's namespace
    # a folder of this process's own (runs may go on side by side in one work dir); removed at the end
    folder = work / f"finetune-{cls_name}-{version or 'all'}-seed{args.seed}-pid{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    triples = train_data.target_edge_index.shape[1]
    batches = args.bpe or -(-triples // cfg.train.batch_size)
    begin = time.perf_counter()
    run.train_and_validate(cfg, model, train_data, valid_data, device=device, logger=logger,
                           filtered_data=val_filtered, batch_per_epoch=cfg.train.batch_per_epoch)
    seconds = time.perf_counter() - begin - in_test[0]
    run.test = official_test
    finetuned = metrics_of(run.test(cfg, model, test_data, device=device, logger=logger, filtered_data=test_filtered,
                                    return_metrics=True))
    os.chdir(work)
    for name in os.listdir(folder):  # the epoch checkpoints run.py wrote (each the size of the model)
        if name.startswith("model_epoch_"):
            (folder / name).unlink()
    folder.rmdir()
    proto.write(json.dumps({"side": "official", "dataset": args.dataset, "seed": args.seed, "epochs": args.epochs,
                            "batches": batches, "train_triples": int(triples), "zero_shot": zero_shot,
                            "finetuned": finetuned, "finetune_seconds": round(seconds, 2),
                            "threads": torch.get_num_threads()}) + "\n")


if __name__ == "__main__":
    main()
