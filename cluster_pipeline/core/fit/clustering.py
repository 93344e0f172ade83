"""Fitting: prepare the vectors (L2 normalise, optional PCA), reduce them (UMAP) for the algorithm,
resolve its data-dependent parameters, run it, split oversized clusters (density algorithms), then
merge topics and reassign noise when asked;
clusters are numbered by size (``cl_0`` is the largest).

Two spaces are involved. The *embedding space* is the prepared vectors (normalised, and PCA's
projection when PCA is the reduction: a linear map that keeps the geometry the metrics measure);
centroids, distances, metrics, labels and drift live there. UMAP's coordinates only guide the
algorithm: UMAP distorts distances on purpose (``min_dist=0`` packs clusters tight), so a
silhouette measured in them would flatter the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cluster_pipeline.core.errors import AlgorithmError, InsufficientDocumentsError, InvalidEmbeddingsError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.attributes import AttributeGroups
from cluster_pipeline.core.fit.auto_k import AUTO_K_RANGE, AutoK, choose_k
from cluster_pipeline.core.fit.centroids import cluster_centres, distances_to_centres
from cluster_pipeline.core.fit.merging import (
    merge_record,
    merge_similar_clusters,
    reassign_noise,
    split_oversized_clusters,
    split_record,
)
from cluster_pipeline.core.fit.neighbors import nearest_centroids
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.fit.reduction import NeighbourGraph, plan_reduction, umap_coordinates
from cluster_pipeline.core.fit.registry import EstimatorOutput, FitRun
from cluster_pipeline.core.progress import Progress

PCA_FIT_SAMPLE = 25_000  # 10–50 leading components are stable well before this


@dataclass(frozen=True)
class Preparation:
    """A fitted, replayable preprocessing: applying it to the same rows gives the embedding space."""

    normalize: bool
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None  # (k, D) float32
    explained_variance_ratio: float | None = None

    def apply(self, X: np.ndarray, *, copy: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        """Prepared float32 copy of ``X`` (or ``X`` itself, modified, when ``copy=False``; or written into
        ``out``, an ``X``-shaped float32 buffer, unless a PCA makes a new matrix)."""
        if out is not None and self.normalize:  # the unit rows written straight into the buffer
            prepared = normalize_rows(X, out=out)
        elif out is not None:
            np.copyto(out, X, casting="same_kind")
            prepared = out
        else:
            prepared = np.array(X, dtype=np.float32, copy=copy, order="C")
            if self.normalize:
                normalize_rows(prepared)
        if self.pca_components is not None and self.pca_mean is not None:
            prepared = np.ascontiguousarray((prepared - self.pca_mean) @ self.pca_components.T, dtype=np.float32)
        return prepared


def normalize_rows(X: np.ndarray, chunk: int = 65_536, out: np.ndarray | None = None) -> np.ndarray:
    """L2 normalisation in chunks, in place (no second (N, D) buffer) or into ``out``; zero vectors stay
    zero. Returns the normalised rows."""
    out = X if out is None else out
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        norms[norms == 0] = 1.0
        np.divide(block, norms[:, None], out=out[start : start + chunk])
    return out


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


def fit_preparation(X: np.ndarray, options: ClusteringOptions, random_state: int | None = None) -> Preparation:
    """The preprocessing of ``options`` fitted on ``X``: normalisation, and PCA on a seeded sample."""
    plan = plan_reduction(options.reduction, registry.spec(options.algorithm).default_reduction, X.shape[1])
    if plan.method != "pca" or plan.n_components is None:
        return Preparation(normalize=options.normalize)
    from sklearn.decomposition import PCA

    seed = options.reduction.random_state if random_state is None else random_state
    rng = np.random.default_rng(seed)
    sample = X if len(X) <= PCA_FIT_SAMPLE else X[np.sort(rng.choice(len(X), PCA_FIT_SAMPLE, replace=False))]
    sample = Preparation(normalize=options.normalize).apply(sample)
    pca = PCA(min(plan.n_components, len(sample)), svd_solver="randomized", random_state=seed).fit(sample)
    return Preparation(
        normalize=options.normalize,
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
        explained_variance_ratio=float(pca.explained_variance_ratio_.sum()),
    )


def reduction_record(preparation: Preparation) -> dict[str, Any]:
    """The ``reduction`` record of a PCA or no reduction (UMAP's comes from ``core.fit.reduction``)."""
    if preparation.pca_components is None:
        return {"method": "none"}
    return {
        "method": "pca",
        "n_components": int(preparation.pca_components.shape[0]),
        "explained_variance_ratio": round(preparation.explained_variance_ratio or 0.0, 4),
    }


@dataclass
class FittedClustering:
    """What an estimator found, in a form every later stage understands.

    ``labels`` index clusters 0..K-1 by decreasing size (-1 = noise); ``centroids`` (``centroid_method``,
    ``core.fit.centroids``) and ``distances`` (NaN for noise) are in the embedding space;
    ``membership`` is the estimator's confidence where it has one (HDBSCAN probabilities, GMM
    posterior). ``reassigned`` marks the noise documents ``reassign_noise`` gave a cluster;
    ``sample_rows`` are the rows fitted on (``sample_size``; None: all rows); ``groups`` holds each
    cluster's attribute values (``attribute_based``). ``reduction``, ``auto_k``, ``splits``,
    ``topic_reduction`` and ``warning`` record the reduction, the sweep that chose k, which found
    clusters were split (each child's parent), ``max_clusters``' merges and why there are fewer than 2
    clusters. ``sizes``: the clusters' sizes, when ``labels`` are a sample's (the view of the documents
    the stages after the fit read)."""

    labels: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    membership: np.ndarray | None
    preparation: Preparation
    metric: str
    parameters: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    engine: str = "scikit-learn"
    reduction: dict[str, Any] = field(default_factory=lambda: {"method": "none"})
    auto_k: AutoK | None = None
    topic_reduction: dict[str, Any] | None = None
    splits: dict[str, Any] | None = None
    reassigned: np.ndarray | None = None
    warning: str | None = None
    sample_rows: np.ndarray | None = None
    assigned_by: str | None = None
    groups: list[dict[str, object]] | None = None
    graph: NeighbourGraph | None = None  # UMAP's, when the algorithm ran on UMAP coordinates
    sizes: np.ndarray | None = None

    @property
    def num_clusters(self) -> int:
        return int(len(self.centroids))

    @property
    def num_noise(self) -> int:
        return int((self.labels < 0).sum())

    @property
    def num_reassigned(self) -> int:
        return 0 if self.reassigned is None else int(self.reassigned.sum())

    @property
    def num_found_noise(self) -> int:
        """Documents the algorithm left as noise (reassigned ones included)."""
        return self.num_noise + self.num_reassigned

    @property
    def cluster_sizes(self) -> np.ndarray:
        if self.sizes is not None:
            return self.sizes
        return np.bincount(self.labels[self.labels >= 0], minlength=self.num_clusters)


def resolve_parameters(
    options: ClusteringOptions, matrix: np.ndarray, progress: Progress | None = None
) -> tuple[dict[str, Any], AutoK | None]:
    """The estimator's concrete parameters for ``matrix``: the options', with defaults that depend on
    the documents fitted (HDBSCAN's ``min_cluster_size``) when not given, and ``"auto"`` replaced by
    the k that ``core.fit.auto_k`` chooses (returned too, with its curve)."""
    spec = registry.spec(options.algorithm)
    parameters = spec.with_defaults(options.parameters)
    if spec.sized_defaults is not None:
        fitted_documents = min(len(matrix), options.sample_size or len(matrix))  # the rows the algorithm sees
        for name, value in spec.sized_defaults(fitted_documents).items():
            parameters.setdefault(name, value)
    auto = spec.auto_k_parameter(options.parameters)
    if auto is None:
        return parameters, None
    auto_k = choose_k(matrix, auto, parameters, engine=options.kmeans_engine, progress=progress)
    parameters = {key: value for key, value in parameters.items() if key not in AUTO_K_RANGE}
    parameters[auto] = auto_k.chosen
    return parameters, auto_k


def fit_estimator(
    space: np.ndarray,
    options: ClusteringOptions,
    parameters: dict[str, Any],
    progress: Progress | None = None,
    groups: AttributeGroups | None = None,
) -> EstimatorOutput:
    """Run the algorithm with ``parameters`` (``resolve_parameters``) on ``space`` as its registry entry
    fits it; with ``sample_size``, on a seeded sample, every other row assigned after."""
    spec = registry.spec(options.algorithm)
    progress = progress or Progress.silent()
    everything, size = space, options.sample_size if spec.sampled else None
    refuse_oversized_sample(size, len(everything))
    sample_rows = None
    if size is not None and size < len(everything):  # a seeded sample of the rows, sorted
        sample_rows = np.sort(np.random.default_rng(0).choice(len(everything), size, replace=False))
        space = everything[sample_rows]
    k, n = parameters.get(spec.k_parameter or ""), len(space)
    if isinstance(k, int) and k > n:
        raise AlgorithmError(
            f"Clustering algorithm failed: {spec.k_parameter}={k} is larger than the number of documents ({n}); "
            f"set {spec.k_parameter} to at most {n} or ingest more documents."
        )
    estimate = spec.check_resources(parameters, space, options)
    if estimate is not None:
        progress.update("fit", 0, len(space), note=f"{spec.name}: estimated {estimate.describe()}")
    try:
        output = spec.fitter(spec, FitRun(space, parameters, options, progress, groups))
    except (ValueError, MemoryError, np.linalg.LinAlgError) as error:
        raise AlgorithmError(f"Clustering algorithm failed: {spec.name}: {error}") from None
    output.labels = np.asarray(output.labels, dtype=np.int64)
    if sample_rows is not None:
        centres = options.centroid_method if spec.has_centres else None
        labels, assigned_by = assign_from_sample(everything, sample_rows, output.labels, centres)
        method = f"{output.method}+sample({len(sample_rows)})"
        output = replace(output, labels=labels, membership=None, method=method, sample_rows=sample_rows)
        output.assigned_by = assigned_by
    progress.update("fit", len(everything), len(everything), note=output.method)
    return output


def refuse_oversized_sample(size: int | None, n: int, *, filtered: bool = False) -> None:
    """A ``sample_size`` larger than the ``n`` documents to cluster asks for more than there is."""
    if size is not None and size > n:
        after = " (after the filter)" if filtered else ""
        raise InsufficientDocumentsError(
            f"sample_size={size:,} is larger than the {n:,} documents to cluster{after}; lower sample_size to at "
            f"most {n:,}, or remove it to fit on every document."
        )


def assign_from_sample(
    space: np.ndarray, rows: np.ndarray, sample_labels: np.ndarray, centroid_method: str | None
) -> tuple[np.ndarray, str]:
    """Labels for every row of ``space`` from a clustering of its ``rows``, and how they were given.

    Algorithms whose clusters have a centre (given a ``centroid_method``) assign each row to the
    nearest centre of the sampled clusters (in the space the algorithm ran in); the others
    (``None``), whose clusters are shaped by density or a graph, give each row the label of its
    nearest sampled row, noise included. Sampled rows keep their own labels either way.
    """
    compact = order_by_size(sample_labels).astype(np.int64)
    if centroid_method is None or not (compact >= 0).any():
        return nearest_sampled_labels(space, rows, compact), "nearest_member"
    centres = cluster_centres(np.ascontiguousarray(space[rows]), compact, centroid_method)
    labels, _ = nearest_centroids(space, centres)
    labels = np.asarray(labels, dtype=np.int64)
    labels[rows] = compact
    return labels, "nearest_centroid"


def nearest_sampled_labels(space: np.ndarray, rows: np.ndarray, sample_labels: np.ndarray) -> np.ndarray:
    """Labels for every row of ``space``: each takes the label of its nearest sampled row (noise too)."""
    nearest, _ = nearest_centroids(space, np.ascontiguousarray(space[rows], dtype=np.float32))
    labels = sample_labels[nearest]
    labels[rows] = sample_labels  # a sampled row is its own nearest (ties must not move it)
    return labels


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


def reduce_for_fit(
    space: np.ndarray, options: ClusteringOptions, preparation: Preparation, progress: Progress
) -> tuple[np.ndarray, dict[str, Any], NeighbourGraph | None]:
    """The matrix the algorithm runs on (UMAP's coordinates, or ``space`` itself), its record, and
    UMAP's neighbour graph (for the pictures' layout)."""
    plan = plan_reduction(options.reduction, registry.spec(options.algorithm).default_reduction, space.shape[1])
    if plan.method != "umap" or plan.n_components is None:
        return space, reduction_record(preparation), None
    umap_options = options.reduction.model_copy(update={"n_components": plan.n_components})
    reduced = umap_coordinates(space, umap_options, progress)
    return reduced.coordinates, reduced.record, reduced.graph


def fit_clustering(
    X: np.ndarray,
    options: ClusteringOptions,
    *,
    copy: bool = True,
    progress: Progress | None = None,
    groups: AttributeGroups | None = None,
) -> tuple[FittedClustering, np.ndarray]:
    """The fitted clustering of ``X`` ((n, d) float32) and the embedding space that metrics and labels
    use (see the module doc). With ``copy=False`` the normalisation happens in ``X``'s own buffer,
    saving one matrix of memory. ``groups``: the rows' attribute groups, for ``attribute_based``."""
    check_embeddings(X)
    progress = progress or Progress.silent()
    preparation = fit_preparation(X, options)
    space = preparation.apply(X, copy=copy)
    matrix, reduction, graph = reduce_for_fit(space, options, preparation, progress)
    parameters, auto_k = resolve_parameters(options, matrix, progress)
    output = fit_estimator(matrix, options, parameters, progress, groups)
    found = order_by_size(output.labels)
    limit = registry.spec(options.algorithm).split_above
    split = found if limit is None else order_by_size(split_oversized_clusters(found, space, limit))
    merged = split if options.max_clusters is None else merge_similar_clusters(split, space, options.max_clusters)
    reassigned = merged < 0 if options.reassign_noise and (merged < 0).any() and (merged >= 0).any() else None
    labels = order_by_size(merged if reassigned is None else reassign_noise(merged, space))
    centroids = cluster_centres(space, labels, options.centroid_method)
    extras: dict[str, Any] = {"fit_method": output.method}
    if output.mixture is not None:
        # each component's final cluster after ordering, merging and reassignment (-1: it kept no document)
        kept = (output.labels >= 0) & (labels >= 0)
        component_cluster = np.full(int(output.labels.max(initial=-1)) + 1, -1, dtype=np.int64)
        component_cluster[output.labels[kept]] = labels[kept]
        extras["gaussian_mixture"] = {**output.mixture, "component_cluster": component_cluster}
    fitted = FittedClustering(
        labels=labels,
        centroids=centroids,
        distances=distances_to_centres(space, labels, centroids),
        membership=output.membership,
        preparation=preparation,
        metric=str(parameters.get("metric", "euclidean")),
        parameters=parameters,
        extras=extras,
        engine=output.engine,
        reduction=reduction,
        auto_k=auto_k,
        topic_reduction=None if merged is split else merge_record(split, labels, options.max_clusters or 0),
        splits=split_record(found, split, labels, limit) if limit is not None and split.max() > found.max() else None,
        reassigned=reassigned,
        warning=registry.spec(options.algorithm).warning(parameters, labels, matrix, options.max_clusters),
        sample_rows=output.sample_rows,
        assigned_by=output.assigned_by,
        groups=None if groups is None else groups.by_cluster(output.labels, labels),
        graph=graph,
    )
    return fitted, space
