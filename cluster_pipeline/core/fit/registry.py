"""The clustering algorithms, one spec each: everything the project asks about an algorithm.

As scikit-learn's estimators carry their ``_parameter_constraints``, a spec (``AlgorithmSpec``)
carries what an algorithm is to the pipeline. Every other module asks ``spec(name)`` or ``names()``;
none tests an algorithm's name. Adding an algorithm is one entry in ``SPECS`` (and its tests).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster_pipeline.core.fit import resource_guard, warning
from cluster_pipeline.core.fit.attributes import AttributeGroups, check_attribute_options
from cluster_pipeline.core.fit.auto_k import AUTO_K_RANGE, DEFAULT_K_MAX, DEFAULT_K_MIN
from cluster_pipeline.core.fit.hdbscan_backends import choose_backend, hdbscan_constraints, make_hdbscan
from cluster_pipeline.core.fit.kmeans import fit_kmeans
from cluster_pipeline.core.fit.numba_cache import compiling
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.fit.resource_guard import CostModel, FitEstimate
from cluster_pipeline.core.fit.warning import Advice
from cluster_pipeline.core.progress import Progress

# a density algorithm's cluster holding more than this share of the documents is split: below the
# largest_cluster_fraction check's default limit (0.5), so the defaults pass it
SPLIT_ABOVE = 0.4


def default_min_cluster_size(n_documents: int) -> int:
    """HDBSCAN's ``min_cluster_size`` when none is given: ``max(5, round(sqrt(N) / 2))``.

    Measured on AG News after UMAP (3 seeds, subsets of 1,000 to 7,600 documents): HDBSCAN's
    excess-of-mass selection flips between two regimes, a few large topics with ~5 % noise, or dozens
    of small clusters with ~30 % noise, and the switch sits at a minimum size that grows more slowly
    than N. sqrt(N)/2 (16, 22, 32, 44 at 1k, 2k, 4k, 7.6k) stayed in the first regime in every run
    (≤ 11 % noise); a fixed share of N (0.5 %: 10, 20, 38) fell into the second at 4,000 and sat on the
    edge at 7,600. Growing with sqrt(N) also lets a large collection hold more topics (≤ ~2·sqrt(N)).
    """
    return max(5, round(math.sqrt(max(n_documents, 0)) / 2))


@dataclass(frozen=True)
class FitRun:
    """One fit's inputs; ``parameters`` are concrete (defaults and the chosen k included)."""

    space: np.ndarray
    parameters: dict[str, Any]
    options: ClusteringOptions
    progress: Progress
    groups: AttributeGroups | None = None


@dataclass
class EstimatorOutput:
    """Raw labels (any integers, negative = noise), membership or None, how the fit ran
    (``faiss+sampled_init``, ``hdbscan:fast_hdbscan``…) and on what engine; a Gaussian mixture's
    arrays (to predict new documents); the rows of a fitted sample, and how the others were assigned."""

    labels: np.ndarray
    membership: np.ndarray | None
    method: str
    engine: str
    mixture: dict[str, Any] | None = None
    sample_rows: np.ndarray | None = None
    assigned_by: str | None = None


def fit_predict(spec: AlgorithmSpec, run: FitRun) -> EstimatorOutput:
    """The estimator as scikit-learn runs it."""
    run.progress.update("fit", 0, len(run.space), note=spec.name)
    labels = spec.estimator_class()(**run.parameters).fit_predict(run.space)
    return EstimatorOutput(np.asarray(labels), None, spec.name, "scikit-learn")


def fit_mixture(spec: AlgorithmSpec, run: FitRun) -> EstimatorOutput:
    """A Gaussian mixture: its posterior gives the membership, its arrays predict new documents."""
    run.progress.update("fit", 0, len(run.space), note=spec.name)
    model = spec.estimator_class()(**run.parameters).fit(run.space)
    posterior = model.predict_proba(run.space)
    arrays = ("weights", "means", "covariances", "precisions_cholesky")
    mixture = {name: getattr(model, f"{name}_") for name in arrays} | {"covariance_type": model.covariance_type}
    membership = posterior.max(axis=1).astype(np.float32)
    return EstimatorOutput(posterior.argmax(axis=1), membership, spec.name, "scikit-learn", mixture)


def fit_kmeans_engine(spec: AlgorithmSpec, run: FitRun) -> EstimatorOutput:
    """k-means on the configured engine (``core.fit.kmeans``: faiss Lloyd from sampled k-means++)."""
    fit = fit_kmeans(run.space, run.parameters, run.progress, engine=run.options.kmeans_engine)
    return EstimatorOutput(fit.labels, None, fit.method, fit.engine)


def fit_hdbscan(spec: AlgorithmSpec, run: FitRun) -> EstimatorOutput:
    """HDBSCAN on the fastest backend that supports the parameters (``core.fit.hdbscan_backends``)."""
    backend = choose_backend(run.options.hdbscan_backend, run.options.parameters, len(run.space))
    estimator = make_hdbscan(backend, run.parameters)
    run.progress.update("fit", 0, len(run.space), note=f"HDBSCAN ({backend})")
    with compiling(run.progress, backend, "HDBSCAN") if backend == "fast_hdbscan" else nullcontext():
        labels = estimator.fit_predict(run.space)
    engine = "scikit-learn" if backend == "sklearn" else backend
    return EstimatorOutput(labels, np.asarray(estimator.probabilities_, np.float32), f"hdbscan:{backend}", engine)


def fit_groups(spec: AlgorithmSpec, run: FitRun) -> EstimatorOutput:
    """The documents' attribute groups are the clusters (``core.fit.attributes``)."""
    if run.groups is None:
        raise ValueError(f"{spec.name} needs the documents' attribute groups")
    return EstimatorOutput(run.groups.labels.astype(np.int64), None, spec.name, "pyarrow")


def _load(name: str, module: str = "sklearn.cluster") -> Callable[[], type]:
    """The estimator class, imported when first asked for (hdbscan is slow to import)."""
    return lambda: getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm, as the pipeline sees it. ``defaults`` differ from the estimator's only where those
    are poor for embeddings: fixed seeds (reproducible runs), several k-means inits (one seed can cost
    0.15 V-measure, see PERF_NOTES), a kNN affinity for spectral (RBF on 384-d is near-constant),
    diagonal GMM covariances. ``k_parameter`` is the number of clusters, which ``"auto"`` may stand for
    unless ``fixed_k``; ``reduction`` is the ``auto`` reduction above 50 dimensions when not what
    ``density_based`` implies (UMAP, else none); ``label`` is the main parameter and its short form in
    default names (default: k). Documents outside a fitted sample join the nearest centre when
    ``has_centres``, else their nearest sampled document's cluster. ``cost`` is None for a linear fit;
    ``advice`` says what to try when a fit finds fewer than two clusters; ``check`` replaces the
    estimator's checks. Streamed (``streams``), an algorithm that ``trains_on_sample`` trains its centres
    on a seeded sample with faiss; the others update them batch by batch (``partial_fit``)."""

    name: str
    estimator: Callable[[], type] | None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    k_parameter: str | None = None
    fixed_k: bool = False
    has_centres: bool = False
    density_based: bool = False
    reduction: str | None = None
    cost: CostModel | None = None
    streams: bool = False
    trains_on_sample: bool = False
    sampled: bool = True
    label: tuple[str, str] | None = None
    fitter: Callable[[AlgorithmSpec, FitRun], EstimatorOutput] = fit_predict
    constraints: Callable[[], dict[str, Any]] | None = None
    sized_defaults: Callable[[int], dict[str, Any]] | None = None
    advice: Advice | None = None
    columns_parameter: str | None = None
    check: Callable[[ClusteringOptions, dict[str, Any]], None] | None = None

    @property
    def auto_k(self) -> bool:
        """Whether ``"auto"`` may stand for the number of clusters (chosen by ``core.fit.auto_k``)."""
        return self.k_parameter is not None and not self.fixed_k

    def estimator_class(self) -> type:
        if self.estimator is None:
            raise ValueError(f"{self.name} has no estimator")
        return self.estimator()

    @property
    def split_above(self) -> float | None:
        """The share of the documents above which a found cluster is split (``merging.split_oversized_clusters``):
        ``SPLIT_ABOVE`` for density-based algorithms, which leave one cluster with most of a collection;
        None for the others, whose cluster count is asked for."""
        return SPLIT_ABOVE if self.density_based else None

    @property
    def default_reduction(self) -> str:
        """What ``reduction: auto`` means above 50 dimensions: ``umap``, ``pca`` or ``none``."""
        return self.reduction or ("umap" if self.density_based else "none")

    def with_defaults(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **parameters}

    def auto_k_parameter(self, parameters: Mapping[str, Any]) -> str | None:
        """The k parameter when ``parameters`` ask for it to be chosen (``"auto"``), else None."""
        return self.k_parameter if self.auto_k and parameters.get(self.k_parameter or "") == "auto" else None

    def grouping_columns(self, parameters: Mapping[str, Any]) -> list[str] | None:
        """The metadata columns whose value groups are the clusters; None when the vectors make them."""
        return None if self.columns_parameter is None else list(parameters.get(self.columns_parameter) or [])

    def name_parts(self, parameters: Mapping[str, Any]) -> list[str]:
        """The main parameter in a default name: ``["k4"]``, ``["eps0.25"]``, the columns; [] without one."""
        name, short = self.label or (self.k_parameter, "k")
        value = None if name is None else self.with_defaults(parameters).get(name)
        if value is None or isinstance(value, list):
            return [str(item) for item in value or []]
        return [f"{short}{value:g}" if isinstance(value, float) else f"{short}{value}"]

    def validate(self, options: ClusteringOptions) -> None:
        """Refuse parameters the algorithm does not have or would refuse at fit time (ValueError)."""
        if self.check is not None:
            return self.check(options, self.with_defaults(options.parameters))
        given, auto = options.parameters, self.auto_k_parameter(options.parameters)
        valid = set(self.estimator_class()().get_params()) | set(AUTO_K_RANGE if auto else ())
        unknown = sorted(set(given) - valid)
        if unknown:
            hint = "; k_min and k_max go with n_clusters='auto'" if set(unknown) & set(AUTO_K_RANGE) else ""
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.name}; valid: {', '.join(sorted(valid))}" + hint
            )
        self._check_auto_k(given)
        self._check_values({k: v for k, v in self.with_defaults(given).items() if k not in (*AUTO_K_RANGE, auto)})

    def _check_auto_k(self, parameters: Mapping[str, Any]) -> None:
        for name in dict.fromkeys(s.k_parameter for s in SPECS if s.k_parameter):
            if parameters.get(name) == "auto" and self.auto_k_parameter(parameters) != name:
                choices = ", ".join(f"{s.name} ({s.k_parameter})" for s in SPECS if s.auto_k)
                raise ValueError(f"{name}='auto' is not available for {self.name}; it is for {choices}")
        bounds = {"k_min": parameters.get("k_min", DEFAULT_K_MIN), "k_max": parameters.get("k_max", DEFAULT_K_MAX)}
        for name, value in bounds.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(f"{name} must be an integer of at least 2, got {value!r}")
        if bounds["k_min"] > bounds["k_max"]:
            raise ValueError(f"k_min ({bounds['k_min']}) must not exceed k_max ({bounds['k_max']})")

    def _check_values(self, parameters: dict[str, Any]) -> None:
        """The estimator's own constraints (types, ranges, choices), checked without fitting."""
        from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

        constraints = (
            self.constraints() if self.constraints else getattr(self.estimator_class(), "_parameter_constraints", {})
        )
        known = {name: value for name, value in parameters.items() if name in constraints}
        try:
            validate_parameter_constraints(constraints, known, caller_name=self.name)
        except InvalidParameterError as error:
            raise ValueError(str(error).replace("The '", "'", 1)) from None
        for name, value in known.items():  # JSON true/false are ints to Python, never counts or sizes
            if isinstance(value, bool) and "boolean" not in constraints[name]:
                raise ValueError(f"'{name}' parameter of {self.name} must be a number, got {value!r}")

    def estimate(self, parameters: dict[str, Any], space: np.ndarray) -> FitEstimate | None:
        """What a fit on ``space`` (the prepared matrix) should cost; None when it grows linearly."""
        cost = None if self.cost is None else self.cost(parameters, space)
        return None if cost is None else FitEstimate(self.name, len(space), space.shape[1], int(cost[0]), cost[1])

    def check_resources(
        self, parameters: dict[str, Any], space: np.ndarray, options: ClusteringOptions
    ) -> FitEstimate | None:
        """The fit's estimated cost, refused when it exceeds the machine or the options' limits."""
        linear = [s.name for s in SPECS if s.cost is None and s.estimator is not None]
        return resource_guard.check_fit_resources(self.estimate(parameters, space), space, options, linear)

    def warning(
        self, parameters: dict[str, Any], labels: np.ndarray, matrix: np.ndarray, max_clusters: int | None = None
    ) -> str | None:
        """Why a run found fewer than 2 clusters and what to try (``core.fit.warning``); None otherwise."""
        return warning.clustering_warning(
            self.name, parameters, labels, matrix, self.advice, self.k_parameter, max_clusters
        )


# fmt: off
SPECS: tuple[AlgorithmSpec, ...] = (
    AlgorithmSpec("kmeans", _load("KMeans"), {"n_clusters": 8, "n_init": 3, "random_state": 0},
                  k_parameter="n_clusters", has_centres=True, streams=True, trains_on_sample=True,
                  fitter=fit_kmeans_engine),
    AlgorithmSpec("minibatch_kmeans", _load("MiniBatchKMeans"),
                  {"n_clusters": 8, "n_init": 3, "random_state": 0, "batch_size": 4096},
                  k_parameter="n_clusters", has_centres=True, streams=True),
    AlgorithmSpec("bisecting_kmeans", _load("BisectingKMeans"), {"n_clusters": 8, "n_init": 3, "random_state": 0},
                  k_parameter="n_clusters", has_centres=True),
    AlgorithmSpec("hdbscan", _load("HDBSCAN", "hdbscan"), density_based=True, cost=resource_guard.hdbscan_cost,
                  label=("min_cluster_size", "mcs"), fitter=fit_hdbscan, constraints=hdbscan_constraints,
                  sized_defaults=lambda n: {"min_cluster_size": default_min_cluster_size(n)},
                  advice=warning.hdbscan_advice),
    AlgorithmSpec("dbscan", _load("DBSCAN"), {"eps": 0.5, "min_samples": 5}, density_based=True,
                  cost=resource_guard.dbscan_cost, label=("eps", "eps"), advice=warning.dbscan_advice),
    AlgorithmSpec("agglomerative", _load("AgglomerativeClustering"), {"n_clusters": 8}, k_parameter="n_clusters",
                  cost=resource_guard.agglomerative_cost),
    AlgorithmSpec("gaussian_mixture", _load("GaussianMixture", "sklearn.mixture"),
                  {"n_components": 8, "covariance_type": "diag", "random_state": 0},
                  k_parameter="n_components", has_centres=True, fitter=fit_mixture),
    AlgorithmSpec("spectral", _load("SpectralClustering"),
                  {"n_clusters": 8, "affinity": "nearest_neighbors", "random_state": 0},
                  k_parameter="n_clusters", cost=resource_guard.spectral_cost),
    AlgorithmSpec("birch", _load("Birch"), {"n_clusters": 8}, k_parameter="n_clusters", fixed_k=True, has_centres=True),
    AlgorithmSpec("optics", _load("OPTICS"), {"min_samples": 5}, density_based=True, cost=resource_guard.optics_cost,
                  label=("min_samples", "ms"), advice=warning.optics_advice),
    # mean shift needs a bandwidth in a space whose scale it can estimate, which UMAP's is not: PCA
    AlgorithmSpec("mean_shift", _load("MeanShift"), {"bin_seeding": True}, has_centres=True, density_based=True,
                  reduction="pca", cost=resource_guard.mean_shift_cost, label=("bandwidth", "bw"),
                  advice=warning.mean_shift_advice),
    AlgorithmSpec("attribute_based", None, {"max_groups": 100}, sampled=False, label=("attributes", ""),
                  fitter=fit_groups, columns_parameter="attributes", check=check_attribute_options),
)
# fmt: on
_BY_NAME = {entry.name: entry for entry in SPECS}


def names() -> list[str]:
    """Every algorithm's name, in the registry's order (the CLI's ``--algorithm`` choices)."""
    return list(_BY_NAME)


def spec(name: str) -> AlgorithmSpec:
    """The spec of ``name``; ValueError naming the algorithms there are for any other."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; one of {', '.join(_BY_NAME)}") from None
