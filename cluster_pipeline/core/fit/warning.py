"""Why a fit found fewer than two clusters, and what to try: the ``warning`` of a completed result.

Where a distance is involved (DBSCAN's ``eps``) the suggestion is taken from the data: the middle
half of each document's distance to its k-th neighbour in the space the algorithm ran on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cluster_pipeline.core.fit.neighbors import search
from cluster_pipeline.core.quality.verdict import percent

EPS_SAMPLE = 2_000  # documents whose neighbour distances suggest an eps


# What to try, given the parameters that ran, what happened ("put every document in noise") and the
# matrix the algorithm ran on; each algorithm's registry entry names its own (``core.fit.registry``).
Advice = Callable[[dict[str, Any], str, np.ndarray], str]


def clustering_warning(
    algorithm: str,
    parameters: dict[str, Any],
    labels: np.ndarray,
    matrix: np.ndarray,
    advice: Advice | None = None,
    k_parameter: str | None = None,
    max_clusters: int | None = None,
) -> str | None:
    """Why a run of ``algorithm`` (its concrete ``parameters``) found 0 or 1 cluster in its final
    ``labels`` and what to try, from its own ``advice`` when it has one; None with 2 or more clusters."""
    clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if clusters >= 2:
        return None
    share = float((labels >= 0).mean())
    one = "every document" if share == 1.0 else f"{percent(share)} of the documents"
    outcome = "put every document in noise" if clusters == 0 else f"put {one} in one cluster"
    if max_clusters == 1 and clusters == 1:
        return "max_clusters=1 merged every cluster into one; set it to 2 or more to compare clusters."
    if advice is not None:
        return advice(parameters, outcome, matrix)
    if k_parameter is not None and parameters.get(k_parameter) == 1:
        return (
            f"{k_parameter}=1 asks for a single cluster; quality metrics need 2 or more: "
            f"set {k_parameter} to 2+ or 'auto'."
        )
    return (
        f"{algorithm} {outcome} of {len(labels):,} documents; quality metrics need 2 or more clusters: "
        "adjust its parameters."
    )


def dbscan_advice(parameters: dict[str, Any], outcome: str, matrix: np.ndarray) -> str:
    eps, min_samples = parameters.get("eps", 0.5), int(parameters.get("min_samples", 5))
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    rng = np.random.default_rng(0)
    queries = matrix if len(matrix) <= EPS_SAMPLE else matrix[rng.choice(len(matrix), EPS_SAMPLE, replace=False)]
    k = max(1, min(min_samples, len(matrix) - 1))
    squared, _ = search(matrix, queries, k + 1)  # the first neighbour is the document itself
    low, high = np.quantile(np.sqrt(squared[:, -1]), [0.25, 0.75])
    return (
        f"eps={eps} {outcome}; try eps between {low:.2g} and {high:.2g} (the middle half of the distances "
        f"from each document to its {min_samples}th neighbour in the space DBSCAN ran on)."
    )


def hdbscan_advice(parameters: dict[str, Any], outcome: str, matrix: np.ndarray) -> str:
    size = int(parameters.get("min_cluster_size", 5))
    return (
        f"min_cluster_size={size} {outcome}; try a smaller min_cluster_size (e.g. {max(2, size // 4)}), "
        "or leave it out to derive it from the collection's size."
    )


def optics_advice(parameters: dict[str, Any], outcome: str, matrix: np.ndarray) -> str:
    return f"min_samples={parameters.get('min_samples', 5)} {outcome}; try a smaller min_samples or a larger xi."


def mean_shift_advice(parameters: dict[str, Any], outcome: str, matrix: np.ndarray) -> str:
    return f"bandwidth={parameters.get('bandwidth') or 'estimated'} {outcome}; try a smaller bandwidth."
