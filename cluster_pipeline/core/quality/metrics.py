"""Clustering quality metrics that scale to a million float32 embeddings.

scikit-learn's metrics are the reference (same definitions and conventions), but its silhouette
upcasts to float64 and loops over rows in Python, and its Davies-Bouldin / Calinski-Harabasz copy
the whole matrix to float64. Here the heavy products stay float32 and only accumulators are float64.
Exact silhouette costs O(N^2 D), so beyond ``sample_size`` points it is estimated on a sample
stratified by cluster: too few points per cluster bias it low (see shared/PERF_NOTES.md, Metrics).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cluster_pipeline.core.errors import InvalidEmbeddingsError

NOISE_LABEL = -1
MIN_POINTS_PER_CLUSTER = 50
GEMM_METRICS = ("euclidean", "cosine")
# rows of the silhouette's distance blocks: 1,024 × 10,000 float32 is 41 MB (2,048 took twice the
# memory, in a metrics stage that sets the 1M peak, for no speed: 20k points 1.28-1.46 vs 1.07-1.22 s)
SILHOUETTE_CHUNK = 1024
ROW_BLOCK = 8192  # rows per pass over X for the O(N*D) metrics: bounds every temporary to a few MB


@dataclass(frozen=True)
class QualityMetrics:
    """Quality of one clustering's non-noise points: the silhouette in the clustering's metric (on
    ``silhouette_sample_size`` points, fewer than all when ``silhouette_sampled``), Davies–Bouldin and
    Calinski–Harabasz Euclidean whatever the metric."""

    silhouette_score: float
    davies_bouldin_index: float
    calinski_harabasz_score: float
    description: str
    silhouette_sample_size: int
    silhouette_sampled: bool

    def to_dict(self) -> dict[str, float | str]:
        """The four fields every stored result carries (the sampling details are run metadata)."""
        stored = ("silhouette_score", "davies_bouldin_index", "calinski_harabasz_score", "description")
        return {name: getattr(self, name) for name in stored}


@dataclass(frozen=True)
class MetricsOptions:
    """How the metrics are computed: the silhouette is exact up to ``sample_size`` points, and beyond
    estimated on a stratified sample of ``max(sample_size, 50 · n_clusters)`` seeded by ``random_state``."""

    sample_size: int = 10_000
    random_state: int = 0

    def silhouette_rows(self, codes: np.ndarray, k: int) -> np.ndarray:
        """Sorted rows of ``codes`` (each point's cluster, 0..k-1) the silhouette is computed on."""
        return stratified_sample(codes, max(self.sample_size, MIN_POINTS_PER_CLUSTER * k), self.random_state)


def describe_quality(silhouette: float) -> str:
    """The seed's verdict on a mean silhouette, word for word (what it cannot say: ``core.quality.verdict``)."""
    if silhouette >= 0.7:
        return "Excellent clustering quality"
    if silhouette >= 0.5:
        return "Good clustering quality"
    return "Poor clustering quality (needs tuning)"


def silhouette_samples_fast(
    X: np.ndarray, labels: np.ndarray, *, metric: str = "euclidean", chunk_size: int = SILHOUETTE_CHUNK
) -> np.ndarray:
    """Silhouette of every point, as :func:`sklearn.metrics.silhouette_samples` but by float32 GEMM.

    Row blocks of the distance matrix come from one GEMM (``|a|^2 + |b|^2 - 2ab`` on centred data,
    or ``1 - cos`` on normalised rows, the norms folded into the product); with the points sorted by
    cluster, each cluster's share of a block is a slice, summed (pairwise) into float64 per point.
    Only the upper triangle is computed (distances are symmetric), which halves the work. Memory: two
    float32 copies of ``X`` (the GEMM's factors), ``chunk_size * n`` floats, (n, K) sums. Every label, -1 included, is a
    cluster here; a singleton's points score 0 (scikit-learn's convention); metrics other than
    euclidean and cosine fall back to scikit-learn. InvalidEmbeddingsError for a bad ``X``,
    ValueError for fewer than 2 clusters or as many clusters as points.
    """
    X, labels = _validate(X, labels)
    _check_finite(X)
    if metric not in GEMM_METRICS:
        from sklearn.metrics import silhouette_samples

        return np.asarray(silhouette_samples(X, labels, metric=metric), dtype=np.float64)
    _, codes = np.unique(labels, return_inverse=True)
    n, k = len(codes), int(codes.max()) + 1
    if not 2 <= k <= n - 1:
        raise ValueError(f"Silhouette needs 2 <= n_clusters <= n_samples - 1; got {k} clusters for {n} points.")
    order = np.argsort(codes, kind="stable")  # members of a cluster side by side: its sums are slices
    sorted_codes = codes[order]
    left, right = _distance_factors(np.asarray(X)[order].astype(np.float32, copy=False), metric)
    sums = np.zeros((n, k), dtype=np.float64)  # distance from each point to each cluster
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        # Distances are symmetric: each block of rows meets only the columns from its own start on,
        # and the block past its diagonal also gives those later rows their sums to this block.
        distances = _distance_block(left, right, start, stop, metric)
        for first, last, cluster in _runs(sorted_codes, start, n):
            sums[start:stop, cluster] += distances[:, first - start : last - start].sum(axis=1)
        beyond = distances[:, stop - start :]
        for first, last, cluster in _runs(sorted_codes, start, stop):
            sums[stop:, cluster] += beyond[first - start : last - start].sum(axis=0)
    silhouette = np.empty(n)
    silhouette[order] = _silhouette_from_sums(sums, sorted_codes, np.bincount(codes, minlength=k).astype(np.float64))
    return silhouette


def _runs(sorted_codes: np.ndarray, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
    """``(first, last, code)`` of each run of equal codes in ``sorted_codes[start:stop]``."""
    codes = sorted_codes[start:stop]
    firsts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    lasts = np.r_[firsts[1:], len(codes)]
    for first, last in zip(firsts, lasts, strict=True):
        yield start + int(first), start + int(last), int(codes[first])


def silhouette_fast(
    X: np.ndarray, labels: np.ndarray, *, metric: str = "euclidean", chunk_size: int = SILHOUETTE_CHUNK
) -> float:
    """Mean silhouette, equal to :func:`sklearn.metrics.silhouette_score` (see :func:`silhouette_samples_fast`)."""
    return float(np.mean(silhouette_samples_fast(X, labels, metric=metric, chunk_size=chunk_size)))


def stratified_sample(labels: np.ndarray, size: int, random_state: int = 0) -> np.ndarray:
    """Sorted seeded sample of ``size`` row indices (all rows when ``size >= n``), stratified by cluster
    so small clusters are not lost: every cluster keeps ``min(its size, 50)`` points (less when
    ``size`` cannot hold 50 per cluster), the rest is shared in proportion to what each has left."""
    labels = np.asarray(labels)
    n = len(labels)
    if size >= n:
        return np.arange(n, dtype=np.int64)
    if size < 1:
        raise ValueError(f"Sample size must be at least 1, got {size}.")
    _, codes = cluster_codes(labels)
    counts = np.bincount(codes)
    # a floor of min(count, 50) per cluster, the rest by largest remainder, in exact integers
    floor = np.minimum(counts, min(MIN_POINTS_PER_CLUSTER, size // len(counts)))
    spare = counts - floor
    share, remainder = np.divmod((size - floor.sum()) * spare, spare.sum())
    quota = floor + share
    quota[np.argsort(-remainder, kind="stable")[: size - quota.sum()]] += 1
    # each cluster keeps its members with the lowest seeded keys U[0, 1); they lie under a cut a few
    # standard deviations above quota / count, so only those rows are sorted (by code + key), not all n
    keys = np.random.default_rng(random_state).random(n)
    cut = (quota + 4 * np.sqrt(quota) + 8) / counts
    candidate = keys < cut[codes]
    short = np.bincount(codes[candidate], minlength=len(counts)) < quota
    if short.any():  # (rarely) a cluster with too few keys under its cut: all its members
        candidate |= short[codes]
    rows = np.flatnonzero(candidate)
    order = rows[np.argsort(codes[rows] + keys[rows])]
    sorted_codes = codes[order]
    found = np.bincount(sorted_codes, minlength=len(counts))
    rank = np.arange(len(order)) - (np.cumsum(found) - found)[sorted_codes]
    return np.sort(order[rank < quota[sorted_codes]]).astype(np.int64, copy=False)


def cluster_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct labels and each label's rank among them (``np.unique(labels, return_inverse=True)``),
    by counting rather than sorting when the labels are integers (cluster indices, -1 for noise)."""
    labels = np.asarray(labels)
    spread = int(labels.max()) - int(labels.min()) if len(labels) and np.issubdtype(labels.dtype, np.integer) else -1
    if not 0 <= spread <= 4 * len(labels):  # not integers, or too sparse a range to count over
        present, codes = np.unique(labels, return_inverse=True)
        return present, codes.reshape(-1)
    low = int(labels.min())
    shifted = labels - low
    found = np.bincount(shifted) > 0
    return np.flatnonzero(found) + low, (np.cumsum(found) - 1)[shifted]


@dataclass(frozen=True)
class ClusterStatistics:
    """Per-cluster sufficient statistics of a clustering's non-noise points, from which Davies–Bouldin
    and Calinski–Harabasz follow (``indices``), however they were gathered (from the matrix, from a
    fit's centroids and distances, or streamed): (K, D) float64 member means in any common translation
    (both indices are invariant), member ``counts``, ``scatter`` (mean distance of the members to their
    mean) and ``within_squared`` (sum of squared distances to the mean)."""

    means: np.ndarray
    counts: np.ndarray
    scatter: np.ndarray
    within_squared: float

    @classmethod
    def of_distances(
        cls, means: np.ndarray, codes: np.ndarray, distances: np.ndarray, counts: np.ndarray
    ) -> ClusterStatistics:
        """From the member means and each point's cluster (``codes``, 0..K-1) and distance to its mean."""
        distances = np.asarray(distances, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.float64)
        scatter = np.bincount(codes, weights=distances, minlength=len(counts)) / counts
        return cls(np.asarray(means, dtype=np.float64), counts, scatter, float(np.square(distances).sum()))

    @classmethod
    def of_points(cls, X: np.ndarray, keep: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> ClusterStatistics:
        """From the rows ``keep`` of ``X`` and their ``codes``, in two block passes (float32 blocks,
        float64 accumulators), so ``X`` may be a 1M x 384 float32 array or memmap."""
        k = len(counts)
        all_codes = np.full(X.shape[0], -1, dtype=np.int64)
        all_codes[keep] = codes
        shift = X[keep[:ROW_BLOCK]].mean(axis=0, dtype=np.float64)  # sums of shifted rows lose less in float32
        sums = np.zeros((k, X.shape[1]), dtype=np.float64)
        for block, block_codes in _blocks(X, all_codes):
            add_by_label(sums, block_codes, block.astype(np.float32) - shift.astype(np.float32))
        means = sums / counts[:, None]
        squared_spread, spread = np.zeros(k), np.zeros(k)
        for block, block_codes in _blocks(X, all_codes):
            diff = block.astype(np.float64) - shift - means[block_codes]
            squared = np.einsum("ij,ij->i", diff, diff)
            squared_spread += np.bincount(block_codes, weights=squared, minlength=k)
            spread += np.bincount(block_codes, weights=np.sqrt(squared), minlength=k)
        return cls(means, counts.astype(np.float64), spread / counts, float(squared_spread.sum()))

    def indices(self) -> tuple[float, float]:
        """Davies–Bouldin and Calinski–Harabasz, with scikit-learn's definitions and conventions."""
        means, counts, scatter = self.means, self.counts, self.scatter
        k, n = len(counts), float(counts.sum())
        overall = means.T @ counts / n
        between = float((counts * ((means - overall) ** 2).sum(axis=1)).sum())
        within = self.within_squared
        calinski_harabasz = 1.0 if within == 0 else between * (n - k) / (within * (k - 1))
        norms = np.einsum("ij,ij->i", means, means)
        gaps = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2.0 * (means @ means.T), 0.0))
        np.fill_diagonal(gaps, 0.0)
        if np.allclose(scatter, 0) or np.allclose(gaps, 0):
            return 0.0, calinski_harabasz
        gaps[gaps == 0] = np.inf  # a cluster is not compared with itself (nor with one at its very centre)
        davies_bouldin = float(np.mean(np.max((scatter[:, None] + scatter[None, :]) / gaps, axis=1)))
        return davies_bouldin, calinski_harabasz


def add_by_label(sums: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> None:
    """``sums[j] += rows[labels == j].sum(0)`` for every j, as one sparse product."""
    from scipy.sparse import csr_matrix  # imported when used: scipy.sparse costs ~0.5 s at start-up

    one_hot = csr_matrix(
        (np.ones(len(labels), dtype=np.float32), (labels, np.arange(len(labels)))), shape=(len(sums), len(labels))
    )
    sums += one_hot @ rows


def measure(
    statistics: ClusterStatistics,
    X_sample: np.ndarray,
    sample_codes: np.ndarray,
    *,
    metric: str = "euclidean",
    chunk_size: int = SILHOUETTE_CHUNK,
) -> QualityMetrics:
    """The three metrics of a clustering: Davies–Bouldin and Calinski–Harabasz from its ``statistics``,
    the silhouette from its points ``X_sample`` with their clusters ``sample_codes``: all of them, or a
    stratified sample in which each point stands for ``cluster size / sampled members`` points of its
    cluster, so clusters the sample over-represents (each keeps at least 50 points) do not skew it."""
    davies_bouldin, calinski_harabasz = statistics.indices()
    sampled = len(sample_codes) < statistics.counts.sum()
    values = silhouette_samples_fast(X_sample, sample_codes, metric=metric, chunk_size=chunk_size)
    weights = statistics.counts[sample_codes] / np.bincount(sample_codes)[sample_codes] if sampled else None
    silhouette = float(np.average(values, weights=weights))
    return QualityMetrics(
        silhouette_score=silhouette,
        davies_bouldin_index=davies_bouldin,
        calinski_harabasz_score=calinski_harabasz,
        description=describe_quality(silhouette),
        silhouette_sample_size=len(sample_codes),
        silhouette_sampled=sampled,
    )


def compute_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    metric: str = "euclidean",
    options: MetricsOptions | None = None,
    centroids: np.ndarray | None = None,
    distances: np.ndarray | None = None,
) -> QualityMetrics | None:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of a clustering of ``X`` (float32, not upcast;
    a memmap is fine), noise (label -1) excluded; None with fewer than 2 clusters or as many clusters
    as points (the silhouette is undefined there).

    Davies-Bouldin and Calinski-Harabasz use all non-noise points (``ClusterStatistics``), Euclidean
    whatever ``metric`` is, as in scikit-learn; the silhouette follows ``options`` (``MetricsOptions``).
    Given the fit's member means (row ``c`` for label ``c``) and each point's distance to its own, as
    ``FittedClustering`` holds them, the two indices come from these (O(K·D)) instead of two passes
    over ``X``. InvalidEmbeddingsError when ``X`` is not 2-D, does not match ``labels`` or holds NaN/inf.
    """
    X, labels = _validate(X, labels)
    if centroids is None or distances is None:  # else only the silhouette sample is read, and checked there
        _check_finite(X)
    keep = np.flatnonzero(labels != NOISE_LABEL)
    present, codes = cluster_codes(labels[keep])
    n, k = len(keep), len(present)
    if n < 2 or not 2 <= k <= n - 1:
        return None
    counts = np.bincount(codes, minlength=k)
    if centroids is not None and distances is not None:
        statistics = ClusterStatistics.of_distances(np.asarray(centroids)[present], codes, distances[keep], counts)
    else:
        statistics = ClusterStatistics.of_points(X, keep, codes, counts)
    picked = (options or MetricsOptions()).silhouette_rows(codes, k)
    return measure(statistics, X[keep[picked]], codes[picked], metric=metric)


def _validate(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, labels = np.asarray(X), np.asarray(labels)
    if X.ndim != 2 or X.shape[1] == 0:
        raise InvalidEmbeddingsError(f"Embeddings must be a 2-D (n_samples, n_features) matrix, got shape {X.shape}.")
    if labels.shape != (X.shape[0],):
        raise InvalidEmbeddingsError(f"Got {X.shape[0]} embeddings but labels of shape {labels.shape}.")
    return X, labels


def _check_finite(X: np.ndarray) -> None:
    for start in range(0, X.shape[0], ROW_BLOCK):
        if not np.isfinite(X[start : start + ROW_BLOCK]).all():
            raise InvalidEmbeddingsError("Embeddings hold NaN or infinite values; fix or drop those documents.")


def _distance_factors(X: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 matrices whose product is the distance before its square root, so one GEMM does it all
    (``X``, a float32 copy the caller owns, is centred or normalised in place on the way).

    Euclidean: rows ``[-2a, |a|², 1]`` and ``[b, 1, |b|²]`` give ``|a|² + |b|² - 2ab`` (on centred data,
    where the norm expansion loses less to cancellation). Cosine: ``[-a, 1]`` and ``[b, 1]`` on unit
    rows give ``1 - cos`` (zero rows stay zero: distance 1, as in scikit-learn).
    """
    Z = X
    n, d = Z.shape
    if metric == "euclidean":
        Z -= Z.mean(axis=0, dtype=np.float64).astype(np.float32)
        squared_norms = np.einsum("ij,ij->i", Z, Z)
        left, right = np.empty((n, d + 2), dtype=np.float32), np.empty((n, d + 2), dtype=np.float32)
        np.multiply(Z, -2.0, out=left[:, :d])
        left[:, d], left[:, d + 1] = squared_norms, 1.0
        right[:, :d], right[:, d], right[:, d + 1] = Z, 1.0, squared_norms
        return left, right
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    Z /= np.where(norms > 0, norms, 1.0)[:, None]
    left, right = np.empty((n, d + 1), dtype=np.float32), np.empty((n, d + 1), dtype=np.float32)
    np.negative(Z, out=left[:, :d])
    left[:, d] = 1.0
    right[:, :d], right[:, d] = Z, 1.0
    return left, right


def _distance_block(left: np.ndarray, right: np.ndarray, start: int, stop: int, metric: str) -> np.ndarray:
    """Distances from rows ``start:stop`` to rows ``start:``, float32."""
    block = left[start:stop] @ right[start:].T
    np.maximum(block, 0.0, out=block)  # rounding can undershoot 0 (and overshoot 2 by ~1e-7: not worth a pass)
    if metric == "euclidean":
        np.sqrt(block, out=block)
    diagonal = np.arange(stop - start)
    block[diagonal, diagonal] = 0.0  # rounding would leave ~1e-3 here
    return block


def _silhouette_from_sums(sums: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    rows = np.arange(len(codes))
    own = counts[codes]
    intra = sums[rows, codes] / np.maximum(own - 1.0, 1.0)
    mean_to_cluster = sums / counts
    mean_to_cluster[rows, codes] = np.inf
    nearest = mean_to_cluster.min(axis=1)
    scale = np.maximum(intra, nearest)
    silhouette = np.divide(nearest - intra, scale, out=np.zeros_like(scale), where=scale > 0)
    silhouette[own == 1] = 0.0
    return silhouette


def _blocks(X: np.ndarray, all_codes: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row blocks of ``X`` with their cluster codes, noise rows (code -1) dropped."""
    for start in range(0, X.shape[0], ROW_BLOCK):
        block, block_codes = X[start : start + ROW_BLOCK], all_codes[start : start + ROW_BLOCK]
        member = block_codes >= 0
        if not member.all():
            block, block_codes = block[member], block_codes[member]
        if len(block_codes):
            yield block, block_codes
