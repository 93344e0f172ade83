"""Dimensionality reduction before clustering: UMAP (density-based algorithms), PCA, or none.

Text embeddings in 384+ dimensions are no space of dense regions, and PCA does not make them one
(AG News, PCA-10 then HDBSCAN: 80 % noise, V-measure 0.14); UMAP to 5 dimensions on cosine distances
does (6 % noise, V 0.39), which is why BERTopic runs UMAP before HDBSCAN. umap-learn is called with
three changes, each measured on AG News (7,600 × 384) on the 2-core machine:

- **exact kNN by faiss** (``core.fit.neighbors``), handed over as ``precomputed_knn``, instead of
  pynndescent's approximate search and its numba code paths;
- **cached compilation**: three of umap-learn's numba kernels (``UNCACHED_KERNELS``) lack
  ``cache=True``, so every process paid ~25 s of JIT even with ``NUMBA_CACHE_DIR`` set; they get
  ``enable_caching()`` before first use (the first run on a machine compiles, about a minute, shown
  as a ``compile`` stage);
- **200 epochs** at every size (umap-learn's default above 10,000 points): 500 cost 2.4× the time
  and gave the same clusters (3 seeds).

With a seed UMAP lays out on one thread, so large collections are fitted on a seeded sample of
``fit_sample_size`` documents and every other one is placed as umap-learn's ``transform`` initialises
new points (``place_from_neighbours``), without its refining epochs (they need pynndescent's index
and recompile per process). ``benchmarks/quality.py`` measures what fitting on a third of AG News costs.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from cluster_pipeline.core.errors import AlgorithmError
from cluster_pipeline.core.fit.neighbors import knn_graph, search
from cluster_pipeline.core.fit.numba_cache import compiling, numba_cache_dir
from cluster_pipeline.core.fit.options import ReductionOptions
from cluster_pipeline.core.progress import Progress

UMAP_COMPONENTS = 5
PCA_COMPONENTS = 10
AUTO_MIN_DIMENSIONS = 50  # at or below, vectors are clustered as they are ("auto")
UMAP_EPOCHS = 200
LAYOUT_MIN_DIST = 0.1  # the pictures' 2-D layout spreads each cluster a little (the fit packs them: 0)
# The 2-D layout starts from the clustering's own coordinates, so it refines rather than discovers: at
# 50 epochs (of the fit's 200) its clusters stand as far apart (2-D silhouette by cluster, 10k blobs:
# 0.953 vs 0.979; AG News: 0.361 vs 0.376) in a quarter of the time (6.5 -> 1.7 s and 5.2 -> 1.3 s).
LAYOUT_EPOCHS = 50
TRANSFORM_BLOCK = 65_536  # documents placed per block (bounds the (block, n_neighbors) temporaries)
# umap-learn's kernels compiled without cache=True (module, name); missing ones are skipped
UNCACHED_KERNELS = (
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
)


@dataclass(frozen=True)
class ReductionPlan:
    """What the configuration's ``reduction`` means for this collection: method and dimensions kept."""

    method: str  # "umap", "pca" or "none"
    n_components: int | None = None


def plan_reduction(options: ReductionOptions, default_method: str, dimensions: int) -> ReductionPlan:
    """Resolve ``options`` for D-dimensional vectors; ``auto`` is ``default_method`` (the algorithm's,
    ``AlgorithmSpec.default_reduction``) above 50 dimensions, none at or below."""
    method: str = options.method
    if method == "auto":
        method = "none" if dimensions <= AUTO_MIN_DIMENSIONS else default_method
    components = options.n_components or (UMAP_COMPONENTS if method == "umap" else PCA_COMPONENTS)
    if method == "none" or (method == "pca" and components >= dimensions):
        return ReductionPlan("none")
    return ReductionPlan(method, components)


@dataclass(frozen=True)
class NeighbourGraph:
    """What UMAP was fitted from, kept so that the pictures are laid out from the same neighbours the
    algorithm saw (``layout_2d``): the fitted unit rows, their kNN graph and UMAP coordinates."""

    sample: np.ndarray  # (m, d) unit rows UMAP was fitted on
    rows: np.ndarray | None  # their indices among all documents (None: all of them, in order)
    knn: tuple[np.ndarray, np.ndarray]  # umap-learn's (indices, distances), each row's own first
    coordinates: np.ndarray  # (m, n_components) the fitted rows' coordinates
    parameters: dict[str, Any]


@dataclass(frozen=True)
class UmapResult:
    """UMAP coordinates of every document, the record stored in the ExecutionResult, and its graph."""

    coordinates: np.ndarray  # (n, n_components) float32
    record: dict[str, Any]
    graph: NeighbourGraph


def umap_coordinates(
    space: np.ndarray, options: ReductionOptions | None = None, progress: Progress | None = None
) -> UmapResult:
    """UMAP (cosine; rows are normalised here, not in place) of the (n, d) float32 rows of ``space``,
    fitted on all of them or, above ``options.fit_sample_size``, on a seeded sample, the other rows
    placed from their nearest sampled neighbours (see the module doc)."""
    options = options or ReductionOptions()
    progress = progress or Progress.silent()
    started = time.perf_counter()
    n, n_components = len(space), options.n_components or UMAP_COMPONENTS
    if n <= n_components + 1 or n < 3:
        raise AlgorithmError(
            f"Clustering algorithm failed: UMAP to {n_components} dimensions needs more than {n_components + 1} "
            f"documents; the collection has {n}. Set reduction.method to 'none' or ingest more documents."
        )
    neighbours = min(options.n_neighbors, n - 1)
    rows = None
    if n > options.fit_sample_size:
        rows = np.sort(np.random.default_rng(options.random_state).choice(n, options.fit_sample_size, replace=False))
    sample = _unit_rows(space if rows is None else space[rows])
    parameters: dict[str, Any] = {"n_components": n_components, "n_neighbors": neighbours}
    parameters |= {"min_dist": options.min_dist, "metric": "cosine", "n_epochs": UMAP_EPOCHS}
    parameters["random_state"] = options.random_state
    knn = _knn(sample, neighbours, progress, n)
    fitted = _fit_umap(sample, parameters, knn, progress, n)
    coordinates = fitted if rows is None else _place_others(space, rows, sample, fitted, neighbours, progress)
    record = {
        "method": "umap",
        **parameters,
        "fitted_documents": len(sample),
        "placed_documents": n - len(sample),
        "seconds": round(time.perf_counter() - started, 3),
    }
    progress.update("reduce", n, n, note=f"UMAP to {n_components} dimensions in {record['seconds']:.1f} s")
    return UmapResult(coordinates, record, NeighbourGraph(sample, rows, knn, fitted, parameters))


def _knn(sample: np.ndarray, neighbours: int, progress: Progress, total: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact kNN graph of the unit rows ``sample`` (faiss), in umap-learn's convention: each row's
    own index first, at distance 0."""
    progress.update("reduce", 0, total, note=f"UMAP: exact {neighbours}-NN graph of {len(sample):,} documents (faiss)")
    scores, indices = knn_graph(sample, neighbours - 1, metric="ip")
    knn_indices = np.hstack([np.arange(len(sample), dtype=np.int64)[:, None], indices])
    knn_distances = np.hstack([np.zeros((len(sample), 1), np.float32), np.maximum(1.0 - scores, 0.0)])
    return knn_indices, knn_distances


def _fit_umap(
    sample: np.ndarray,
    parameters: dict[str, Any],
    knn: tuple[np.ndarray, np.ndarray],
    progress: Progress,
    total: int,
    stage: str = "reduce",
) -> np.ndarray:
    """UMAP's coordinates of the unit rows ``sample``, from their kNN graph ``knn``."""
    with compiling(progress, "umap", "UMAP"), warnings.catch_warnings():
        umap = load_umap()
        progress.update(stage, 0, total, note=f"UMAP: {parameters['n_epochs']} epochs on {len(sample):,} documents")
        # a seed makes umap-learn run single-threaded, and a precomputed graph has no search index:
        # both are intended here and it warns about each
        warnings.filterwarnings("ignore", message=".*(overridden to 1|is not an NNDescent object).*")
        model = umap.UMAP(**parameters, precomputed_knn=(*knn, None))
        return np.asarray(model.fit_transform(sample), dtype=np.float32)


def layout_2d(
    graph: NeighbourGraph, space: np.ndarray, rows: np.ndarray, progress: Progress | None = None
) -> np.ndarray:
    """2-D coordinates of the documents ``rows`` (sorted indices into ``space``) from the clustering's
    own neighbour graph: a 2-D UMAP of the fitted rows, started from the two principal axes of their
    clustering coordinates (so it keeps their large-scale arrangement and skips the spectral start),
    the other rows placed from their nearest fitted neighbours as in the fit."""
    progress = progress or Progress.silent()
    coordinates = graph.coordinates - graph.coordinates.mean(axis=0)
    _, _, axes = np.linalg.svd(coordinates, full_matrices=False)
    start = coordinates @ axes[:2].T
    start = (10 * start / np.maximum(np.abs(start).max(axis=0), 1e-12)).astype(np.float32)  # UMAP's scale
    parameters = {
        **graph.parameters,
        "n_components": 2,
        "min_dist": LAYOUT_MIN_DIST,
        "init": start,
        "n_epochs": LAYOUT_EPOCHS,
    }
    fitted = _fit_umap(graph.sample, parameters, graph.knn, progress, len(graph.sample), stage="layout")
    if graph.rows is None:
        return fitted[rows]
    position = np.searchsorted(graph.rows, rows)
    inside = (position < len(graph.rows)) & (graph.rows[np.minimum(position, len(graph.rows) - 1)] == rows)
    layout = np.empty((len(rows), 2), dtype=np.float32)
    layout[inside] = fitted[position[inside]]
    others = rows[~inside]
    if len(others):
        neighbours = int(graph.parameters["n_neighbors"])
        layout[~inside] = place_from_neighbours(graph.sample, fitted, _unit_rows(space[others]), neighbours)
    return layout


def _place_others(
    space: np.ndarray, rows: np.ndarray, sample: np.ndarray, fitted: np.ndarray, neighbours: int, progress: Progress
) -> np.ndarray:
    """Coordinates of every row of ``space``: the sampled ``rows``' own, the others placed from them."""
    n = len(space)
    coordinates = np.empty((n, fitted.shape[1]), dtype=np.float32)
    coordinates[rows] = fitted
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    for start in range(0, len(rest), TRANSFORM_BLOCK):
        block = rest[start : start + TRANSFORM_BLOCK]
        coordinates[block] = place_from_neighbours(sample, fitted, _unit_rows(space[block]), neighbours)
        progress.update("reduce", len(rows) + start + len(block), n, note="UMAP: placing the other documents")
    return coordinates


def place_from_neighbours(
    sample: np.ndarray, sample_coordinates: np.ndarray, queries: np.ndarray, n_neighbors: int
) -> np.ndarray:
    """Coordinates for new unit rows: the membership-weighted mean of their ``n_neighbors`` nearest
    sampled rows' (exact, by faiss).

    The weights are UMAP's fuzzy memberships ``exp(-(d - rho) / sigma)``, sigma fitted by umap-learn's
    ``smooth_knn_dist`` with local connectivity 1 (the nearest sampled row weighs 1), as UMAP's fit
    weighs its graph. umap-learn's ``transform`` uses local connectivity 0; on AG News fitted on
    2,500 documents, 0 left 29–32 % noise in 2 of 3 seeds, 1 left 5–10 % in all three.
    """
    from umap.umap_ import smooth_knn_dist

    k = min(n_neighbors, len(sample))
    scores, indices = search(sample, queries, k, metric="ip")
    distances = np.ascontiguousarray(np.maximum(1.0 - scores, 0.0), dtype=np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=1.0)
    weights = np.exp(-np.maximum(distances - rhos[:, None], 0.0) / sigmas[:, None])
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("qk,qkc->qc", weights, sample_coordinates[indices]).astype(np.float32)


@cache
def _compiled_once() -> None:
    """Give umap-learn's uncached numba kernels numba's on-disk cache (see the module doc)."""
    import importlib

    for module_name, name in UNCACHED_KERNELS:
        kernel = getattr(importlib.import_module(module_name), name, None)
        if kernel is not None and hasattr(kernel, "enable_caching"):
            kernel.enable_caching()


def load_umap() -> Any:
    """The ``umap`` module with numba's cache in ``NUMBA_CACHE_DIR`` (its uncached kernels cached too)."""
    numba_cache_dir()
    import umap

    _compiled_once()
    return umap


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """A float32 copy of ``X`` with unit rows (zero rows stay zero)."""
    out = np.array(X, dtype=np.float32, order="C")
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= np.where(norms > 0, norms, 1.0)[:, None]
    return out
