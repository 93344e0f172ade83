"""Out-of-core k-means: cluster a collection larger than the memory budget by streaming its batches,
in four passes over the parts (a sample for the initial centres, training, assignment, distances and
the silhouette sample), each holding one batch at a time. ``kmeans`` on faiss trains as it does in
memory (``core.fit.kmeans``): Lloyd to convergence on the seeded sample, drawn at 256 rows per centre,
so the training pass is that sample's read; ``minibatch_kmeans`` (or ``kmeans`` without faiss)
runs ``partial_fit`` over every batch.

What stays in memory is O(N) small arrays (labels, distances) plus the samples, never the matrix.
The working buffers follow ``memory_budget_mb``: a quarter of it for one streamed batch (Arrow's
decode plus the prepared copy), a quarter for a block of the silhouette's distance matrix. Parts
are read by byte range (``Storage.parquet_stream``), so a part in S3 larger than the budget is
never held whole either. Fixed costs stay: the samples (initialisation: ``core.fit.kmeans.sample_size``
rows; silhouette: ``metric_sample_size`` rows) and the interpreter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cluster_pipeline.core.errors import ConfigurationError, InvalidEmbeddingsError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.auto_k import DEFAULT_K_MAX, AutoK
from cluster_pipeline.core.fit.clustering import (
    PCA_FIT_SAMPLE,
    FittedClustering,
    Preparation,
    check_embeddings,
    fit_preparation,
    order_by_size,
    reduction_record,
    resolve_parameters,
)
from cluster_pipeline.core.fit.kmeans import choose_engine, faiss_lloyd, sample_size, sampled_init, training_size
from cluster_pipeline.core.fit.neighbors import nearest_centroids
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.fit.reduction import plan_reduction
from cluster_pipeline.core.fit.resource_guard import available_memory
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.quality.metrics import (
    ClusterStatistics,
    MetricsOptions,
    QualityMetrics,
    add_by_label,
    measure,
)
from cluster_pipeline.core.store.collections import CollectionSnapshot, CollectionStore
from cluster_pipeline.core.store.scanner import STREAM_BATCH_ROWS

# An in-memory execution peaks at about 2.5 matrices (matrix, metrics and labelling temporaries).
IN_MEMORY_PEAK_FACTOR = 2.5
# Bytes per float32 value of a streamed batch while it is worked on: Arrow decodes a fixed-size
# list into ~3.5x the values (values, repetition and definition levels, builder growth), then
# the prepared copy and the scoring differences.
STREAM_BYTES_PER_VALUE = 4 * 6
MIN_STREAM_BATCH_ROWS = 1024
MAX_SILHOUETTE_CHUNK_ROWS = 2048
MIN_SILHOUETTE_CHUNK_ROWS = 64
SEED = 0  # of the initial sample, and of the fit when the parameters give no random_state
DEFAULT_STREAM_BUDGET_MB = 2048  # where the machine's available memory cannot be read


def needs_streaming(
    options: ClusteringOptions,
    num_documents: int,
    dimensions: int,
    *,
    streamable: bool = True,
    available: int | None = None,
) -> bool:
    """Whether an in-memory execution of ``num_documents`` × ``dimensions`` (about
    ``IN_MEMORY_PEAK_FACTOR`` matrices at its peak) would exceed ``memory_budget_mb``; without a budget,
    whether it would exceed the memory this machine has available (``available`` bytes, default
    ``MemAvailable``) and the configuration can stream (``streamable``: one that cannot runs in memory,
    as it always did). So a collection larger than memory (10M × 384 is 15 GB of vectors) streams
    through its mapped files instead of being killed for want of memory."""
    peak = num_documents * dimensions * 4 * IN_MEMORY_PEAK_FACTOR
    if options.memory_budget_mb is not None:
        return peak > options.memory_budget_mb * 2**20
    available = available_memory() if available is None else available
    return streamable and available is not None and peak > available


def budget_mb(options: ClusteringOptions) -> int:
    """The memory a streamed execution may use: ``memory_budget_mb``, else what the machine has available."""
    if options.memory_budget_mb is not None:
        return options.memory_budget_mb
    return (available_memory() or DEFAULT_STREAM_BUDGET_MB * 2**20) // 2**20


def _quarter_budget_rows(options: ClusteringOptions, bytes_per_row: int, low: int, high: int) -> int:
    """Rows of ``bytes_per_row`` that a quarter of the budget (``budget_mb``) holds, between ``low`` and
    ``high``: a streamed batch's, and a block of the silhouette's distance matrix's (float32, with one
    temporary)."""
    share = budget_mb(options) * 2**20 // 4
    return int(min(high, max(low, share // max(1, bytes_per_row))))


@dataclass(frozen=True)
class StreamSource:
    """What a streamed fit reads: every document of a collection version, by its first embedding feature
    (``features`` and ``filtered`` say what the configuration asked for, so that it can be refused)."""

    store: CollectionStore
    snapshot: CollectionSnapshot
    features: tuple[str, ...]
    filtered: bool = False

    @property
    def feature(self) -> str:
        return self.features[0]

    @property
    def dimensions(self) -> int:
        return self.snapshot.features[self.feature]


@dataclass
class StreamedClustering:
    """A streamed fit: the clustering, its metrics, and the sample the metrics and labels use."""

    fitted: FittedClustering
    metrics: QualityMetrics | None
    sample_rows: np.ndarray  # sorted row indices of the silhouette sample
    sample_space: np.ndarray  # (len(sample_rows), d) float32, prepared


@dataclass(frozen=True)
class _Passes:
    """What the passes over every document share: the source, the preparation, progress, batch size."""

    source: StreamSource
    preparation: Preparation
    progress: Progress
    batch_rows: int

    def batches(self, stage: str, note: str = "", *, check: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """``(offset, prepared batch)`` over every document; ``check``: refusing NaN/inf (a pass that finds
        them in its own results, or runs after one that did, skips that read of every row). The prepared
        rows go into one buffer reused batch after batch (a consumer keeps nothing of a batch but copies):
        a fresh one per batch costs a page fault per 4 KiB of every batch."""
        source, total = self.source, self.source.snapshot.num_documents
        buffer = np.empty((self.batch_rows, source.dimensions), dtype=np.float32)
        for offset, batch in source.store.scan(source.snapshot).vectors(source.feature, self.batch_rows):
            if check and not (np.isfinite(batch.min()) and np.isfinite(batch.max())):  # NaN or ±inf in it
                refuse_non_finite(batch, offset)
            yield offset, self.preparation.apply(batch, out=buffer[: len(batch)])
            self.progress.update(stage, offset + len(batch), total, note=note)


def refuse_non_finite(batch: np.ndarray, offset: int) -> None:
    """InvalidEmbeddingsError naming the first row of ``batch`` (row ``offset`` of the collection) whose
    values are not all finite, or whose squares overflow (a row no distance can be measured from)."""
    finite = np.isfinite(batch).all(axis=1)
    bad = int(np.flatnonzero(~finite)[0]) if not finite.all() else None
    if bad is None:
        bad = int(np.flatnonzero(~np.isfinite(np.einsum("ij,ij->i", batch, batch, dtype=np.float64)))[0])
    raise InvalidEmbeddingsError(
        f"Clustering algorithm failed: NaN values in embeddings (first at row {bad + offset}). "
        "Re-embed or remove those documents."
    )


def fit_streaming(
    source: StreamSource,
    options: ClusteringOptions,
    metrics: MetricsOptions | None = None,
    progress: Progress | None = None,
) -> StreamedClustering:
    """Cluster ``source`` with k-means without ever holding its matrix; the metrics come with it,
    computed from the passes' statistics (``metrics``: the silhouette's sample)."""
    refused = why_unstreamable(source, options)
    if refused is not None:
        raise refused
    progress = progress or Progress.silent()
    n = source.snapshot.num_documents
    batch_rows = _quarter_budget_rows(
        options, source.dimensions * STREAM_BYTES_PER_VALUE, MIN_STREAM_BATCH_ROWS, STREAM_BATCH_ROWS
    )
    preparation, parameters, centres, auto_k, sample = _initial_centres(source, options, progress, batch_rows)
    passes = _Passes(source, preparation, progress, batch_rows)
    if sample is not None:
        progress.update("fit", 0, len(sample), note=f"Lloyd on {len(sample):,} sampled rows (faiss)")
        centres = faiss_lloyd(sample, centres, seed=int(parameters.get("random_state") or SEED))[0]
        fit_method, engine = "streaming_kmeans+sampled_training", "faiss"
    else:
        centres, fit_method = _partial_fit(passes, centres, parameters), "streaming_minibatch_kmeans"
        engine = "scikit-learn"
    del sample
    labels, counts, means = _assign(passes, centres)
    k_found = len(counts)
    sample_rows = (metrics or MetricsOptions()).silhouette_rows(labels, k_found) if k_found >= 2 else np.arange(0)
    means32 = means.astype(np.float32)
    distances, sample_space = _score(passes, labels, means32, sample_rows)
    fitted = FittedClustering(
        labels=labels,
        centroids=means32,
        distances=distances,
        membership=None,
        preparation=preparation,
        metric="euclidean",
        parameters=parameters,
        extras={"fit_method": fit_method, "streamed": True},
        engine=engine,
        reduction=reduction_record(preparation),
        auto_k=auto_k,
        warning=registry.spec(options.algorithm).warning(parameters, labels, sample_space),
    )
    quality = None
    if 2 <= k_found < n:
        statistics = ClusterStatistics.of_distances(means, labels, distances, counts)
        progress.update("metrics", 0, len(sample_rows), note="silhouette on the stratified sample")
        chunk = _quarter_budget_rows(
            options, len(sample_rows) * 4 * 2, MIN_SILHOUETTE_CHUNK_ROWS, MAX_SILHOUETTE_CHUNK_ROWS
        )
        found = measure(statistics, sample_space, labels[sample_rows], chunk_size=chunk)
        quality = replace(
            found,
            silhouette_score=round(found.silhouette_score, 6),
            davies_bouldin_index=round(found.davies_bouldin_index, 6),
            calinski_harabasz_score=round(found.calinski_harabasz_score, 4),
        )
    return StreamedClustering(fitted, quality, sample_rows, sample_space)


def why_unstreamable(source: StreamSource, options: ClusteringOptions) -> ConfigurationError | None:
    """What a streamed k-means cannot do in this configuration, as the error that refuses it with the ways
    out (None: it streams)."""
    spec, budget = registry.spec(options.algorithm), options.memory_budget_mb
    size = f"{source.snapshot.num_documents * source.snapshot.features.get(source.feature, 0) * 4 / 2**20:,.0f} MiB"
    if not spec.streams:
        *others, last = [name for name in registry.names() if registry.spec(name).streams]
        streamable = f"{', '.join(others)} and {last}" if others else last
        return ConfigurationError(
            f"The collection ({size} of vectors) does not fit memory_budget_mb={budget} for {spec.name}: "
            f"only {streamable} stream. Raise memory_budget_mb or use one of them."
        )
    unsupported = [
        name
        for name, used in (
            ("filters", source.filtered),
            ("several features", len(source.features) > 1),
            ("sample_size", options.sample_size is not None),
            (f"centroid_method '{options.centroid_method}'", options.centroid_method != "mean"),
        )
        if used
    ]
    if unsupported:
        return ConfigurationError(
            f"The documents to cluster ({size} of vectors or more) exceed memory_budget_mb={budget}, and a streamed "
            f"k-means cannot apply {', '.join(unsupported)} (each needs the vectors in memory): raise "
            "memory_budget_mb, or remove them."
        )
    if plan_reduction(options.reduction, spec.default_reduction, source.dimensions).method == "umap" or (
        options.max_clusters is not None
    ):
        return ConfigurationError(
            f"The collection ({size} of vectors) is streamed (memory_budget_mb={budget}), and a streamed k-means "
            "cannot run UMAP or max_clusters (both need every vector at once): use reduction 'pca' or 'none' and "
            "set n_clusters instead."
        )
    return None


def _initial_centres(
    source: StreamSource, options: ClusteringOptions, progress: Progress, batch_rows: int
) -> tuple[Preparation, dict[str, Any], np.ndarray, AutoK | None, np.ndarray | None]:
    """Pass 1: a seeded sample for the initial centres (and the PCA, and the choice of k, when configured):
    the preparation, the concrete parameters (k chosen), the centres, the choice of k, and the prepared
    sample the centres are trained on (None: trained by ``partial_fit`` over every batch)."""
    spec, n = registry.spec(options.algorithm), source.snapshot.num_documents
    given = spec.with_defaults(options.parameters)
    auto = spec.auto_k_parameter(options.parameters)
    k = int(given.get("k_max", DEFAULT_K_MAX) if auto else given.get("n_clusters", 8))
    if k > n and not auto:
        raise ConfigurationError(f"n_clusters={k} is larger than the number of documents ({n}).")
    pca = plan_reduction(options.reduction, spec.default_reduction, source.dimensions).method == "pca"
    trains = spec.trains_on_sample and choose_engine(options.kmeans_engine, given) == "faiss"
    size = min(n, max(sample_size(n, k), PCA_FIT_SAMPLE if pca else 0, training_size(n, k) if trains else 0))
    rows = np.sort(np.random.default_rng(SEED).choice(n, size, replace=False))
    sample = source.store.scan(source.snapshot).matrix(
        source.feature, rows=rows, progress=progress, stage="sample", batch_rows=batch_rows
    )
    check_embeddings(sample)
    preparation = fit_preparation(sample, options, SEED)
    sample = preparation.apply(sample, copy=False)
    parameters, auto_k = resolve_parameters(options, sample, progress)
    k, n_init, sampled = int(parameters["n_clusters"]), parameters.get("n_init", 3), len(sample)
    n_init, seed = 1 if n_init == "auto" else int(n_init), parameters.get("random_state", SEED)
    progress.update("init", 0, sampled, note="k-means++ on the sample")
    centres = sampled_init(
        sample, k, n_init=n_init, random_state=seed, size=sample_size(n, k), engine=options.kmeans_engine
    )
    progress.update("init", sampled, sampled, note="k-means++ on the sample")
    return preparation, parameters, centres, auto_k, sample if trains else None


def _partial_fit(passes: _Passes, centres: np.ndarray, parameters: dict[str, Any]) -> np.ndarray:
    """Pass 2: mini-batch k-means over every batch, from the initial centres."""
    from sklearn.cluster import MiniBatchKMeans

    k, batch_size, seed = len(centres), int(parameters.get("batch_size", 4096)), parameters.get("random_state", SEED)
    model = MiniBatchKMeans(n_clusters=k, init=centres, n_init=1, batch_size=batch_size, random_state=seed)
    for _, batch in passes.batches("fit", "partial_fit"):
        for first in range(0, len(batch), batch_size):
            part = batch[first : first + batch_size]
            if len(part) >= k or model.__dict__.get("cluster_centers_") is not None:
                model.partial_fit(part)
    return np.asarray(model.cluster_centers_, dtype=np.float32)


def _assign(passes: _Passes, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass 3: every document's cluster (ordered by size), the clusters' sizes and member means (float64)."""
    k = len(centres)
    raw = np.empty(passes.source.snapshot.num_documents, dtype=np.int64)
    sums = np.zeros((k, centres.shape[1]), dtype=np.float64)
    for offset, batch in passes.batches("assign", check=False):
        nearest, squared = nearest_centroids(batch, centres)
        if not np.isfinite(squared).all():  # a NaN or an infinity reaches every distance of its row
            refuse_non_finite(batch, offset)
        raw[offset : offset + len(batch)] = nearest
        add_by_label(sums, nearest, batch)
    labels = order_by_size(raw)
    k_found = int(labels.max()) + 1
    ordered = np.full(k, -1, dtype=np.int64)
    ordered[raw] = labels  # raw centre index → cluster index by size (empty centres stay -1)
    counts = np.bincount(labels, minlength=k_found).astype(np.float64)
    sums = sums[np.argsort(ordered)[k - k_found :]]
    return labels, counts, sums / np.maximum(counts, 1)[:, None]


def _score(
    passes: _Passes, labels: np.ndarray, means: np.ndarray, sample_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 4: every document's distance to its member mean, and the prepared rows of the silhouette sample."""
    sample_space = np.empty((len(sample_rows), means.shape[1]), dtype=np.float32)
    distances = np.empty(passes.source.snapshot.num_documents, dtype=np.float32)
    differences = np.empty((passes.batch_rows, means.shape[1]), dtype=np.float32)  # reused, as the batches
    for offset, batch in passes.batches("score", check=False):  # the assignment pass refused NaN/inf
        diff = np.take(means, labels[offset : offset + len(batch)], axis=0, out=differences[: len(batch)])
        diff -= batch
        distances[offset : offset + len(batch)] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        lo, hi = np.searchsorted(sample_rows, [offset, offset + len(batch)])
        sample_space[lo:hi] = batch[sample_rows[lo:hi] - offset]
    return distances, sample_space
