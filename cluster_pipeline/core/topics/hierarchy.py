"""A topic tree over an execution's clusters (BERTopic's ``hierarchical_topics``), and its cuts.

The clusters' centroids in the embedding space are merged bottom-up by average linkage of cosine
distances (scipy), the same rule ``max_clusters`` uses to merge topics, so cutting the tree at k
groups gives what ``max_clusters: k`` would have merged. Each merge is named like a cluster: the
distinctive keywords of the merged clusters' documents taken together, against the rest of the
collection (``core.labels.offline.group_keywords``); without text, by its two children's names.

The tree is stored in the ExecutionResult's ``hierarchy``: the leaves (``cl_…``) and one node per
merge, closest first; ``cut`` turns it into k coarser topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cluster_pipeline.core.store.results import ExecutionResult, cluster_name

if TYPE_CHECKING:
    import pandas as pd

    from cluster_pipeline.core.labels.terms import TermCounts

MAX_LABEL_CHARS = 60
ROOT_LABEL = "All documents"


def build_hierarchy(
    centroids: np.ndarray,
    sizes: np.ndarray,
    leaf_labels: list[str],
    documents: pd.DataFrame | None = None,
    labels: np.ndarray | None = None,
    *,
    text_fields: list[str] | None = None,
    num_keywords: int = 8,
    word_counts: TermCounts | None = None,
) -> dict[str, Any] | None:
    """The topic tree of K >= 2 clusters (None below that), from their (K, d) ``centroids``, ``sizes``
    and labels. Merged topics are named by the keywords of ``documents`` (text columns) whose cluster
    index (-1 noise) ``labels`` give; without them, by their children's names. ``word_counts``: those
    documents' counts by cluster (``cluster_term_counts``) when the labels made them already."""
    k = len(centroids)
    if k < 2:
        return None
    from scipy.cluster.hierarchy import linkage

    from cluster_pipeline.core.labels.offline import cluster_term_counts, group_keywords, keywords_label

    tree = linkage(np.asarray(centroids, dtype=np.float64), method="average", metric="cosine")
    counts = word_counts if word_counts is not None and word_counts.counts.shape[0] == k else None
    if counts is None and documents is not None and labels is not None:
        counts = cluster_term_counts(documents, labels, k, text_fields=text_fields)
    # every node so far, by scipy's index (the leaves, then one per merge): its id, label and clusters
    ids, titles, members = [cluster_name(i) for i in range(k)], list(leaf_labels), [[i] for i in range(k)]
    nodes: list[dict[str, Any]] = []
    for step, (left, right, distance, _) in enumerate(tree):
        a, b = int(left), int(right)
        clusters = sorted(members[a] + members[b])
        root = len(clusters) == k  # set apart from nothing: no word names it
        keywords = group_keywords(counts, clusters, num_keywords) if counts is not None and not root else []
        label = ROOT_LABEL if root else (keywords_label(keywords) if keywords else _joined(titles[a], titles[b]))
        nodes.append(
            {
                "id": f"h_{step}",
                "children": [ids[a], ids[b]],
                "clusters": [ids[c] for c in clusters],
                "distance": round(float(distance), 6),
                "num_members": int(sum(int(sizes[c]) for c in clusters)),
                "label": label,
                "keywords": keywords,
            }
        )
        ids.append(f"h_{step}")
        titles.append(label)
        members.append(clusters)
    return {"method": "average linkage of centroids, cosine distance", "leaves": ids[:k], "nodes": nodes}


def _joined(a: str, b: str) -> str:
    text = f"{a} + {b}"
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Topic:
    """One topic of a cut: a cluster, or a merge of several."""

    id: str
    label: str
    keywords: list[str]
    clusters: list[str]
    num_members: int


def cut(hierarchy: dict[str, Any], leaves: list[Topic], groups: int) -> list[Topic]:
    """The ``groups`` coarsest topics of the tree (its closest merges applied until that many remain;
    the ``leaves``, the clusters, when there are no more), largest first."""
    current = {leaf.id: leaf for leaf in leaves}
    for node in hierarchy["nodes"]:
        if len(current) <= max(groups, 1):
            break
        for child in node["children"]:
            current.pop(child, None)
        current[node["id"]] = Topic(
            node["id"], node["label"], list(node["keywords"]), list(node["clusters"]), int(node["num_members"])
        )
    return sorted(current.values(), key=lambda topic: (-topic.num_members, topic.id))


def coarse_topics(result: ExecutionResult, groups: int) -> list[Topic]:
    """The execution's clusters merged along its tree into ``groups`` topics (its clusters without a tree)."""
    leaves = [
        Topic(c.cluster_id, c.label, list(c.keywords), [c.cluster_id], c.num_members) for c in result.centroids or []
    ]
    return cut(result.hierarchy, leaves, groups) if result.hierarchy else leaves
