"""How an execution compares to the previous one of the same configuration.

Two numbers a user wants after a refresh: how much the grouping moved (adjusted Rand index over
the documents both runs clustered) and which clusters are the same ones. Clusters are matched by
centroid: the previous run's clusters are re-centred in *this* run's space from the shared
documents (so a refitted PCA does not matter), then paired by minimum total distance (Hungarian).
A pair is stable when the previous centre lies within the current cluster's typical radius;
unpaired or distant clusters are new (now) or gone (then).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cluster_pipeline.core.store.results import cluster_name


def compare_runs(
    previous_run_id: str,
    previous_assignments: pa.Table,
    document_ids: pd.Series,
    labels: np.ndarray,
    space: np.ndarray,
    centroids: np.ndarray,
    distances: np.ndarray,
) -> dict[str, Any]:
    """The drift record stored in ``ExecutionResult.drift``."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    previous = previous_assignments.select(["document_id", "cluster_index"]).to_pandas()
    current_rows = pd.Series(np.arange(len(document_ids)), index=pd.Index(document_ids.astype(str)))
    previous = previous[previous.document_id.isin(current_rows.index)]
    rows = current_rows.loc[previous.document_id].to_numpy()
    drift: dict[str, Any] = {"previous_run_id": previous_run_id, "shared_documents": int(len(rows))}
    if len(rows) < 2:
        drift.update(adjusted_rand_index=None, stable_clusters=[], new_clusters=[], gone_clusters=[])
        return drift
    before = previous.cluster_index.to_numpy()
    drift["adjusted_rand_index"] = round(adjusted_rand_index(before, labels[rows]), 6)

    previous_clusters = sorted(int(c) for c in np.unique(before) if c >= 0)
    current_clusters = list(range(len(centroids)))
    radius = np.array([np.nanmedian(distances[labels == c]) if (labels == c).any() else 0.0 for c in current_clusters])
    stable, matched_now, matched_then = [], set(), set()
    if current_clusters and previous_clusters:
        previous_centres = np.stack([space[rows[before == c]].mean(axis=0) for c in previous_clusters])
        cost = np.linalg.norm(centroids[:, None, :] - previous_centres[None, :, :], axis=2)
        # The cheapest pairing (Hungarian-style, as scipy.optimize.linear_sum_assignment, which costs
        # ~0.5 s of imports). Shifted by 1 so no edge weighs 0 (a missing edge in a sparse matrix);
        # every full matching has min(K, K') edges, so the shift does not change which is cheapest.
        pairs = min_weight_full_bipartite_matching(csr_matrix(cost + 1.0))
        for now_index, then_index in zip(*pairs, strict=True):
            gap = float(cost[now_index, then_index])
            if gap <= radius[now_index]:
                now, then = int(now_index), previous_clusters[then_index]
                names = {"cluster_id": cluster_name(now), "previous_cluster_id": cluster_name(then)}
                stable.append({**names, "centroid_distance": round(gap, 6)})
                matched_now.add(now)
                matched_then.add(then)
    drift["stable_clusters"] = stable
    drift["new_clusters"] = [cluster_name(c) for c in current_clusters if c not in matched_now]
    drift["gone_clusters"] = [cluster_name(c) for c in previous_clusters if c not in matched_then]
    return drift


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """The adjusted Rand index of two labelings of the same items, as scikit-learn's
    ``adjusted_rand_score`` (noise, -1, is a label like any other), from their contingency table.

    Here rather than imported: scikit-learn's import costs ~1 s, which every re-execution would pay.
    """
    _, a_codes = np.unique(a, return_inverse=True)
    _, b_codes = np.unique(b, return_inverse=True)
    cells = a_codes.astype(np.int64) * (int(b_codes.max(initial=0)) + 1) + b_codes
    counts = (np.unique(cells, return_counts=True)[1], np.bincount(a_codes), np.bincount(b_codes))
    both, rows, columns = (float((c * (c - 1.0)).sum() / 2) for c in counts)  # pairs within a cell, row, column
    total = len(cells) * (len(cells) - 1) / 2
    expected = rows * columns / total if total else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:  # both labelings put everything together, or everything apart
        return 1.0
    return (both - expected) / (maximum - expected)
