"""From names to tensors: one dataset split made ready for a model (graphs, text vectors, queries).

This is the glue the command line and the search use; it reads only what its arguments name.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .data import KGDataset
from .evaluate import FilterIndex, QuerySet, build_queries, rank_queries, ranking_metrics
from .model import AREModel, GraphContext, RelationSide, prepare_graph
from .text import build_encoder, load_relation_texts, relation_embeddings


@dataclass(frozen=True)
class TextOptions:
    """Where relation texts come from and how they become vectors (spec §2.1–2.3). Every location is
    given here; nothing is read from the environment.

    root: folder holding ``<llm>/<text_key>.json`` (None: the cache, then a download);
    encoder: "auto" | "minilm" | "jina" (hub id) | "jina:PATH" | a tensor file of precomputed [R', 64] vectors;
    cache_dir: downloaded texts and cached text vectors (None: no disk cache);
    download: fetch texts that are in neither folder;
    jina_path: a local copy of jina-embeddings-v3 that "auto" uses (None: "auto" is MiniLM);
    jina_revision: the jina revision (hub commit or tag), recorded in the encoder's name.
    """

    root: str | None = None
    encoder: str = "auto"
    llm: str = "gpt-4o-2024-11-20"
    recipe: str = "combined-sum"
    cache_dir: str | None = None
    download: bool = True
    jina_path: str | None = None
    jina_revision: str | None = None


@dataclass
class PreparedSplit:
    """A split ready to rank: its graph context (on a device), queries, filters and the encoder used."""

    dataset: str
    split: str
    graph: GraphContext
    queries: QuerySet
    filters: FilterIndex
    encoder: str | None
    triples: Tensor  # [T, 3] the split's target triples as (h, t, r), forward only

    @property
    def device(self) -> torch.device:
        return self.graph.device


def split_text_embeddings(dataset: KGDataset, split: str, options: TextOptions, device: str = "cpu") -> tuple[Tensor, str]:
    """[R', 64] relation text vectors of one split's graph, and the encoder's name."""
    data = dataset.split(split)
    encoder = build_encoder(options.encoder, device=device, jina_path=options.jina_path,
                            jina_revision=options.jina_revision)
    texts = load_relation_texts(dataset.text_key, options.root, llm=options.llm, download=options.download,
                                cache_dir=options.cache_dir)
    vectors = relation_embeddings(list(data.relation_names), texts, encoder, recipe=options.recipe,
                                  cache_dir=options.cache_dir)
    return vectors, encoder.name


def prepare_split(dataset: KGDataset, split: str, *, text: TextOptions | None = None,
                  device: torch.device | str = "cpu") -> PreparedSplit:
    """Build the split's graph context; text vectors only when `text` is given (SEMMA/ARE profiles)."""
    data = dataset.split(split)
    embeddings, encoder_name = (None, None) if text is None else split_text_embeddings(dataset, split, text)
    graph = prepare_graph(data.edge_index, data.edge_type, int(data.num_nodes), int(data.num_relations), embeddings)
    queries = build_queries(data.target_edge_index, data.target_edge_type, int(data.num_relations))
    filters = FilterIndex(data.filter_edge_index, data.filter_edge_type, int(data.num_relations))
    triples = torch.stack([data.target_edge_index[0], data.target_edge_index[1], data.target_edge_type], dim=1)
    return PreparedSplit(dataset.name, split, graph.to(device), queries.to(device), filters.to(device), encoder_name,
                         triples.to(device))


def default_batch_size(device: torch.device | str) -> int:
    """Queries per entity pass: small on CPUs (the working set stays in cache), larger on GPUs."""
    return 64 if torch.device(device).type == "cuda" else 16


def evaluate_split(model: AREModel, prepared: PreparedSplit, *, weights: Tensor | None = None,
                   side: RelationSide | None = None, batch_size: int | None = None,
                   progress: bool = False) -> tuple[dict[str, float], Tensor]:
    """Metrics (mr, mrr, hits@1/3/10, num_queries) and per-query ranks [Q] (order: see `evaluate`)."""
    ranks = rank_queries(model, prepared.graph, prepared.queries, prepared.filters, side=side, weights=weights,
                         batch_size=batch_size or default_batch_size(prepared.device), progress=progress,
                         description=f"{prepared.dataset} {prepared.split}")
    return ranking_metrics(ranks), ranks
