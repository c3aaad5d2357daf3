"""The GPU campaign, prepared: a timed campaign over every graph of a bundle on one CUDA device, one JSON line.

Two commands. ``bundle`` (here, with ``../shared``) builds the folder the device machine reads; ``run`` (there)
runs the campaign from it and writes the campaign report as files::

    python bench/gpu_campaign.py bundle --out .gpuc          # graphs chosen to fit the carry limit (below)
    python bench/gpu_campaign.py run --bundle .gpuc --device cuda --out $OUT/gpu_campaign
    python bench/gpu_campaign.py run --bundle .gpuc --dry      # the CPU dry mode of the test suite

**The bundle** holds what ``bench/gpu_bundle.py`` puts in one (the raw triple files of each graph, their relation
texts, ``fusion.pth``; see that script) and ``table.pt``: the text encoder's vector of every relation text of
every split of every graph (``{"name", "texts", "vectors" [T, 64]}``). The device machine lacks the MiniLM
packages; there the table stands in for the encoder (:func:`are_model.text.stand_in_encoder`), so the
campaign's text vectors are MiniLM's, bit for bit the ones the bundle's builder got. The device tool carries
64 MiB (:data:`CARRY_LIMIT`) in all, the wheels of the packages that machine lacks included
(:data:`WHEELS_RESERVE`, see ``bench/gpu_check.py``); :func:`choose_graphs` takes the graphs of the data root
smallest first while their raw files fit what is left (:data:`BUNDLE_LIMIT`, with the checkpoint and a
margin for texts and the table). On ``../shared/datasets`` of 2026-12-05 that is every graph but FB15k237
(23 MiB of raw files): ``bundle`` prints the graphs it took and left out with their sizes.

**The run** launches one campaign (fixed mode, ``fusion.pth``, one study per graph, racing on: ``--pruner
paired``, the default) with a time budget (``--time-budget``, default ``4m``: a device call may take 9 minutes,
and the wheels, the start and the report -- 1000 bootstrap resamples -- come on top), ``settings_per_pass`` K (default 4 on CUDA, where K
settings share an entity pass at a lower cost per setting; 1 on the CPU, where they do not), then writes the
campaign report (``campaign.md``, ``campaign.csv``, figures, each study's report) under ``--out``. It prints
one JSON line: per graph ``pairs_per_s`` (the cost probe: validation pairs per second of one entity pass),
``valid_pairs`` (the sample the time budget set, or None), ``trials`` (finished), ``seconds`` (the study's
time: set-up and trials), ``best`` / ``own`` / ``fixed_0.2_0.8`` test MRRs and ``vs_own`` /
``vs_fixed_0.2_0.8`` (test MRR difference best − baseline with its 95 % paired-bootstrap interval and
verdict); and the campaign's wall seconds, device, the settings used and the report folder.

``--dry`` runs on the CPU in seconds: one tiny graph (the bundle's smallest), a 2-trial budget on 32
validation pairs, 200 bootstrap resamples; ``tests/test_gpu_campaign.py`` runs it so that it cannot rot.

The device command (``.whl``: the wheels ``bench/gpu_check.py`` names; ``.gpuc``: the bundle; both ignored by
git and named in ``carry``)::

    run(command="set -o pipefail; export PYTHONUNBUFFERED=1; "
                "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
                ".whl/*.whl && export PYTHONPATH=/tmp/site; nvidia-smi -L; "
                "python3 bench/gpu_campaign.py run --bundle .gpuc --device cuda --out $OUT/gpu_campaign "
                "2>&1 | tee $OUT/gpu_campaign.log", carry=[".gpuc", ".whl"], timeout_s=540)

Exit status: 0 when every study has a complete trial, 1 otherwise, 2 for a bad bundle, an unavailable device
or bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the project
    sys.path.insert(0, str(ROOT))
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

#: What the device tool carries in all (bytes).
CARRY_LIMIT = 64 * 2**20
#: What the wheels of the packages the device machine lacks take of it: bench/gpu_check.py gives 12 MB for them
#: with its ~6 MB bundle, so about 6 MB; tests/test_gpu_campaign.py checks .whl where it exists.
WHEELS_RESERVE = 8 * 2**20
#: What the bundle may take.
BUNDLE_LIMIT = CARRY_LIMIT - WHEELS_RESERVE
#: Room kept in the bundle for each graph's texts, vectors and table rows besides its raw files.
PER_GRAPH_MARGIN = 192 * 2**10
#: The table of text vectors in a bundle.
TABLE = "table.pt"
CAMPAIGN = "gpu"
SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# the bundle


def raw_bytes(name: str, data_root: str | Path) -> int | None:
    """Bytes of dataset ``name``'s raw files under ``data_root`` (None when a required one is missing)."""
    from are_model.data import get_spec

    spec = get_spec(name)
    total = 0
    for raw in spec.files:
        path = Path(spec.raw_dir(str(data_root))) / raw.local_name
        if path.is_file():
            total += path.stat().st_size
        elif not raw.optional:
            return None
    return total


def choose_graphs(data_root: str | Path, checkpoint_bytes: int, limit: int = BUNDLE_LIMIT,
                  names: list[str] | None = None) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(graphs taken, graphs left out), each ``(canonical name, raw bytes)``: the present graphs of the catalogue
    (or ``names``), smallest first, while raw files + :data:`PER_GRAPH_MARGIN` each + the checkpoint fit
    ``limit`` bytes. Graphs whose files are missing are in neither list."""
    from are_model.data import get_spec
    from are_model.data.registry import GROUPS

    candidates = names if names is not None else list(dict.fromkeys(n for group in GROUPS.values() for n in group))
    present = []
    for name in dict.fromkeys(get_spec(n).name for n in candidates):
        size = raw_bytes(name, data_root)
        if size is not None:
            present.append((name, size))
    present.sort(key=lambda item: (item[1], item[0]))
    taken, left, used = [], [], checkpoint_bytes
    for name, size in present:
        if not left and used + size + PER_GRAPH_MARGIN <= limit:
            taken.append((name, size))
            used += size + PER_GRAPH_MARGIN
        else:
            left.append((name, size))
    return taken, left


class Recorder:
    """A text encoder that encodes with ``encoder`` and keeps every text's vector (``table``)."""

    dim = 64

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.name = f"record:{encoder.name}"  # no cache hit: every text is encoded, so recorded
        self.table: dict[str, "object"] = {}

    def encode(self, texts: list[str]):
        vectors = self.encoder.encode(texts)
        for text, row in zip(texts, vectors):
            self.table.setdefault(text, row.detach().clone())
        return vectors


class TableEncoder:
    """The stand-in of the encoder a bundle's table came from: ``name`` that encoder's, ``encode(texts)`` the
    table's rows ([n, 64]); a text not in the table is a KeyError naming it."""

    dim = 64

    def __init__(self, path: Path) -> None:
        import torch

        data = torch.load(path, map_location="cpu", weights_only=True)
        self.name = str(data["name"])
        self.rows = {text: k for k, text in enumerate(data["texts"])}
        self.vectors = data["vectors"].to(torch.float32)

    def encode(self, texts: list[str]):
        import torch

        missing = [t for t in texts if t not in self.rows]
        if missing:
            raise KeyError(f"{TABLE}: no vector for the text {missing[0]!r} (rebuild the bundle)")
        return self.vectors[torch.tensor([self.rows[t] for t in texts], dtype=torch.long)].clone()


def build_bundle(out: Path, options, *, datasets: list[str], encoder="minilm", log=print) -> dict:
    """Write the campaign bundle of ``datasets`` into ``out`` (see the module doc); returns its manifest.

    options: a resolved :class:`search.options.LoadOptions`; encoder: a spec (``minilm``) or an encoder object
    (``name``, ``encode``). Raises what ``bench/gpu_bundle.build`` raises for a missing input.
    """
    import torch

    import gpu_bundle
    from are_model.text import build_encoder

    if isinstance(encoder, str):
        encoder = build_encoder(encoder, jina_path=options.jina_path)
    recorder = Recorder(encoder)
    manifest = gpu_bundle.build(out, options, datasets=tuple(datasets), encoder=recorder, reference=False, log=log)
    texts = sorted(recorder.table)
    torch.save({"name": encoder.name, "texts": texts,
                "vectors": torch.stack([recorder.table[t] for t in texts]).to(torch.float32).contiguous()},
               out / TABLE)
    manifest.update(encoder=encoder.name, table=TABLE, campaign=True)
    manifest["files"][TABLE] = gpu_bundle.sha256(out / TABLE)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


# ---------------------------------------------------------------------------------------------
# the run


def _graph_row(report_row: dict, study, cost: dict | None) -> dict:
    """The JSON line's entry of one graph: speed from the cost probe, trials and time, test MRRs and intervals."""
    from search.campaign.timing import trial_seconds
    from search.study.budget import FINISHED

    trials = study.get_trials(deepcopy=False)
    entry = {"study": study.study_name,
             "pairs_per_s": None if not cost else round(1.0 / cost["seconds_per_pair"], 2),
             "valid_pairs": None if not cost else cost.get("valid_pairs"),
             "trials": sum(1 for t in trials if t.state in FINISHED),
             "seconds": round(trial_seconds(trials)[0] + float((cost or {}).get("setup_s", 0.0)), 1)}
    best = report_row.get("best")
    if best is None:
        entry["note"] = report_row.get("note")
        return entry
    entry["best"] = {"weights": best["weights"], "test_mrr": best["test_mrr"]}
    names = {"checkpoint": "own"}
    for key, base in report_row["baselines"].items():
        slug = names.get(key, "fixed_" + key.replace("/", "_")) if key != "0/0" else "none_0_0"
        delta = report_row["deltas"][key]
        entry[slug] = {"weights": base["weights"], "test_mrr": base["test_mrr"]}
        entry[f"vs_{slug}"] = {"delta": delta["delta"], "low": delta["low"], "high": delta["high"],
                               "verdict": delta["verdict"]}
    return entry


def run(bundle: Path, out: Path, *, device: str, dry: bool = False, time_budget: str = "4m",
        settings_per_pass: int | None = None, trials: int = 40, n_boot: int = 1000, only: list[str] | None = None,
        log=print) -> dict:
    """Run the campaign of ``bundle`` on ``device`` and write its report into ``out`` (see the module doc);
    returns the JSON line's object. only: these graphs of the bundle (None: all). Raises ValueError for a
    bundle that is not a campaign bundle or a graph it does not hold."""
    import optuna

    import search.campaign as campaign
    from are_model.text import stand_in_encoder
    from search.campaign.timing import COST_ATTR
    from search.options import LoadOptions

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    if not manifest.get("campaign") or not (bundle / TABLE).is_file():
        raise ValueError(f"{bundle}: not a campaign bundle (no {TABLE}); build one with 'gpu_campaign.py bundle'")
    table = TableEncoder(bundle / TABLE)
    stand_in_encoder(table.name, table)
    datasets = list(manifest["datasets"])
    if only:
        stray = [name for name in only if name not in datasets]
        if stray:
            raise ValueError(f"{bundle}: no graph {stray[0]!r} in the bundle (it holds {', '.join(datasets)})")
        datasets = [name for name in datasets if name in only]
    if dry:  # one tiny graph, two trials on a few pairs
        datasets = datasets[:1]
        trials, time_budget, n_boot = 2, "10m", 200
    per_pass = settings_per_pass or (4 if device.startswith("cuda") else 1)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'campaign.db'}"
    cache = Path(tempfile.mkdtemp(prefix="gpuc-cache-"))
    options = LoadOptions(data_root=str(bundle / "data"), text_root=str(bundle / "texts"),
                          checkpoint_root=str(bundle / "checkpoints"), cache_dir=str(cache), encoder=table.name,
                          offline=True, device=device, threads=1 if dry else None)
    start = time.perf_counter()
    result = campaign.launch(name=CAMPAIGN, datasets=datasets, checkpoint="fusion", trials=trials,
                             time_budget=time_budget, settings_per_pass=per_pass, pruner="paired",
                             valid_pairs=32 if dry else None, storage=storage, options=options)
    ran = time.perf_counter() - start
    log(f"gpu_campaign: campaign done in {ran:.1f}s; report next")
    report = campaign.report(CAMPAIGN, out=out / "report", n_boot=n_boot, storage=storage, options=options)
    rows = {row["study"]: row for row in report.rows}
    graphs = {}
    for entry in result.studies:
        study = optuna.load_study(study_name=entry.study, storage=storage)
        graphs[study.study_name.rsplit("/", 1)[0]] = _graph_row(rows[entry.study], study,
                                                                 study.user_attrs.get(COST_ATTR))
    return {"device": device, "dry": dry, "time_budget": time_budget, "settings_per_pass": per_pass,
            "pruner": "paired", "trials_cap": trials, "campaign_s": round(ran, 1),
            "wall_s": round(time.perf_counter() - start, 1), "graphs": graphs,
            "report": str(out / "report"), "storage": storage}


def main(argv: list[str] | None = None) -> int:
    from search.cli import add_root_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("bundle", help="build the campaign bundle (here, with ../shared)")
    make.add_argument("--out", default=".gpuc", help="the bundle folder (default: .gpuc)")
    make.add_argument("--datasets", nargs="+", help="these graphs (default: every present graph that fits)")
    make.add_argument("--checkpoint", default="fusion")
    make.add_argument("--encoder", default="minilm")
    add_root_arguments(make)
    go = commands.add_parser("run", help="run the campaign from a bundle (on the device)")
    go.add_argument("--bundle", default=".gpuc")
    go.add_argument("--device", default="cuda")
    go.add_argument("--out", default="gpu_campaign_out", help="report and study storage folder")
    go.add_argument("--time-budget", default="4m", help="the campaign's time budget (default 4m)")
    go.add_argument("--datasets", nargs="+", help="only these graphs of the bundle (canonical names)")
    go.add_argument("--settings-per-pass", type=int, help="K (default: 4 on CUDA, 1 on the CPU)")
    go.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the report (default 1000)")
    go.add_argument("--dry", action="store_true", help="CPU, one tiny graph, 2 trials, 32 pairs")
    args = parser.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if args.command == "bundle":
        return _bundle_command(args, log)
    if args.dry:
        args.device = "cpu"
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            log("gpu_campaign: error: CUDA is not available here (use --dry for the CPU dry mode)")
            return 2
    from search.errors import AreSearchError

    try:
        line = run(Path(args.bundle).resolve(), Path(args.out).resolve(), device=args.device, dry=args.dry,
                   time_budget=args.time_budget, settings_per_pass=args.settings_per_pass, n_boot=args.n_boot,
                   only=args.datasets, log=log)
    except (ValueError, FileNotFoundError, AreSearchError) as error:
        log(f"gpu_campaign: error: {' '.join(str(error).split())}")
        return 2
    print(json.dumps(line))
    for name, graph in line["graphs"].items():
        log(f"{name:28s} {graph['pairs_per_s'] or 0:9.1f} pairs/s  {graph['trials']:3d} trials  {graph['seconds']:7.1f} s  "
            + (f"best {graph['best']['test_mrr']:.4f} own {graph['own']['test_mrr']:.4f}" if "best" in graph else
               graph.get("note") or ""))
    return 0 if all("best" in graph for graph in line["graphs"].values()) else 1


def _bundle_command(args, log) -> int:
    import gpu_bundle
    from are_model.checkpoint import CheckpointError
    from are_model.data import DatasetError
    from are_model.text import MissingExtraError
    from search.inputs.checkpoints import resolve_checkpoint
    from search.options import LoadOptions

    options = LoadOptions.resolve(data_root=args.data_root, text_root=args.text_root,
                                  checkpoint_root=args.checkpoint_root, cache_dir=args.cache_dir,
                                  offline=args.offline or None)
    try:
        ckpt = resolve_checkpoint(args.checkpoint, root=options.checkpoint_root,
                                  cache_dir=Path(options.cache_dir) / "checkpoints", download=options.download)
        taken, left = choose_graphs(options.data_root, ckpt.stat().st_size, names=args.datasets)
        if not taken:
            raise FileNotFoundError("no graph of the data root fits the bundle")
        out = Path(args.out).resolve()
        build_bundle(out, options, datasets=[name for name, _ in taken], encoder=args.encoder, log=log)
    except (FileNotFoundError, FileExistsError, DatasetError, CheckpointError, MissingExtraError) as error:
        log(f"gpu_campaign: error: {' '.join(str(error).split())}")
        return 2
    total = gpu_bundle.size_bytes(out)
    print(json.dumps({"bundle": str(out), "bytes": total, "mib": round(total / 2**20, 2),
                      "limit_mib": round(BUNDLE_LIMIT / 2**20, 2), "fits": total <= BUNDLE_LIMIT,
                      "graphs": {name: size for name, size in taken},
                      "left_out": {name: size for name, size in left}}))
    return 0 if total <= BUNDLE_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
