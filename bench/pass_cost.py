"""Benchmark: what one entity pass costs on the CPU, part by part, and how it grows with a graph's entities and edges.

    python bench/pass_cost.py [--datasets FBNELL FB15k237Inductive:v1 ... WN18RR FB15k237 CoDExMedium] [--threads 1]
                              [--plot PNG]
    python bench/pass_cost.py --from RUN.jsonl --plot PNG   # the table and figure of an earlier run's lines

For each graph (its test split's fact graph, ultra_3g, 16 (anchor, relation) rows per pass as `rank_queries`
runs on the CPU) it times, in one process, alone:

* ``pass_ms``: a whole entity pass (six layers and the MLP head; `AREModel.entity_scores` with a reused
  `Workspace`), the median of ``--repeats`` passes after one warm-up;
* its parts at the same shapes, per pass (x 6 layers where they are per layer): ``aggregate_ms`` (the Numba
  message-passing kernel: every edge reads its sender's [B, d] state, E x B x d multiply-adds), ``linear_ms`` (the
  layer's two [V*B, d] x [d, d] products), ``norm_ms`` (bias, LayerNorm, ReLU and shortcut kernel), ``head_ms``
  (the MLP head: one [V*B, d] x [d, 2d] product and its ReLU / last-layer kernel);
* the fit of every graph's pass time to ``a * V*B*L + b * E*B*L`` (dense per-entity work plus edges; least
  squares without intercept, L = 6 layers), with ``fit_ratio`` = measured / fitted per graph: a graph whose
  pass costs more than its entities and edges say shows as a ratio well above 1.

``entities`` and ``edges`` are those of the graph a test query is answered on (the test split's fact graph, inverse
edges included: for an inductive graph its inference graph, smaller than what ``are-search datasets`` counts over
all files). The fit needs three graphs or more to say anything (two fit two coefficients exactly; the table then
says so). Prints one JSON line per graph and one for the fit (``a_ns`` per entity-row-layer, ``b_ns`` per
edge-row-layer), then a table. Roots: --data-root / --checkpoint-root / --cache-dir, else ARE_DATA_ROOT,
ARE_CHECKPOINT_ROOT, ARE_CACHE_DIR. Run it with nothing else on the machine: the parts are memory-bound and feel any other load.
``--plot`` draws queries per second (rows / pass seconds) against edges, measured and fitted, one point per graph.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json
import os
import statistics
import sys
import time

DEFAULT_DATASETS = ["FBNELL", "FB15k237Inductive:v1", "Metafam", "ILPC2022:small", "CoDExSmall", "HM:3k", "WN18RR",
                    "CoDExMedium", "FB15k237"]


def _median_ms(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(name: str, model, args: argparse.Namespace) -> dict:
    """One graph's pass time and its parts (see the module docstring)."""
    import torch

    from are_model import kernels
    from are_model.data import load_dataset
    from are_model.evaluate import query_pairs
    from are_model.layers import Workspace
    from are_model.pipeline import prepare_split

    dataset = load_dataset(name, args.data_root, cache_dir=args.cache_dir, download=False)
    prepared = prepare_split(dataset, "test")
    graph, batch = prepared.graph, args.batch_size
    pairs = query_pairs(prepared.queries, graph.num_nodes)
    rows = torch.arange(min(batch, len(pairs)))
    rows = torch.cat([rows, rows[-1:].expand(batch - rows.numel())])
    half = graph.num_relations // 2
    with torch.inference_mode():
        relations = torch.unique(pairs.relations[rows] % half)
        side = model.relation_side(graph, relations)
        fused = model.fuse(side)
        projected = model.project_relations(fused)
        repr_index = torch.searchsorted(relations, pairs.relations[rows] % half)
        workspace = Workspace()
        plan = graph.plan
        pass_ms = _median_ms(lambda: model.entity_scores(graph, fused, repr_index, pairs.anchors[rows],
                                                         pairs.relations[rows], projected=projected,
                                                         workspace=workspace), args.repeats)
        layer = model.entity_model.layers[0]
        nodes, dim = graph.num_nodes, model.dim
        x = torch.randn(nodes, batch, dim).abs_()
        vectors = projected[0][:, repr_index[:1]].expand(-1, 1, -1).contiguous()
        column_group = torch.zeros(batch, dtype=torch.long)
        out, hidden = torch.empty_like(x), torch.empty(nodes * batch, dim)
        weight = layer.linear.weight
        aggregate = _median_ms(lambda: kernels.aggregate_cpu(*plan.csr, x, vectors, column_group, out=out), args.repeats)
        linear = _median_ms(lambda: torch.mm(x.view(-1, dim), weight[:, :dim].T, out=hidden).addmm_(
            out.view(-1, dim), weight[:, dim:].T), args.repeats)
        norm = _median_ms(lambda: kernels.norm_relu_residual_cpu(hidden, layer.linear.bias, layer.layer_norm, x, out=out),
                          args.repeats)
        query = torch.randn(batch, dim)
        head = _median_ms(lambda: model.entity_model.score(x, query, workspace), args.repeats)
    layers = len(model.entity_model.layers)
    edges = int(plan.csr[1].size)
    return {"benchmark": "pass_cost", "dataset": name, "entities": nodes, "edges": edges, "rows": batch,
            "layers": layers, "threads": torch.get_num_threads(), "pass_ms": round(pass_ms, 2),
            "aggregate_ms": round(layers * aggregate, 2), "linear_ms": round(layers * linear, 2),
            "norm_ms": round(layers * norm, 2), "head_ms": round(head, 2),
            "parts_ms": round(layers * (aggregate + linear + norm) + head, 2)}


def fit(results: list[dict]) -> dict:
    """Least squares of pass_ms on (V*B*L, E*B*L) without intercept; adds ``fit_ratio`` to each result."""
    import numpy as np

    design = np.array([[r["entities"] * r["rows"] * r["layers"], r["edges"] * r["rows"] * r["layers"]]
                       for r in results], dtype=float)
    measured = np.array([r["pass_ms"] for r in results])
    # relative errors matter, not absolute ones: weight each graph by 1 / its time
    coefficients, *_ = np.linalg.lstsq(design / measured[:, None], np.ones(len(results)), rcond=None)
    predicted = design @ coefficients
    for result, value in zip(results, predicted):
        result["fit_ratio"] = round(float(result["pass_ms"] / value), 3)
    return {"benchmark": "pass_cost_fit", "a_ns_per_entity_row_layer": round(float(coefficients[0]) * 1e6, 4),
            "b_ns_per_edge_row_layer": round(float(coefficients[1]) * 1e6, 4),
            "max_fit_ratio": max(r["fit_ratio"] for r in results), "min_fit_ratio": min(r["fit_ratio"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--checkpoint", default=None, help="a .pth file (default: <checkpoint root>/ultra_3g.pth)")
    parser.add_argument("--checkpoint-root", default=os.environ.get("ARE_CHECKPOINT_ROOT"),
                        help="default: $ARE_CHECKPOINT_ROOT")
    parser.add_argument("--data-root", default=os.environ.get("ARE_DATA_ROOT"), help="default: $ARE_DATA_ROOT")
    parser.add_argument("--cache-dir", default=os.environ.get("ARE_CACHE_DIR"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16, help="rows per entity pass (16: the CPU default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="also draw queries per second against edges, each graph measured and fitted")
    parser.add_argument("--from", dest="source", default=None, metavar="JSONL",
                        help="no measuring: read the JSON lines a run printed (for --plot and the table)")
    args = parser.parse_args()
    if args.source is not None:
        lines = [json.loads(line) for line in Path(args.source).read_text().splitlines() if line.startswith("{")]
        results = [line for line in lines if line.get("benchmark") == "pass_cost"]
        if not results:
            parser.error(f"--from {args.source}: no pass_cost lines")
        _report(results, fit(results), args.plot)
        return
    if args.data_root is None:
        parser.error("no data root: pass --data-root or set ARE_DATA_ROOT")
    checkpoint = args.checkpoint or os.path.join(args.checkpoint_root or ".", "ultra_3g.pth")
    if not os.path.exists(checkpoint):
        parser.error(f"checkpoint {checkpoint} not found: pass --checkpoint or set ARE_CHECKPOINT_ROOT")
    import torch

    torch.set_num_threads(args.threads)
    from are_model.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint)[0].eval()
    results = []
    for name in args.datasets:
        result = measure(name, model, args)
        results.append(result)
        print(f"# {name}: {result['pass_ms']} ms a pass", file=sys.stderr, flush=True)
    summary = fit(results)
    for result in results:
        print(json.dumps(result))
    print(json.dumps(summary))
    _report(results, summary, args.plot)


def _report(results: list[dict], summary: dict, plot: str | None) -> None:
    """The table on stderr, and with ``plot`` the figure (see :func:`draw`)."""
    print(f"\n{'dataset':<22}{'entities':>9}{'edges':>9}{'pass ms':>9}{'aggr':>8}{'linear':>8}{'norm':>7}{'head':>7}"
          f"{'parts':>8}{'fit':>7}", file=sys.stderr)
    for r in results:
        print(f"{r['dataset']:<22}{r['entities']:>9}{r['edges']:>9}{r['pass_ms']:>9.1f}{r['aggregate_ms']:>8.1f}"
              f"{r['linear_ms']:>8.1f}{r['norm_ms']:>7.1f}{r['head_ms']:>7.1f}{r['parts_ms']:>8.1f}{r['fit_ratio']:>7.2f}",
              file=sys.stderr)
    print(f"pass ~ {summary['a_ns_per_entity_row_layer']} ns x entities x rows x layers + "
          f"{summary['b_ns_per_edge_row_layer']} ns x edges x rows x layers "
          f"(measured / fitted {summary['min_fit_ratio']}-{summary['max_fit_ratio']})", file=sys.stderr)
    if len(results) < 3:
        print("(with fewer than three graphs the fit is exact and the ratios say nothing: pass more --datasets)",
              file=sys.stderr)
    if plot is not None:
        draw(results, summary, plot)
        print(f"figure: {plot}", file=sys.stderr)


def draw(results: list[dict], summary: dict, path: str) -> None:
    """Queries ranked per second by one entity pass (rows / pass seconds: the pass alone, each row a distinct
    (anchor, relation), so a split whose queries share rows ranks more per second end to end) against the
    graph's edges, log-log: measured (filled, coloured by entities) and what the fit predicts (open, joined to
    its graph's point by a thin line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = summary["a_ns_per_entity_row_layer"] * 1e-9, summary["b_ns_per_edge_row_layer"] * 1e-9
    edges = [r["edges"] for r in results]
    measured = [r["rows"] / (r["pass_ms"] / 1e3) for r in results]
    fitted = [r["rows"] / ((a * r["entities"] + b * r["edges"]) * r["rows"] * r["layers"]) for r in results]
    fig, ax = plt.subplots(figsize=(11, 7))
    for x, y, f in zip(edges, measured, fitted):
        ax.plot([x, x], [y, f], color="grey", lw=0.6, zorder=1)
    dots = ax.scatter(edges, measured, c=[r["entities"] for r in results], cmap="viridis",
                      norm=matplotlib.colors.LogNorm(), s=36, zorder=3, edgecolors="black", linewidths=0.3)
    ax.scatter(edges, fitted, facecolors="none", edgecolors="grey", s=36, zorder=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(min(edges) / 1.5, max(edges) * 3)
    ax.set_ylim(min(measured + fitted) / 1.5, max(measured + fitted) * 1.5)
    _label(ax, fig, [_short(r["dataset"]) for r in results], edges, measured)
    ax.set_xlabel("edges of the graph a query is ranked on (with inverses)")
    ax.set_ylabel("queries per second of one entity pass (rows / pass time)")
    first = results[0]
    threads = f"{first['threads']} thread" + ("s" if first["threads"] != 1 else "")
    ax.set_title(f"One entity pass ({first['rows']} queries, {first['layers']} layers, {threads}) on each graph: "
                 "measured and fitted", fontsize=11)
    fig.colorbar(dots, ax=ax, label="entities")
    handles = [plt.Line2D([], [], marker="o", ls="", color="tab:green", markeredgecolor="black", label="measured "
                          "(colour: entities)"),
               plt.Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor="grey",
                          label=f"fit: {a * 1e9:.0f} ns x entities + {b * 1e9:.1f} ns x edges, per row and layer")]
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.text(0.01, 0.005, "End to end a split ranks more queries per second than this: queries that share an "
             "(anchor, relation) share a row (FBNELL test: 1194 queries in 884 rows).", fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _short(name: str) -> str:
    """A catalogue name as a label: ``Metafam:Metafam`` -> ``Metafam`` (a family of one graph), else as it is."""
    family, _, member = name.partition(":")
    return family if member and member.startswith(family) else name


def _label(ax, fig, texts: list[str], xs: list[float], ys: list[float], size: float = 7.0) -> None:
    """Put each text beside its point, on the first of eight sides where its box meets no box placed before
    (nor a point), the lowest points first; a text with no free side goes to the right."""
    fig.canvas.draw()
    scale = fig.dpi / 72.0
    points = ax.transData.transform(list(zip(xs, ys)))
    placed: list[tuple[float, float, float, float]] = [(px - 4, py - 4, px + 4, py + 4) for px, py in points]
    sides = [(5, 2, "left", "bottom"), (5, -2, "left", "top"), (5, 9, "left", "bottom"), (5, -9, "left", "top"),
             (-5, 2, "right", "bottom"), (-5, -2, "right", "top"), (5, 16, "left", "bottom"),
             (5, -16, "left", "top"), (-5, 9, "right", "bottom"), (-5, -9, "right", "top")]

    def box_of(side: tuple, px: float, py: float, width: float, height: float) -> tuple[float, float, float, float]:
        dx, dy, ha, va = side
        x0 = px + dx * scale - (width if ha == "right" else 0)
        y0 = py + dy * scale - (height if va == "top" else 0)
        return x0, y0, x0 + width, y0 + height

    def overlap(box: tuple[float, float, float, float]) -> float:
        return sum(max(0.0, min(box[2], q[2]) - max(box[0], q[0])) * max(0.0, min(box[3], q[3]) - max(box[1], q[1]))
                   for q in placed)

    for k in sorted(range(len(texts)), key=lambda i: points[i][1]):
        px, py = points[k]
        width, height = 0.6 * size * len(texts[k]) * scale, size * 1.3 * scale
        chosen = min(sides, key=lambda side: (overlap(box_of(side, px, py, width, height)), sides.index(side)))
        dx, dy, ha, va = chosen
        placed.append(box_of(chosen, px, py, width, height))
        ax.annotate(texts[k], (xs[k], ys[k]), xytext=(dx, dy), textcoords="offset points", fontsize=size, ha=ha,
                    va=va)

if __name__ == "__main__":
    main()
