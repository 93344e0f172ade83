"""A cluster's centre in the embedding space, three ways (``centroid_method``), and each member's distance to it.

- ``mean``: the members' mean (k-means' own centre; the metrics always use it, as Davies–Bouldin and
  Calinski–Harabasz are defined with it).
- ``median``: the coordinate-wise median, robust to a few far members; on at most ``MEDIAN_SAMPLE``
  seeded members (the median of 65,536 draws is within a few thousandths of a standard deviation).
- ``medoid``: the member with the least total Euclidean distance to the others, a real document that
  can be shown; exact (one float32 GEMM) up to ``MEDOID_SAMPLE`` members, else the medoid of a seeded
  sample of that many, which bounds the cost at MEDOID_SAMPLE² · D per cluster.
"""

from __future__ import annotations

import numpy as np

from cluster_pipeline.core.fit.merging import member_means

MEDIAN_SAMPLE = 65_536
MEDOID_SAMPLE = 2_048
DISTANCE_BLOCK = 16_384


def cluster_centres(space: np.ndarray, labels: np.ndarray, method: str = "mean", random_state: int = 0) -> np.ndarray:
    """(K, d) float32 centre of each cluster 0..K-1 of ``labels`` (-1, noise, left out)."""
    if method == "mean":
        return member_means(space, labels)
    if method not in ("median", "medoid"):
        raise ValueError(f"unknown centroid method {method!r}")
    rng = np.random.default_rng(random_state)
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    centres = np.zeros((k, space.shape[1]), dtype=np.float32)
    for cluster in range(k):
        members = order[bounds[cluster] : bounds[cluster + 1]]
        if not len(members):
            continue
        limit = MEDIAN_SAMPLE if method == "median" else MEDOID_SAMPLE
        if len(members) > limit:
            members = np.sort(rng.choice(members, limit, replace=False))
        rows = np.asarray(space[members], dtype=np.float32)
        centres[cluster] = np.median(rows, axis=0) if method == "median" else rows[_medoid_index(rows)]
    return centres


def _medoid_index(rows: np.ndarray) -> int:
    """Index of the row with the least sum of Euclidean distances to all rows (‖a‖²+‖b‖²−2ab, float32)."""
    norms = np.einsum("ij,ij->i", rows, rows)
    squared = norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T)
    np.maximum(squared, 0.0, out=squared)
    return int(np.sqrt(squared).sum(axis=1).argmin())


def distances_to_centres(space: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n,) float32 Euclidean distance of each member to its cluster's centre (NaN for noise), walking
    ``space`` in contiguous blocks (views) and gathering only the small centre table: at 100k × 384 this
    is 0.06 s against 0.4 s for gathering the members' rows first."""
    distances = np.full(len(space), np.nan, dtype=np.float32)
    if not len(centres):
        return distances
    for start in range(0, len(space), DISTANCE_BLOCK):
        block = labels[start : start + DISTANCE_BLOCK]
        diff = centres[np.maximum(block, 0)]
        np.subtract(space[start : start + DISTANCE_BLOCK], diff, out=diff)
        found = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        found[block < 0] = np.nan
        distances[start : start + DISTANCE_BLOCK] = found
    return distances
