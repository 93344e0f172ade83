"""After the fit: fewer, larger topics (``max_clusters``) and noise documents given a cluster
(``reassign_noise``), both as BERTopic does them, both recorded.

Both work on cluster centroids in the embedding space, not in UMAP's coordinates: UMAP distorts
distances on purpose, and a centroid there is not a topic's centre. Labels here are raw (any
non-negative integers, -1 for noise); ``core.fit.clustering`` orders them by size afterwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cluster_pipeline.core.fit.neighbors import nearest_centroids


def member_means(space: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K, d) float32 mean of each cluster's rows, K = ``labels.max() + 1`` (noise, -1, left out), by one
    sparse (K, N) one-hot product: O(N·d), no (N, d) temporary."""
    from scipy.sparse import csr_matrix

    members = np.flatnonzero(labels >= 0)
    k = int(labels.max()) + 1 if len(members) else 0
    one_hot = csr_matrix((np.ones(len(members), dtype=np.float32), (labels[members], members)), shape=(k, len(space)))
    counts = np.bincount(labels[members], minlength=k).astype(np.float32)
    return np.asarray(one_hot @ space, dtype=np.float32) / np.maximum(counts, 1)[:, None]


def merge_similar_clusters(labels: np.ndarray, space: np.ndarray, max_clusters: int) -> np.ndarray:
    """Raw labels with clusters merged, most similar first, until at most ``max_clusters`` remain
    (``labels`` itself when there are no more already; noise stays noise), as BERTopic's topic
    reduction: agglomerative clustering of the centroids in ``space``, cosine distance, average linkage."""
    found = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if found <= max_clusters:
        return labels
    if max_clusters == 1:
        group = np.zeros(found, dtype=np.int64)
    else:
        from sklearn.cluster import AgglomerativeClustering

        centroids = member_means(space, labels)
        group = AgglomerativeClustering(n_clusters=max_clusters, metric="cosine", linkage="average").fit_predict(
            centroids
        )
    return np.where(labels >= 0, group[np.maximum(labels, 0)], -1)


def merge_record(found: np.ndarray, merged: np.ndarray, max_clusters: int) -> dict[str, Any]:
    """What ``max_clusters`` did: for each final cluster made of several found ones, which (found
    clusters numbered 0.. by decreasing size, as ``found`` holds them)."""
    members = found >= 0
    pairs = np.unique(np.stack([merged[members], found[members]]), axis=1)
    groups: dict[str, list[int]] = {}
    for final in np.unique(pairs[0]):
        sources = sorted(int(c) for c in pairs[1][pairs[0] == final])
        if len(sources) > 1:
            groups[f"cl_{int(final)}"] = sources
    return {
        "max_clusters": max_clusters,
        "found": int(found.max()) + 1 if members.any() else 0,
        "kept": int(len(np.unique(merged[members]))),
        "merged": groups,
    }


def reassign_noise(labels: np.ndarray, space: np.ndarray) -> np.ndarray:
    """Labels with every noise row (-1) given its nearest cluster centroid (Euclidean, in ``space``), as
    BERTopic's ``reduce_outliers(strategy="embeddings")``: the centroids are the clusters' member means
    before any reassignment. Without clusters, noise stays noise."""
    noise = np.flatnonzero(labels < 0)
    if len(noise) == 0 or not (labels >= 0).any():
        return labels
    nearest, _ = nearest_centroids(np.ascontiguousarray(space[noise]), member_means(space, labels))
    out = labels.copy()
    out[noise] = nearest
    return out
