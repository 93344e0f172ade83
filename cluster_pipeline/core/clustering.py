"""Fitting: prepare the vectors (L2 normalise, optional PCA), run the estimator, tidy its output.

We call scikit-learn / hdbscan estimators directly; this module only adds what every algorithm
needs around them: input checks with readable errors, cluster indices ordered by size (``cl_0``
is the largest), centroids and per-document distances in the space that was clustered.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster_pipeline.core.config import DENSITY_BASED, ClusterConfig, estimator_class
from cluster_pipeline.core.errors import (
    AlgorithmError,
    InsufficientDocumentsError,
    InvalidEmbeddingsError,
)
from cluster_pipeline.core.hdbscan_backends import choose_backend, make_hdbscan
from cluster_pipeline.core.kmeans import fit_kmeans
from cluster_pipeline.core.progress import Progress

AUTO_PCA_COMPONENTS = 10
AUTO_PCA_MIN_DIMENSIONS = 50
PCA_FIT_SAMPLE = 25_000  # 10–50 leading components are stable well before this
N_CLUSTER_PARAMETERS = ("n_clusters", "n_components")


@dataclass(frozen=True)
class Preparation:
    """A fitted, replayable preprocessing: applying it to the same rows gives the clustered space."""

    normalize: bool
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None  # (k, D) float32
    explained_variance_ratio: float | None = None

    @property
    def output_dimensions(self) -> int | None:
        return None if self.pca_components is None else int(self.pca_components.shape[0])

    @property
    def fingerprint(self) -> str:
        """Identifies the transform (not the object), so a cached prepared matrix can be reused."""
        if self.pca_components is None:
            return f"normalize={self.normalize}"
        digest = hashlib.sha1(self.pca_components.tobytes()).hexdigest()[:16]
        return f"normalize={self.normalize},pca={digest}"

    def apply(self, X: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Prepared float32 copy of ``X`` (or ``X`` itself, modified, when ``copy=False``)."""
        out = np.array(X, dtype=np.float32, copy=copy, order="C")
        if self.normalize:
            _normalize_rows(out)
        if self.pca_components is not None and self.pca_mean is not None:
            out = (out - self.pca_mean) @ self.pca_components.T
            out = np.ascontiguousarray(out, dtype=np.float32)
        return out


def _normalize_rows(X: np.ndarray, chunk: int = 65_536) -> None:
    """In-place L2 normalisation in chunks (no second (N, D) buffer); zero vectors stay zero."""
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        norms[norms == 0] = 1.0
        block /= norms[:, None]


def check_embeddings(X: np.ndarray) -> None:
    """Refuse NaN/inf and too few rows, with the seed's wording."""
    if X.ndim != 2:
        raise InvalidEmbeddingsError(f"Clustering algorithm failed: embeddings must be a 2-D matrix, got {X.ndim}-D.")
    if len(X) < 2:
        raise InsufficientDocumentsError(
            f"Insufficient documents for clustering: need at least 2 documents, the collection has {len(X)}. "
            "Ingest more documents and execute again."
        )
    finite = np.concatenate([np.isfinite(X[start : start + 65_536]).all(axis=1) for start in range(0, len(X), 65_536)])
    if not finite.all():
        raise InvalidEmbeddingsError(
            f"Clustering algorithm failed: NaN values in embeddings ({int((~finite).sum())} of {len(X)} documents, "
            f"first at row {int(np.flatnonzero(~finite)[0])}). Re-embed or remove those documents."
        )


def pca_components(config: ClusterConfig, dimensions: int) -> int | None:
    """Components the configuration's PCA keeps on ``dimensions``-d vectors (None: no PCA)."""
    components = config.preprocessing.pca_components
    if components == "auto":
        dense = config.algorithm in DENSITY_BASED and dimensions > AUTO_PCA_MIN_DIMENSIONS
        return AUTO_PCA_COMPONENTS if dense else None
    return components if isinstance(components, int) else None


def fit_preparation(X: np.ndarray, config: ClusterConfig, random_state: int = 0) -> Preparation:
    """Decide and fit the preprocessing for ``config`` on ``X`` (PCA fitted on a seeded sample)."""
    options = config.preprocessing
    components = pca_components(config, X.shape[1])
    if components is None or components >= X.shape[1]:
        return Preparation(normalize=options.normalize)
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(random_state)
    sample = X if len(X) <= PCA_FIT_SAMPLE else X[np.sort(rng.choice(len(X), PCA_FIT_SAMPLE, replace=False))]
    sample = Preparation(normalize=options.normalize).apply(sample)
    n_components = min(int(components), len(sample))
    pca = PCA(n_components=n_components, svd_solver="randomized", random_state=random_state).fit(sample)
    return Preparation(
        normalize=options.normalize,
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        explained_variance_ratio=float(pca.explained_variance_ratio_.sum()),
    )


@dataclass
class FittedClustering:
    """What an estimator found, in a form every later stage understands.

    ``labels`` index clusters 0..K-1 by decreasing size (-1 = noise); ``centroids`` are member means in
    the clustered space; ``distances`` are each document's Euclidean distance to its centroid (NaN
    for noise); ``membership`` is the estimator's confidence where it has one (HDBSCAN
    probabilities, GMM posterior), else None.
    """

    labels: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    membership: np.ndarray | None
    preparation: Preparation
    metric: str
    parameters: dict[str, Any]
    fit_seconds: float
    extras: dict[str, Any] = field(default_factory=dict)
    engine: str = "scikit-learn"

    @property
    def num_clusters(self) -> int:
        return int(len(self.centroids))

    @property
    def num_noise(self) -> int:
        return int((self.labels < 0).sum())

    @property
    def cluster_sizes(self) -> np.ndarray:
        return np.bincount(self.labels[self.labels >= 0], minlength=self.num_clusters)


def _check_cluster_count(parameters: dict[str, Any], n: int) -> None:
    for name in N_CLUSTER_PARAMETERS:
        k = parameters.get(name)
        if isinstance(k, int) and k > n:
            raise AlgorithmError(
                f"Clustering algorithm failed: {name}={k} is larger than the number of documents ({n}); "
                f"set {name} to at most {n} or ingest more documents."
            )


@dataclass
class EstimatorOutput:
    """Raw labels (any integers, negative = noise), membership or None, the parameters used, how the
    fit ran (``faiss+sampled_init``, ``hdbscan:fast_hdbscan``, the algorithm's name…) and its engine."""

    labels: np.ndarray
    membership: np.ndarray | None
    parameters: dict[str, Any]
    method: str
    engine: str


def fit_estimator(space: np.ndarray, config: ClusterConfig, progress: Progress | None = None) -> EstimatorOutput:
    """Run the configured estimator on the prepared ``space``: k-means on ``config.kmeans_engine``
    (see ``core.kmeans``), HDBSCAN on the fastest backend, the rest as scikit-learn estimators."""
    parameters = config.estimator_parameters()
    _check_cluster_count(parameters, len(space))
    progress = progress or Progress.silent()
    membership = None
    method: str = config.algorithm
    engine = "scikit-learn"
    try:
        if config.algorithm == "kmeans":
            fit = fit_kmeans(space, parameters, progress, engine=config.kmeans_engine)
            labels, method, engine = fit.labels, fit.method, fit.engine
        elif config.algorithm == "hdbscan":
            backend = choose_backend(config.hdbscan_backend, config.parameters, len(space))
            estimator = make_hdbscan(backend, parameters)
            progress.update("fit", 0, len(space), note=f"HDBSCAN ({backend})")
            labels = estimator.fit_predict(space)
            membership = np.asarray(estimator.probabilities_, dtype=np.float32)
            method = f"hdbscan:{backend}"
            engine = "scikit-learn" if backend == "sklearn" else backend
        else:
            estimator = estimator_class(config.algorithm)(**parameters)
            progress.update("fit", 0, len(space), note=config.algorithm)
            if config.algorithm == "gaussian_mixture":
                estimator.fit(space)
                posterior = estimator.predict_proba(space)
                labels = posterior.argmax(axis=1)
                membership = posterior.max(axis=1).astype(np.float32)
            else:
                labels = estimator.fit_predict(space)
    except (ValueError, MemoryError, np.linalg.LinAlgError) as error:
        raise AlgorithmError(f"Clustering algorithm failed: {config.algorithm}: {error}") from None
    progress.update("fit", len(space), len(space), note=method)
    return EstimatorOutput(np.asarray(labels, dtype=np.int64), membership, parameters, method, engine)


def order_by_size(raw_labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..K-1 by decreasing size (ties by first appearance); noise stays -1."""
    labels = np.full(len(raw_labels), -1, dtype=np.int32)
    members = raw_labels >= 0
    if not members.any():
        return labels
    values, first, counts = np.unique(raw_labels[members], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(values.max() + 1, dtype=np.int32)
    mapping[values[order]] = np.arange(len(values), dtype=np.int32)
    labels[members] = mapping[raw_labels[members]]
    return labels


def centroids_and_distances(space: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Member means per cluster and each member's Euclidean distance to its own centroid."""
    from scipy.sparse import csr_matrix

    members = np.flatnonzero(labels >= 0)
    k = int(labels.max()) + 1 if len(members) else 0
    # one sparse (K, N) one-hot product: O(N*D), no (N, D) temporary
    one_hot = csr_matrix((np.ones(len(members), dtype=np.float32), (labels[members], members)), shape=(k, len(space)))
    counts = np.bincount(labels[members], minlength=k).astype(np.float32)
    centroids = np.asarray(one_hot @ space, dtype=np.float32) / np.maximum(counts, 1)[:, None]
    distances = np.full(len(space), np.nan, dtype=np.float32)
    for start in range(0, len(members), 65_536):
        rows = members[start : start + 65_536]
        diff = space[rows] - centroids[labels[rows]]
        distances[rows] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return centroids, distances


def fit_clustering(
    X: np.ndarray, config: ClusterConfig, *, copy: bool = True, progress: Progress | None = None
) -> tuple[FittedClustering, np.ndarray]:
    """Prepare ``X`` ((n_samples, n_features) float32), fit the configured algorithm, tidy the output.

    Returns the fitted clustering and the prepared space it was fitted on (metrics and labels use it).
    With ``copy=False`` the normalisation happens in ``X``'s own buffer, saving one matrix of memory.
    """
    check_embeddings(X)
    started = time.perf_counter()
    preparation = fit_preparation(X, config)
    space = preparation.apply(X, copy=copy)
    output = fit_estimator(space, config, progress)
    labels = order_by_size(output.labels)
    centroids, distances = centroids_and_distances(space, labels)
    fitted = FittedClustering(
        labels=labels,
        centroids=centroids,
        distances=distances,
        membership=output.membership,
        preparation=preparation,
        metric=str(output.parameters.get("metric", "euclidean")),
        parameters=output.parameters,
        fit_seconds=time.perf_counter() - started,
        extras={"fit_method": output.method},
        engine=output.engine,
    )
    return fitted, space
