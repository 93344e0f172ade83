"""After the fit: oversized clusters split (density algorithms), fewer, larger topics
(``max_clusters``) and noise documents given a cluster (``reassign_noise``), the last two as BERTopic
does them, all recorded.

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


SPLIT_SAMPLE = 20_000  # members a split's 2-means is fitted on (a seeded sample beyond); the rest predicted


def split_oversized_clusters(labels: np.ndarray, space: np.ndarray, max_fraction: float) -> np.ndarray:
    """Raw labels with a cluster that holds most of the documents (more than half) split in two by
    2-means of its members in ``space`` (seeded), and its parts again until none holds more than
    ``max_fraction``; other clusters and noise stay as they are.

    Why: HDBSCAN after UMAP can leave one cluster with most of a collection (AG News: 74 % of the
    documents in one cluster mixing three of its four topics) while it splits the dense topics
    finely. Its own cluster selection does not help: a ``max_cluster_size``, leaf selection or a smaller
    ``min_samples`` all gave 33-51 clusters with 25-40 % noise and a lower V-measure; clustering the
    blob's members again with HDBSCAN, on the same or on new UMAP coordinates, gave 12-39 clusters and
    V-measure 0.38-0.45. Bisecting it in the embedding space (where its topics differ) gave 0.52: see
    ``benchmarks/quality.py``. Only a majority cluster is split: two or three balanced clusters of
    40-50 % each are a collection's real topics. A part whose 2-means leaves one side empty (identical
    members) is kept whole."""
    from sklearn.cluster import KMeans

    labels = labels.copy()
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    splittable = {int(c) for c in np.flatnonzero(sizes > len(labels) / 2)}
    limit = max_fraction * len(labels)
    while splittable:
        largest = max(splittable, key=lambda c: int((labels == c).sum()))
        members = np.flatnonzero(labels == largest)
        if len(members) <= limit:
            return labels
        rng = np.random.default_rng(largest)
        fitted_on = members if len(members) <= SPLIT_SAMPLE else np.sort(rng.choice(members, SPLIT_SAMPLE, False))
        sample = np.asarray(space[fitted_on], dtype=np.float32)
        side = np.zeros(len(members), np.int64)
        if np.ptp(sample, axis=0).max(initial=0) > 0:
            side = KMeans(2, n_init=3, random_state=0).fit(sample).predict(np.asarray(space[members], np.float32))
        if side.min() == side.max():
            splittable.discard(largest)
            continue
        part = int(labels.max()) + 1
        labels[members[side == 1]] = part
        splittable.add(part)
    return labels


def split_record(found: np.ndarray, split: np.ndarray, final: np.ndarray, max_fraction: float) -> dict[str, Any]:
    """What splitting did: for each found cluster (numbered 0.. by decreasing size, as ``found`` holds
    them) that was split, the final clusters its members went to (``final``: after ordering, merging
    and noise reassignment)."""
    kept = (found >= 0) & (final >= 0)
    children: dict[str, list[str]] = {}
    for parent in np.unique(found[found >= 0]):
        rows = found == parent
        if len(np.unique(split[rows])) > 1:
            children[f"found_{int(parent)}"] = [f"cl_{int(c)}" for c in np.unique(final[rows & kept])]
    return {"max_cluster_fraction": max_fraction, "found": int(found.max()) + 1, "split": children}


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
