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

from cluster_pipeline.core.results import cluster_name


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
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    previous = previous_assignments.select(["document_id", "cluster_index"]).to_pandas()
    current_rows = pd.Series(np.arange(len(document_ids)), index=pd.Index(document_ids.astype(str)))
    previous = previous[previous.document_id.isin(current_rows.index)]
    rows = current_rows.loc[previous.document_id].to_numpy()
    drift: dict[str, Any] = {"previous_run_id": previous_run_id, "shared_documents": int(len(rows))}
    if len(rows) < 2:
        drift.update(adjusted_rand_index=None, stable_clusters=[], new_clusters=[], gone_clusters=[])
        return drift
    before = previous.cluster_index.to_numpy()
    drift["adjusted_rand_index"] = round(float(adjusted_rand_score(before, labels[rows])), 6)

    previous_clusters = sorted(int(c) for c in np.unique(before) if c >= 0)
    previous_centres = (
        np.stack([space[rows[before == c]].mean(axis=0) for c in previous_clusters])
        if previous_clusters
        else np.empty((0, space.shape[1]))
    )
    current_clusters = list(range(len(centroids)))
    radius = np.array([np.nanmedian(distances[labels == c]) if (labels == c).any() else 0.0 for c in current_clusters])
    stable, matched_now, matched_then = [], set(), set()
    if current_clusters and previous_clusters:
        cost = np.linalg.norm(centroids[:, None, :] - previous_centres[None, :, :], axis=2)
        for now_index, then_index in zip(*linear_sum_assignment(cost), strict=True):
            gap = float(cost[now_index, then_index])
            if gap <= radius[now_index]:
                stable.append(
                    {
                        "cluster_id": cluster_name(int(now_index)),
                        "previous_cluster_id": cluster_name(previous_clusters[then_index]),
                        "centroid_distance": round(gap, 6),
                    }
                )
                matched_now.add(int(now_index))
                matched_then.add(previous_clusters[then_index])
    drift["stable_clusters"] = stable
    drift["new_clusters"] = [cluster_name(c) for c in current_clusters if c not in matched_now]
    drift["gone_clusters"] = [cluster_name(c) for c in previous_clusters if c not in matched_then]
    return drift
