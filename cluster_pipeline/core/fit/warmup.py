"""Compile the numba kernels executions use, once per machine (the container image build runs it)."""

from __future__ import annotations


def warm_numba_cache(dimensions: int = 384, num_points: int = 2000) -> float:
    """Compile the numba code of the default HDBSCAN configuration (UMAP's kernels and fast_hdbscan's,
    with the signatures executions use) into ``NUMBA_CACHE_DIR``, by running it on random vectors where
    the cache is kept (``deploy/Dockerfile``): later processes load machine code instead of compiling
    for minutes. Returns the seconds it took."""
    import time

    import numpy as np

    from cluster_pipeline.core.fit.clustering import fit_clustering
    from cluster_pipeline.core.fit.options import ClusteringOptions

    started = time.perf_counter()
    vectors = np.random.default_rng(0).normal(size=(num_points, dimensions)).astype(np.float32)
    fit_clustering(vectors, ClusteringOptions(algorithm="hdbscan", hdbscan_backend="fast_hdbscan"))
    return time.perf_counter() - started
