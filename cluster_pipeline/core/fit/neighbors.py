"""Exact nearest neighbours by flat (brute-force) float32 indexes: faiss-cpu, or numpy GEMMs without it.

Every nearest-neighbour question in the project goes through here. A flat index is one float32 GEMM
per block of queries, at the machine's BLAS speed with no Python loop per row; faiss adds blocking,
a top-k heap in C++ and OpenMP, and is the engine whenever it is installed. The numpy path gives the
same answers (ties aside) when it is not.

faiss runs its BLAS inside OpenMP. libgomp's default wait policy spins idle threads, which on a
shared 2-core machine made a k-means 3–4× slower than one thread (measured: 7.3 s against 1.7 s);
``OMP_WAIT_POLICY=PASSIVE`` is set, unless the user set it, before faiss loads its OpenMP runtime.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from functools import cache
from typing import Any, Literal

import numpy as np

Metric = Literal["l2", "ip"]
Engine = Literal["auto", "faiss", "numpy"]
QUERY_BLOCK = 4096  # rows of queries per GEMM in the numpy path: bounds the temporary to 4096 × n_index
GEMM_CENTROIDS = 4096  # nearest-centroid searches by numpy's GEMM up to this many centroids
GEMM_BLOCK_VALUES = 1 << 19  # rows × centroids of one block's distances (2 MB of float32)


@cache
def faiss_installed() -> bool:
    return importlib.util.find_spec("faiss") is not None


def load_faiss() -> Any:
    """The faiss module, loaded with a passive OpenMP wait policy (see the module doc)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    return faiss


def search(
    index_vectors: np.ndarray, queries: np.ndarray, k: int, *, metric: Metric = "l2", engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` (at most n) nearest rows of ``index_vectors`` ((n, d) float32) to each row of ``queries``
    ((m, d)), exactly: (m, k) float32 scores and (m, k) int64 row indices, best first. ``metric``
    "l2" scores by squared Euclidean distance (smallest first), "ip" by inner product (largest first;
    cosine similarity on unit rows); ``engine`` "auto" is faiss when installed, else numpy."""
    index_vectors = np.ascontiguousarray(index_vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if not 1 <= k <= len(index_vectors):
        raise ValueError(f"k must be between 1 and the number of indexed rows ({len(index_vectors)}), got {k}.")
    if engine == "faiss" or (engine == "auto" and faiss_installed()):
        faiss = load_faiss()
        index = (faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP)(index_vectors.shape[1])
        index.add(index_vectors)
        scores, indices = index.search(queries, k)
        if metric == "l2":
            np.maximum(scores, 0.0, out=scores)  # the norm expansion can round below zero
        return scores, indices.astype(np.int64, copy=False)
    return _numpy_search(index_vectors, queries, k, metric)


def _numpy_search(
    index_vectors: np.ndarray, queries: np.ndarray, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    index_norms = np.einsum("ij,ij->i", index_vectors, index_vectors) if metric == "l2" else None
    scores = np.empty((len(queries), k), dtype=np.float32)
    indices = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK]
        products = block @ index_vectors.T
        if index_norms is not None:  # squared L2 = |q|² + |x|² − 2 q·x; rank by |x|² − 2 q·x
            products *= -2.0
            products += index_norms
        else:
            np.negative(products, out=products)
        top = np.argpartition(products, k - 1, axis=1)[:, :k] if k < products.shape[1] else None
        if top is None:
            top = np.broadcast_to(np.arange(products.shape[1]), products.shape).copy()
        values = np.take_along_axis(products, top, axis=1)
        order = np.argsort(values, axis=1, kind="stable")
        top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
        if index_norms is not None:
            values += np.einsum("ij,ij->i", block, block)[:, None]
            np.maximum(values, 0.0, out=values)
        else:
            np.negative(values, out=values)
        scores[start : start + len(block)] = values
        indices[start : start + len(block)] = top
    return scores, indices


def nearest_centroids(
    X: np.ndarray, centroids: np.ndarray, *, engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centroid (Euclidean): (n,) int64 indices and (n,) float32 squared distances.

    "auto" is numpy's blocked GEMM and ``argmin`` (``nearest_in_blocks``) for up to ``GEMM_CENTROIDS``
    centroids: a k-means assignment (1M × 384 against 100 centres) ran 3× faster so than as a faiss
    flat search on the shared 2-core machine, whose OpenMP threads wait on each other when the cores
    are busy; faiss (when installed) for more, where it blocks the centroids too."""
    if engine == "faiss" or (engine == "auto" and len(centroids) > GEMM_CENTROIDS and faiss_installed()):
        scores, indices = search(centroids, X, 1, metric="l2", engine="faiss")
        return indices[:, 0], scores[:, 0]
    labels = np.empty(len(X), dtype=np.int64)
    squared = np.empty(len(X), dtype=np.float32)
    for start, block_labels, block_squared in nearest_in_blocks(X, centroids):
        labels[start : start + len(block_labels)] = block_labels
        squared[start : start + len(block_labels)] = block_squared
    return labels, squared


def nearest_in_blocks(
    X: np.ndarray, centroids: np.ndarray, start: int = 0
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(first row, nearest centroid, squared distance)`` for blocks of rows of ``X`` (float32), each by
    one GEMM against the centroids and an ``argmin``; a block's distances (rows × centroids) stay about
    ``GEMM_BLOCK_VALUES`` floats, in cache. ``start`` is added to the rows (``X`` a batch of a larger
    collection)."""
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    scaled = np.ascontiguousarray(-2.0 * centroids.T)
    norms = np.einsum("ij,ij->i", centroids, centroids)
    rows = int(min(max(GEMM_BLOCK_VALUES // max(len(centroids), 1), 256), 8192))
    for first in range(0, len(X), rows):
        block = np.asarray(X[first : first + rows], dtype=np.float32)
        distances = block @ scaled
        distances += norms
        nearest = distances.argmin(axis=1)
        squared = distances[np.arange(len(block)), nearest]
        squared += np.einsum("ij,ij->i", block, block)
        np.maximum(squared, 0.0, out=squared)  # the norm expansion can round below zero
        yield start + first, nearest.astype(np.int64, copy=False), squared


def knn_graph(
    X: np.ndarray, k: int, *, metric: Metric = "l2", engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row of ``X`` among the other rows (a kNN graph): (n, k)
    scores (as ``search``) and indices. A row is never its own neighbour, even when duplicates tie with
    it. Exact search costs O(n² d): right up to ~100–200k rows at 384 dimensions (see PERF_NOTES)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not 1 <= k < len(X):
        raise ValueError(f"k must be between 1 and n - 1 ({len(X) - 1}), got {k}.")
    scores, indices = search(X, X, k + 1, metric=metric, engine=engine)
    own = indices == np.arange(len(X))[:, None]
    # drop each row's own entry; where a duplicate pushed it out of the top k + 1, drop the last one
    own[~own.any(axis=1), -1] = True
    keep = ~own
    return scores[keep].reshape(len(X), k), indices[keep].reshape(len(X), k)
