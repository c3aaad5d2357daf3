"""Build the bundle that `bench/gpu_check.py` reads: the few files a GPU check needs, in one folder.

The device machine sees the working tree and the paths named in ``carry`` (64 MiB in all), never
``../shared``, and it has neither the MiniLM package nor a network. So the bundle holds copies of

* the raw triple files of each dataset (``data/<Class>/<version>/raw/<file>``, the data-root layout),
* their relation texts (``texts/<llm>/<text_key>.json``, the text-root layout),
* the checkpoint (``checkpoints/fusion.pth``),
* the relation text vectors of every split, precomputed here with the MiniLM encoder (or the encoder
  given), as ``[R', 64]`` float32 tensor files that ``--encoder FILE`` reads (encoder name
  ``vectors:<sha256 of the file>``; ``vectors/<text_key>.<splits>.pt``, one file per distinct relation
  vocabulary: FBNELL's test graph has 366 relation rows, its train/valid graph 200),
* optionally (``--reference``, the default) this machine's CPU ranks of the check's equality split
  (``reference.pt``: ``{"ranks": LongTensor [Q]}``), so that the device also compares its CPU against
  another machine's CPU,
* ``manifest.json``: what each file is, the sha256 of each, the encoder the vectors came from and the
  reference MRR.

It is about 8 MB for the defaults (FB15k237Inductive:v1, FBNELL, fusion.pth). Put it in a folder that
git ignores (``echo /.gpu/ >> .git/info/exclude``) so that it can be named in ``carry``:

    python bench/gpu_bundle.py --out .gpu                 # roots from ARE_DATA_ROOT / ARE_TEXT_ROOT / ARE_CHECKPOINT_ROOT
    python bench/gpu_bundle.py --out /tmp/b --no-reference

Exit status 0 on success, 2 when an input is missing (one line on stderr).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the project
    sys.path.insert(0, str(ROOT))

#: The bundle's layout version (gpu_check.py refuses another).
BUNDLE_FORMAT = 1
#: The datasets gpu_check.py uses: the equality split's dataset first, then the speed dataset.
DEFAULT_DATASETS = ("FB15k237Inductive:v1", "FBNELL")
#: Which split of which dataset the reference ranks are of (gpu_check's equality step).
REFERENCE = ("FB15k237Inductive:v1", "test")
#: Pairs per entity pass of the reference ranks: the CUDA default, so the device compares like with like.
REFERENCE_BATCH_SIZE = 64
SPLITS = ("train", "valid", "test")


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_file(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (folders made as needed); returns ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def build(out: Path, options, *, datasets: tuple[str, ...] = DEFAULT_DATASETS, checkpoint: str = "fusion",
          encoder="minilm", reference: bool = True, log=print) -> dict:
    """Write the bundle into ``out`` (emptied first when it holds a bundle); returns the manifest dict.

    options: a resolved :class:`search.options.LoadOptions` (roots, cache, offline); encoder: an
    encoder spec (``minilm``, ``jina:PATH``, see ``are_model.text.build_encoder``) or a TextEncoder
    object (name, dim 64, encode(texts) -> [n, 64]); reference: also rank the equality split on this
    CPU (FB15k237Inductive:v1 test, ~25 s here). Raises FileNotFoundError / FileExistsError, are_model's
    DatasetError / CheckpointError / MissingExtraError when an input is missing.
    """
    import torch

    from are_model.checkpoint import load_checkpoint
    from are_model.data import get_spec, load_dataset
    from are_model.evaluate import rank_queries, ranking_metrics
    from are_model.pipeline import TextOptions, prepare_split
    from are_model.text import build_encoder, load_relation_texts, relation_embeddings
    from are_model.text.relation_texts import DEFAULT_LLM
    from search.inputs.checkpoints import resolve_checkpoint

    if out.exists():
        if not (out / "manifest.json").is_file() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a bundle (no manifest.json): refusing to empty it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if isinstance(encoder, str):
        encoder = build_encoder(encoder, jina_path=options.jina_path)
    manifest: dict = {"format": BUNDLE_FORMAT, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "encoder": None, "llm": DEFAULT_LLM, "datasets": {}, "checkpoint": None, "reference": None,
                      "files": {}}

    ckpt = resolve_checkpoint(checkpoint, root=options.checkpoint_root,
                              cache_dir=Path(options.cache_dir) / "checkpoints", download=options.download)
    ckpt_rel = Path("checkpoints") / ckpt.name
    copy_file(ckpt, out / ckpt_rel)
    manifest["checkpoint"] = ckpt_rel.as_posix()

    for name in datasets:
        start = time.perf_counter()
        spec = get_spec(name)
        data = load_dataset(name, options.data_root, cache_dir=options.cache_dir, download=options.download)
        raw = spec.raw_dir(options.data_root)
        raw_rel = spec.raw_dir("data")
        for raw_file in spec.files:
            source = raw / raw_file.local_name
            if source.is_file():
                copy_file(source, out / raw_rel / raw_file.local_name)
            elif not raw_file.optional:
                raise FileNotFoundError(f"{name}: {source} is missing")
        # The relation texts: gpu_check passes the bundle's texts/ as the text root (the vectors encoder
        # bypasses them, but prepare_split reads the file first).
        text_rel = Path("texts") / DEFAULT_LLM / f"{data.text_key}.json"
        texts = load_relation_texts(data.text_key, options.text_root, download=options.download, cache_dir=options.cache_dir)
        text_source = Path(options.text_root or "", DEFAULT_LLM, f"{data.text_key}.json")
        if options.text_root is None or not text_source.is_file():  # downloaded into the cache
            text_source = Path(options.cache_dir) / DEFAULT_LLM / f"{data.text_key}.json"
        copy_file(text_source, out / text_rel)
        # One vectors file per distinct relation vocabulary (splits that share one share the file).
        groups: dict[tuple[str, ...], list[str]] = {}
        for split in SPLITS:
            groups.setdefault(tuple(data.split(split).relation_names), []).append(split)
        vectors: dict[str, str] = {}
        for names, splits in groups.items():
            tensor = relation_embeddings(list(names), texts, encoder, cache_dir=options.cache_dir)
            if tensor.shape != (2 * len(names), 64):
                raise RuntimeError(f"{name} {splits[0]}: vectors of shape {list(tensor.shape)}")
            rel = Path("vectors") / f"{data.text_key}.{'-'.join(splits)}.pt"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            torch.save(tensor.contiguous().clone(), out / rel)
            manifest["encoder"] = encoder.name
            for split in splits:
                vectors[split] = rel.as_posix()
        manifest["datasets"][data.name] = {"raw": raw_rel.as_posix(), "text_key": data.text_key, "vectors": vectors}
        log(f"gpu_bundle: {data.name}: raw files, texts, {len(groups)} vectors file(s) in {time.perf_counter() - start:.1f}s")

    if reference:
        start = time.perf_counter()
        name, split = REFERENCE
        entry = manifest["datasets"][get_spec(name).name]
        data = load_dataset(name, str(out / "data"), cache_dir=options.cache_dir, download=False)
        prepared = prepare_split(data, split, text=TextOptions(root=str(out / "texts"), encoder=str(out / entry["vectors"][split]),
                                                               download=False))
        model, _ = load_checkpoint(out / manifest["checkpoint"])
        ranks = rank_queries(model, prepared.graph, prepared.queries, prepared.filters, batch_size=REFERENCE_BATCH_SIZE)
        torch.save({"ranks": ranks.cpu()}, out / "reference.pt")
        manifest["reference"] = {"file": "reference.pt", "dataset": data.name, "split": split,
                                 "batch_size": REFERENCE_BATCH_SIZE, "mrr": ranking_metrics(ranks)["mrr"],
                                 "num_queries": int(ranks.numel()), "torch": torch.__version__}
        log(f"gpu_bundle: reference CPU ranks of {data.name} {split} in {time.perf_counter() - start:.1f}s")

    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            manifest["files"][path.relative_to(out).as_posix()] = sha256(path)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def size_bytes(folder: Path) -> int:
    """Total bytes of the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    from search.cli import add_root_arguments  # no torch yet: thread settings below still apply

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".gpu", help="the bundle folder (default: .gpu)")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--checkpoint", default="fusion", help="a .pth file or a known name (default: fusion)")
    parser.add_argument("--encoder", default="minilm", help="encoder of the precomputed vectors (default: minilm)")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip this machine's CPU reference ranks")
    add_root_arguments(parser)
    args = parser.parse_args(argv)
    from are_model.checkpoint import CheckpointError
    from are_model.data import DatasetError
    from are_model.text import MissingExtraError
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root, checkpoint_root=args.checkpoint_root,
                                  cache_dir=args.cache_dir, offline=args.offline or None)
    out = Path(args.out).resolve()
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        manifest = build(out, options, datasets=tuple(args.datasets), checkpoint=args.checkpoint, encoder=args.encoder,
                         reference=args.reference, log=log)
    except (FileNotFoundError, FileExistsError, DatasetError, CheckpointError, MissingExtraError) as error:
        print(f"gpu_bundle: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    total = size_bytes(out)
    print(json.dumps({"bundle": str(out), "bytes": total, "mib": round(total / 2**20, 2), "encoder": manifest["encoder"],
                      "files": len(manifest["files"]), "reference_mrr": (manifest["reference"] or {}).get("mrr")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
