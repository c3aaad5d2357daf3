"""Published zero-shot group means to set a campaign's group means against.

Only ULTRA publishes per-group means of the benchmark's groups: ``ultra_3g`` (the body every ARE checkpoint
starts from), test MRR / Hits@10, unweighted over *all* the graphs of a group (ULTRA's README, table
"Zero-shot performance of the checkpoints"; Galkin et al., *Towards Foundation Models for Knowledge Graph
Reasoning*, ICLR 2024, arXiv:2310.04562). SEMMA and ARE publish per-graph figures only, so an ARE campaign has
no published means of its own family: the report sets its means next to ``ultra_3g``'s, and says over how
many of the group's graphs its own mean runs (a mean over a subset is not the published mean's population).
Groups without a published mean (pretraining, transductive) are absent.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["PUBLISHED_CHECKPOINT", "PUBLISHED_SOURCE", "PUBLISHED_GROUP_MEANS", "published_mean"]

#: The checkpoint whose group means are published.
PUBLISHED_CHECKPOINT = "ultra_3g"
#: Where they are published.
PUBLISHED_SOURCE = ("ULTRA's README, table 'Zero-shot performance of the checkpoints' (Galkin et al., ICLR 2024, "
                    "arXiv:2310.04562)")
#: group -> {"test_mrr", "test_hits@10"}: ultra_3g's published zero-shot means over all the group's graphs.
PUBLISHED_GROUP_MEANS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "inductive_e": MappingProxyType({"test_mrr": 0.430, "test_hits@10": 0.566}),
    "inductive_er": MappingProxyType({"test_mrr": 0.345, "test_hits@10": 0.512}),
})


def published_mean(group: str) -> dict[str, Any] | None:
    """``{"checkpoint", "test_mrr", "test_hits@10", "graphs"}`` for ``group`` (``graphs``: how many graphs the
    published mean runs over, :data:`are_model.data.registry.GROUPS`), or None where nothing is published."""
    from are_model.data.registry import GROUPS

    means = PUBLISHED_GROUP_MEANS.get(group)
    if means is None:
        return None
    return {"checkpoint": PUBLISHED_CHECKPOINT, **means, "graphs": len(GROUPS[group])}
