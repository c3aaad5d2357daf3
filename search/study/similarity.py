"""How alike two knowledge graphs are, from statistics of the loaded dataset: :class:`GraphStats`, :func:`distance`.

Warm starts (:mod:`search.study.warmstart`) seed a new study with the best settings of the finished studies
whose datasets are *nearest* to its own. Nearness is measured on the graph a study's objective
ranks on, never on its results, so it is known before the first trial runs.

Which graph
-----------
The graph of the **validation split** (``KGDataset.valid``): validation MRR is what every study
maximises (:mod:`search.objectives.fusion`), and its queries are answered on that graph. For a
transductive dataset and for GraIL (FB15k237Inductive, WN18RRInductive, NELLInductive), MTDEA
(FBNELL, Metafam) and HM inductive datasets it is the training graph; for ILPC2022 and InGram it is
the inference graph (see the table of :mod:`are_model.data.builders`). The test split's graph is
never looked at, as the test split is never used by a search.

The statistics (:class:`GraphStats`)
------------------------------------
``entities`` = the graph's nodes N (isolated nodes included, as the model sees them); ``relations`` =
its relation vocabulary R (forward relations; the loader appends R inverse ones); ``edges`` = its
forward fact triples F (the ``edge_index`` holds 2F with the inverses); ``edges_per_relation`` = F / R;
``density`` = F / N² (unitless); ``inductive`` = whether the dataset's test entities differ from its
training ones (the registry's ``setting``); ``relation_vocabulary`` = the relation names exactly as
the dataset's raw files spell them (``concept:worksfor``, ``/film/film/genre``, ``P136``,
``sisterOf``).

The measure (:func:`distance`)
------------------------------
``distance(a, b) = rms_decades(a, b) + INDUCTIVE_PENALTY · [a.inductive ≠ b.inductive]
+ VOCABULARY_WEIGHT · (1 − jaccard(a.relation_vocabulary, b.relation_vocabulary))``, where

* ``rms_decades`` is the Euclidean distance of the five numeric statistics on a log10 scale divided by
  √5: the root mean square of their differences in decades (0.5 means they differ by a factor of
  √10 on average). Log scale, because graph sizes span orders of magnitude and what changes message
  passing is a ratio (twice the edges per relation), not a difference of a few hundred edges; a
  fixed scale (one decade) rather than standardising by the spread of the studies at hand, so that
  the distance of two datasets is a property of the two alone and does not change when a campaign
  adds a third;
* ``INDUCTIVE_PENALTY`` = 1.0 (as far as a tenfold difference in every statistic): an inductive
  dataset is answered on entities the model has never seen, a transductive one on known entities,
  and the weight that suits the text-based enhancers differs between the two regimes;
* ``jaccard`` is |A ∩ B| / |A ∪ B| of the relation vocabularies (1 for two empty ones), and
  ``VOCABULARY_WEIGHT`` = 1.0: datasets that share relations (FBNELL shares NELL's ``concept:…``
  relations) share the relation texts the enhancers read, the strongest evidence of likeness there is.

It is 0 for a graph and itself, symmetric, and at most ``rms_decades + 2``. Sources: the counts come
from :func:`are_model.data.load_dataset` (the loader's ``Data`` fields ``num_nodes``,
``num_relations``, ``edge_index``, ``relation_names``) and the setting from the dataset registry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from search.values import positive_int

__all__ = ["GraphStats", "graph_stats", "distance", "nearest", "INDUCTIVE_PENALTY", "VOCABULARY_WEIGHT",
           "NUMERIC_FEATURES"]

#: Added to the distance of an inductive and a transductive dataset (decades, like the numeric part).
INDUCTIVE_PENALTY = 1.0
#: Weight of (1 − Jaccard overlap of the relation vocabularies) in the distance.
VOCABULARY_WEIGHT = 1.0
#: The numeric statistics compared on a log10 scale, in order.
NUMERIC_FEATURES = ("entities", "relations", "edges", "edges_per_relation", "density")
#: Floor of a statistic before its logarithm (an empty graph has 0 edges and density 0).
_FLOOR = 1e-12


@dataclass(frozen=True)
class GraphStats:
    """Statistics of the graph a study's validation split is ranked on (see the module docstring).

    entities: nodes N; relations: forward relations R; edges: forward fact triples F;
    edges_per_relation: F / R (facts per relation); density: F / N² (unitless, 0 ≤ density);
    inductive: the dataset's setting is inductive; relation_vocabulary: the R relation names as the
    raw files spell them.
    """

    entities: int
    relations: int
    edges: int
    edges_per_relation: float
    density: float
    inductive: bool
    relation_vocabulary: frozenset[str]

    def numeric(self) -> tuple[float, ...]:
        """The statistics of :data:`NUMERIC_FEATURES` in log10 (each floored at 1e-12 first)."""
        return tuple(math.log10(max(float(getattr(self, name)), _FLOOR)) for name in NUMERIC_FEATURES)

    def to_attr(self) -> dict[str, Any]:
        """A JSON-ready dict (the vocabulary as a sorted list), as stored in a study's user attr."""
        return {"entities": self.entities, "relations": self.relations, "edges": self.edges,
                "edges_per_relation": self.edges_per_relation, "density": self.density,
                "inductive": self.inductive, "relation_vocabulary": sorted(self.relation_vocabulary)}

    @classmethod
    def from_attr(cls, value: Mapping[str, Any]) -> "GraphStats":
        """The inverse of :meth:`to_attr`; KeyError / TypeError / ValueError for a malformed dict."""
        vocabulary = value["relation_vocabulary"]
        if isinstance(vocabulary, (str, bytes)) or not all(isinstance(name, str) for name in vocabulary):
            raise TypeError("relation_vocabulary: expected a list of names")
        return cls(int(value["entities"]), int(value["relations"]), int(value["edges"]),
                   float(value["edges_per_relation"]), float(value["density"]), bool(value["inductive"]),
                   frozenset(vocabulary))


def graph_stats(data: Any) -> GraphStats:
    """The :class:`GraphStats` of a loaded dataset (:class:`are_model.data.KGDataset`).

    Reads its validation split's graph: ``num_nodes``, ``num_relations`` (2R, inverses included),
    ``edge_index`` ([2, 2F], inverses included) and ``relation_names`` (R names), and its ``setting``.
    Raises ValueError when the split's fields disagree (an odd number of edges or relations, or a
    name list of another length than R).
    """
    graph = data.valid
    entities = int(graph.num_nodes)
    both_relations = int(graph.num_relations)
    both_edges = int(graph.edge_index.shape[1])
    if both_relations % 2 or both_edges % 2:
        raise ValueError(f"{data.name}: expected inverse relations and edges appended (2R relations, 2F edges), "
                         f"got {both_relations} relations and {both_edges} edges")
    relations, edges = both_relations // 2, both_edges // 2
    names = list(graph.relation_names)
    if len(names) != relations:
        raise ValueError(f"{data.name}: {len(names)} relation names for {relations} relations")
    return GraphStats(entities=entities, relations=relations, edges=edges,
                      edges_per_relation=edges / relations if relations else 0.0,
                      density=edges / entities ** 2 if entities else 0.0,
                      inductive=data.setting == "inductive", relation_vocabulary=frozenset(names))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 1 when both are empty."""
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def distance(a: GraphStats, b: GraphStats) -> float:
    """How unlike two graphs are (≥ 0; 0 for equal statistics; symmetric). The measure, its terms
    and why: the module docstring. Units: decades of the numeric statistics plus the two penalties."""
    x, y = a.numeric(), b.numeric()
    rms = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)) / len(x))
    setting = INDUCTIVE_PENALTY if a.inductive != b.inductive else 0.0
    vocabulary = VOCABULARY_WEIGHT * (1.0 - _jaccard(a.relation_vocabulary, b.relation_vocabulary))
    return rms + setting + vocabulary


def nearest(target: GraphStats, candidates: Mapping[str, GraphStats], k: int) -> list[tuple[str, float]]:
    """The ``k`` candidates nearest to ``target``: ``[(name, distance)]``, nearest first (ties by name).

    Fewer when there are fewer candidates. Raises UsageError when ``k`` is not a positive integer.
    """
    k = positive_int(k, "k")
    ranked = sorted(((name, distance(target, stats)) for name, stats in candidates.items()),
                    key=lambda item: (item[1], item[0]))
    return ranked[:k]
