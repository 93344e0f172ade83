"""Where each document sits in the pictures and the map: the clustering's own space, kept still.

The layout comes from the space the algorithm saw: when it ran on UMAP coordinates, a 2-D UMAP of
the same neighbour graph (``core.fit.reduction.layout_2d``) — PCA of the embeddings would pile
clusters that UMAP told apart into one corner; otherwise PCA, or UMAP when ``plot_projection`` asks.

A refit would otherwise scramble the picture (PCA's axes flip, UMAP lands anywhere), so a new
layout is aligned to the previous execution's map on the documents both hold: the least-squares
similarity transform (scale, rotation — a reflection allowed, since either layout's handedness is
arbitrary — and shift; Umeyama's closed form) that brings the new coordinates closest to the old,
applied to every point (Mixpeek's ``layout_stability: aligned``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.fit.reduction import NeighbourGraph, layout_2d
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.render.plots import MAX_MAP_POINTS, Projection, plotted_rows, project

MIN_SHARED = 3  # documents two layouts must share to be aligned (a similarity has 4 unknowns)


def lay_out(
    space: np.ndarray,
    labels: np.ndarray,
    *,
    graph: NeighbourGraph | None,
    method: str,
    max_points: int = MAX_MAP_POINTS,
    progress: Progress | None = None,
) -> Projection:
    """2-D coordinates of at most ``max_points`` rows of ``space`` (stratified by cluster beyond that),
    from UMAP's ``graph`` when the clustering ran on it, else ``method`` (``pca`` or ``umap``)."""
    if graph is None:
        return project(space, labels, method=method, max_points=max_points)
    labels = np.asarray(labels)
    rows = plotted_rows(labels, max_points)
    xy = layout_2d(graph, space, rows, progress)
    return Projection(rows, xy.astype(np.float64), labels[rows], len(labels), "umap")


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(scale, rotation, shift)`` minimising ``‖scale · source @ rotation + shift − target‖²`` over
    (n, 2) point pairs; ``rotation`` is orthogonal (a reflection allowed)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(a.T @ b)
    rotation = u @ vt
    spread = float((a * a).sum())
    scale = float(singular.sum() / spread) if spread > 0 else 1.0
    return scale, rotation, target_mean - scale * source_mean @ rotation


def align_to_previous(
    projection: Projection, document_ids: np.ndarray, previous: pa.Table | None, previous_run_id: str | None
) -> tuple[Projection, dict[str, Any]]:
    """``projection`` (whose rows have ids ``document_ids``) moved onto ``previous`` (a map table:
    ``document_id``, ``x``, ``y``), and the layout's record: method, stability, the run aligned to,
    documents shared, and the remaining misfit as a share of the previous layout's spread."""
    record: dict[str, Any] = {"method": projection.method, "layout_stability": "fresh"}
    if previous is None or previous.num_rows == 0:
        return projection, record
    before = {doc: index for index, doc in enumerate(previous.column("document_id").to_pylist())}
    pairs = [(row, before[doc]) for row, doc in enumerate(document_ids.tolist()) if doc in before]
    if len(pairs) < MIN_SHARED:
        return projection, {**record, "shared_documents": len(pairs)}
    mine, theirs = (np.array(side) for side in zip(*pairs, strict=True))
    old = np.column_stack([previous.column("x").to_numpy(), previous.column("y").to_numpy()]).astype(np.float64)
    scale, rotation, shift = similarity_transform(projection.xy[mine], old[theirs])
    moved = scale * projection.xy @ rotation + shift
    misfit = np.sqrt(((moved[mine] - old[theirs]) ** 2).sum(axis=1).mean())
    spread = np.sqrt(((old[theirs] - old[theirs].mean(axis=0)) ** 2).sum(axis=1).mean()) or 1.0
    aligned = Projection(projection.rows, moved, projection.labels, projection.total, projection.method)
    return aligned, {
        **record,
        "layout_stability": "aligned",
        "aligned_to": previous_run_id,
        "shared_documents": len(pairs),
        "misfit": round(float(misfit / spread), 4),
    }
