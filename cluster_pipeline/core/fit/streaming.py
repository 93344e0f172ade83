"""Out-of-core k-means: cluster a collection larger than the memory budget by streaming its batches.

Four passes over the Parquet parts, each holding one batch at a time:

1. gather a seeded random sample: k-means++ initial centres (``core.kmeans.sampled_init``) and,
   when configured, the PCA fit;
2. ``MiniBatchKMeans.partial_fit`` on every batch, in ``batch_size`` slices;
3. assign every document to its nearest centre, accumulating member sums (member means);
4. distance of every document to its member mean (Davies–Bouldin, Calinski–Harabasz and the
   assignments), and the cluster-stratified silhouette sample.

What stays in memory is O(N) small arrays (labels, distances) plus the samples, never the matrix.
The working buffers follow ``memory_budget_mb``: a quarter of it for one streamed batch (Arrow's
decode plus the prepared copy), a quarter for a block of the silhouette's distance matrix. Parts
are read by byte range (``Storage.parquet_stream``), so a part in S3 larger than the budget is
never held whole either. Fixed costs stay: the samples (initialisation: ``core.kmeans.sample_size``
rows; silhouette: ``metric_sample_size`` rows) and the interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cluster_pipeline.core.config.model import AUTO_K_RANGE, DEFAULT_K_MAX, ClusterConfig
from cluster_pipeline.core.errors import ConfigurationError, InvalidEmbeddingsError
from cluster_pipeline.core.fit.auto_k import choose_k
from cluster_pipeline.core.fit.clustering import (
    PCA_FIT_SAMPLE,
    FittedClustering,
    Preparation,
    check_embeddings,
    fit_preparation,
    order_by_size,
    reduction_record,
)
from cluster_pipeline.core.fit.kmeans import sample_size, sampled_init
from cluster_pipeline.core.fit.neighbors import nearest_centroids
from cluster_pipeline.core.fit.reduction import plan_reduction
from cluster_pipeline.core.fit.warning import clustering_warning
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.quality.metrics import (
    MIN_POINTS_PER_CLUSTER,
    QualityMetrics,
    describe_quality,
    indices_from_cluster_stats,
    sampled_silhouette,
    stratified_sample,
)
from cluster_pipeline.core.store.collections import STREAM_BATCH_ROWS, CollectionSnapshot, CollectionStore

STREAMABLE = frozenset({"kmeans", "minibatch_kmeans"})
# An in-memory execution peaks at about 2.5 matrices (matrix, metrics and labelling temporaries).
IN_MEMORY_PEAK_FACTOR = 2.5
# Bytes per float32 value of a streamed batch while it is worked on: Arrow decodes a fixed-size
# list into ~3.5x the values (values, repetition and definition levels, builder growth), then
# the prepared copy and the scoring differences.
STREAM_BYTES_PER_VALUE = 4 * 6
MIN_STREAM_BATCH_ROWS = 1024
MAX_SILHOUETTE_CHUNK_ROWS = 2048
MIN_SILHOUETTE_CHUNK_ROWS = 64


def matrix_bytes(snapshot: CollectionSnapshot, feature: str) -> int:
    return snapshot.num_documents * snapshot.features.get(feature, 0) * 4


def needs_streaming(config: ClusterConfig, num_documents: int, dimensions: int) -> bool:
    """Whether an in-memory execution of ``num_documents`` × ``dimensions`` would exceed ``config.memory_budget_mb``."""
    if config.memory_budget_mb is None:
        return False
    return num_documents * dimensions * 4 * IN_MEMORY_PEAK_FACTOR > config.memory_budget_mb * 2**20


def stream_batch_rows(config: ClusterConfig, dim: int) -> int:
    """Rows per streamed batch: a quarter of the budget, between 1,024 and the load path's 16,384."""
    share = (config.memory_budget_mb or 0) * 2**20 // 4
    return int(min(STREAM_BATCH_ROWS, max(MIN_STREAM_BATCH_ROWS, share // (dim * STREAM_BYTES_PER_VALUE))))


def silhouette_chunk_rows(config: ClusterConfig, sample_size: int) -> int:
    """Rows of the sample's distance matrix held at once (float32, with one temporary): a quarter of the budget."""
    share = (config.memory_budget_mb or 0) * 2**20 // 4
    rows = share // max(1, sample_size * 4 * 2)
    return int(min(MAX_SILHOUETTE_CHUNK_ROWS, max(MIN_SILHOUETTE_CHUNK_ROWS, rows)))


@dataclass
class StreamedClustering:
    """A streamed fit: the clustering, its metrics, and the sample the metrics and labels use."""

    fitted: FittedClustering
    metrics: QualityMetrics | None
    sample_rows: np.ndarray  # sorted row indices of the silhouette sample
    sample_space: np.ndarray  # (len(sample_rows), d) float32, prepared


def gather_rows(
    store: CollectionStore,
    snapshot: CollectionSnapshot,
    feature: str,
    rows: np.ndarray,
    preparation: Preparation | None = None,
    progress: Progress | None = None,
    stage: str = "sample",
    batch_rows: int = STREAM_BATCH_ROWS,
) -> np.ndarray:
    """The sorted ``rows`` of the feature as one float32 matrix (prepared when ``preparation`` is given)."""
    out = store.load_embeddings(snapshot, feature, progress, rows=rows, stage=stage, batch_rows=batch_rows)
    return out if preparation is None else preparation.apply(out, copy=False)


def _prepared_batches(
    store: CollectionStore,
    snapshot: CollectionSnapshot,
    feature: str,
    preparation: Preparation,
    progress: Progress,
    stage: str,
    batch_rows: int,
    note: str = "",
) -> Iterator[tuple[int, np.ndarray]]:
    total = snapshot.num_documents
    for offset, batch in store.iter_embeddings(snapshot, feature, batch_rows):
        if not np.isfinite(batch).all():
            bad = int(np.flatnonzero(~np.isfinite(batch).all(axis=1))[0]) + offset
            raise InvalidEmbeddingsError(
                f"Clustering algorithm failed: NaN values in embeddings (first at row {bad}). "
                "Re-embed or remove those documents."
            )
        yield offset, preparation.apply(batch, copy=True)
        progress.update(stage, offset + len(batch), total, note=note)


def fit_streaming(
    store: CollectionStore,
    snapshot: CollectionSnapshot,
    config: ClusterConfig,
    progress: Progress | None = None,
    random_state: int = 0,
) -> StreamedClustering:
    """Cluster ``snapshot`` with k-means without ever holding its matrix (see the module doc)."""
    from sklearn.cluster import MiniBatchKMeans

    if config.algorithm not in STREAMABLE:
        raise ConfigurationError(
            f"The collection ({matrix_bytes(snapshot, config.feature) / 2**20:,.0f} MiB of vectors) does not fit "
            f"memory_budget_mb={config.memory_budget_mb} for {config.algorithm}: only kmeans and minibatch_kmeans "
            "stream. Raise memory_budget_mb or use one of them."
        )
    unsupported = [
        name
        for name, used in (
            ("filters", config.filters is not None),
            ("several features", len(config.feature_names) > 1),
            ("sample_size", config.sample_size is not None),
            (f"centroid_method '{config.centroid_method}'", config.centroid_method != "mean"),
        )
        if used
    ]
    if unsupported:
        raise ConfigurationError(
            f"The documents to cluster ({matrix_bytes(snapshot, config.feature) / 2**20:,.0f} MiB of vectors or "
            f"more) exceed memory_budget_mb={config.memory_budget_mb}, and a streamed k-means cannot apply "
            f"{', '.join(unsupported)} (each needs the vectors in memory): raise memory_budget_mb, or remove them."
        )
    progress = progress or Progress.silent()
    started = time.perf_counter()
    n = snapshot.num_documents
    plan = plan_reduction(config, n, snapshot.features[config.feature])
    if plan.method == "umap" or config.max_clusters is not None:
        raise ConfigurationError(
            f"The collection ({matrix_bytes(snapshot, config.feature) / 2**20:,.0f} MiB of vectors) is streamed "
            f"(memory_budget_mb={config.memory_budget_mb}), and a streamed k-means cannot run UMAP or max_clusters "
            "(both need every vector at once): use reduction 'pca' or 'none' and set n_clusters instead."
        )
    parameters = config.estimator_parameters()
    auto = config.auto_k_parameter()
    k = int(parameters.get("k_max", DEFAULT_K_MAX) if auto else parameters.get("n_clusters", 8))
    if k > n and not auto:
        raise ConfigurationError(f"n_clusters={k} is larger than the number of documents ({n}).")
    rng = np.random.default_rng(random_state)
    seed = parameters.get("random_state", random_state)
    batch_rows = stream_batch_rows(config, snapshot.features[config.feature])

    # pass 1: a seeded sample for the initial centres (and the PCA, and the choice of k, when configured)
    size = min(n, max(sample_size(n, k), PCA_FIT_SAMPLE if plan.method == "pca" else 0))
    rows = np.sort(rng.choice(n, size, replace=False))
    sample = gather_rows(store, snapshot, config.feature, rows, None, progress, batch_rows=batch_rows)
    check_embeddings(sample)
    preparation = fit_preparation(sample, config, random_state)
    sample = preparation.apply(sample, copy=False)
    auto_k = None
    if auto:
        auto_k = choose_k(sample, config.algorithm, parameters, engine=config.kmeans_engine, progress=progress)
        parameters = {key: value for key, value in parameters.items() if key not in AUTO_K_RANGE}
        k = parameters["n_clusters"] = auto_k.chosen
    n_init = parameters.get("n_init", 3)
    sampled = len(sample)
    progress.update("init", 0, sampled, note="k-means++ on the sample")
    centres = sampled_init(
        sample,
        k,
        n_init=1 if n_init == "auto" else int(n_init),
        random_state=seed,
        size=sample_size(sampled, k),
        engine=config.kmeans_engine,
    )
    del sample
    progress.update("init", sampled, sampled, note="k-means++ on the sample")

    # pass 2: mini-batch k-means over every batch
    batch_size = int(parameters.get("batch_size", 4096))
    model = MiniBatchKMeans(n_clusters=k, init=centres, n_init=1, batch_size=batch_size, random_state=seed)
    for _, batch in _prepared_batches(
        store, snapshot, config.feature, preparation, progress, "fit", batch_rows, "partial_fit"
    ):
        for start in range(0, len(batch), batch_size):
            part = batch[start : start + batch_size]
            if len(part) >= k or model.__dict__.get("cluster_centers_") is not None:
                model.partial_fit(part)
    centres = np.asarray(model.cluster_centers_, dtype=np.float32)

    # pass 3: assign, and accumulate member means
    raw = np.empty(n, dtype=np.int64)
    sums = np.zeros((k, centres.shape[1]), dtype=np.float64)
    for offset, batch in _prepared_batches(
        store, snapshot, config.feature, preparation, progress, "assign", batch_rows
    ):
        nearest, _ = nearest_centroids(batch, centres)
        raw[offset : offset + len(batch)] = nearest
        _add_by_label(sums, nearest, batch)
    labels = order_by_size(raw)
    k_found = int(labels.max()) + 1
    ordered = np.full(k, -1, dtype=np.int64)
    ordered[raw] = labels  # raw centre index → cluster index by size (empty centres stay -1)
    del raw
    counts = np.bincount(labels, minlength=k_found).astype(np.float64)
    sums = sums[np.argsort(ordered)[k - k_found :]]
    means = sums / np.maximum(counts, 1)[:, None]
    means32 = means.astype(np.float32)

    # pass 4: distances to the member means, and the stratified silhouette sample
    target = min(max(config.metric_sample_size, MIN_POINTS_PER_CLUSTER * k_found), n)
    sample_rows = stratified_sample(labels, target, random_state) if k_found >= 2 else np.arange(0)
    sample_space = np.empty((len(sample_rows), centres.shape[1]), dtype=np.float32)
    distances = np.empty(n, dtype=np.float32)
    for offset, batch in _prepared_batches(store, snapshot, config.feature, preparation, progress, "score", batch_rows):
        own = labels[offset : offset + len(batch)]
        diff = batch - means32[own]
        distances[offset : offset + len(batch)] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        lo, hi = np.searchsorted(sample_rows, [offset, offset + len(batch)])
        sample_space[lo:hi] = batch[sample_rows[lo:hi] - offset]
    fitted = FittedClustering(
        labels=labels,
        centroids=means32,
        distances=distances,
        membership=None,
        preparation=preparation,
        metric="euclidean",
        parameters=parameters,
        fit_seconds=time.perf_counter() - started,
        extras={"fit_method": "streaming_minibatch_kmeans", "streamed": True},
        reduction=reduction_record(preparation),
        auto_k=auto_k,
        warning=clustering_warning(config.algorithm, parameters, labels, sample_space),
    )
    metrics = None
    if 2 <= k_found < n:
        scatter = np.bincount(labels, weights=distances, minlength=k_found) / counts
        within_squared = float(np.square(distances, dtype=np.float64).sum())
        davies_bouldin, calinski = indices_from_cluster_stats(means, counts, scatter, within_squared)
        progress.update("metrics", 0, len(sample_rows), note="silhouette on the stratified sample")
        silhouette = sampled_silhouette(
            sample_space,
            labels[sample_rows],
            counts.astype(np.int64),
            chunk_size=silhouette_chunk_rows(config, len(sample_rows)),
        )
        metrics = QualityMetrics(
            silhouette_score=round(silhouette, 6),
            davies_bouldin_index=round(davies_bouldin, 6),
            calinski_harabasz_score=round(calinski, 4),
            description=describe_quality(silhouette),
            silhouette_sample_size=len(sample_rows),
            silhouette_sampled=len(sample_rows) < n,
        )
    return StreamedClustering(fitted, metrics, sample_rows, sample_space)


def _add_by_label(sums: np.ndarray, labels: np.ndarray, batch: np.ndarray) -> None:
    """``sums[j] += batch[labels == j].sum(0)`` for every j, as one sparse product."""
    from scipy.sparse import csr_matrix

    one_hot = csr_matrix(
        (np.ones(len(labels), dtype=np.float32), (labels, np.arange(len(labels)))), shape=(len(sums), len(labels))
    )
    sums += one_hot @ batch
