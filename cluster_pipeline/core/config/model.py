"""Cluster configurations (``clust_…``): what to cluster, how, and how to name and judge the result.

A configuration is a validated pydantic model saved as JSON in the lake. Besides its ``clust_…`` id
(the contract's ``cluster_id``) it has a ``name`` a person can read — unique in its namespace,
derived from the collection, algorithm and main parameter unless given (``agnews-kmeans-k4``) —
and its Dagster partition is ``<namespace>.<name>``. Configurations saved before names existed
keep their ``<namespace>.<clust_…>`` partition (and its history in Dagster): both forms resolve. Algorithm parameters use
scikit-learn/hdbscan names and are checked against the estimator's own ``get_params()`` and
parameter constraints, the cron and timezone against the scheduler's rules, so a typo or an
impossible value (``n_clusters=0``, ``eps=-1``, ``Mars/Olympus``) is refused at creation time with
the rule it breaks, not deep inside an execution or a sensor tick. Two values are ours:
``n_clusters: "auto"`` (``n_components`` for gaussian_mixture) with its range ``k_min`` / ``k_max``
(``core.auto_k``), and HDBSCAN's ``min_cluster_size`` derived from the collection's size when it is
not given (:func:`default_min_cluster_size`).

What an execution clusters is chosen here too: ``filters`` (``core.filters``) over the metadata,
``sample_size`` to fit on a seeded sample, several ``features`` combined into one space, and
``attribute_based`` clusters that are the groups of metadata columns. A configuration changes over
its life by :func:`revise` (a new ``version`` when what an execution computes changes); every
ExecutionResult stores the configuration it ran with.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cluster_pipeline.core.errors import (
    ConfigurationError,
)
from cluster_pipeline.core.ids import (
    check_cluster_id,
    check_collection,
    check_config_name,
    check_feature,
    check_namespace,
    new_cluster_id,
)
from cluster_pipeline.core.labels.options import LabelingOptions
from cluster_pipeline.core.quality.checks import QualityChecks

Algorithm = Literal[
    "kmeans",
    "minibatch_kmeans",
    "hdbscan",
    "dbscan",
    "agglomerative",
    "gaussian_mixture",
    "spectral",
    "birch",
    "optics",
    "mean_shift",
    "attribute_based",
]

# Defaults differ from scikit-learn's only where its defaults are poor for embeddings: fixed seeds
# (reproducible runs), several k-means inits (one seed can cost 0.15 V-measure, see PERF_NOTES),
# a kNN affinity for spectral (RBF on 384-d is near-constant), diagonal GMM covariances.
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "kmeans": {"n_clusters": 8, "n_init": 3, "random_state": 0},
    "minibatch_kmeans": {"n_clusters": 8, "n_init": 3, "random_state": 0, "batch_size": 4096},
    "hdbscan": {},  # min_cluster_size: default_min_cluster_size(N)
    "dbscan": {"eps": 0.5, "min_samples": 5},
    "agglomerative": {"n_clusters": 8},
    "gaussian_mixture": {"n_components": 8, "covariance_type": "diag", "random_state": 0},
    "spectral": {"n_clusters": 8, "affinity": "nearest_neighbors", "random_state": 0},
    "birch": {"n_clusters": 8},
    "optics": {"min_samples": 5},
    "mean_shift": {"bin_seeding": True},
    "attribute_based": {"max_groups": 100},
}
# attribute_based has no estimator: its clusters are the groups of metadata columns (core.attributes)
ATTRIBUTE_PARAMETERS = ("attributes", "max_groups")
MAX_ATTRIBUTE_GROUPS = 10_000
# Algorithms whose clusters have a centre: documents outside a fitted sample join the nearest one.
# The others' clusters are shaped by density or a graph: they join their nearest sampled document's.
CENTROID_ALGORITHMS = frozenset({"kmeans", "minibatch_kmeans", "gaussian_mixture", "birch", "mean_shift"})

DENSITY_BASED = frozenset({"hdbscan", "dbscan", "optics", "mean_shift"})
# density-based algorithms whose "auto" reduction is UMAP (mean_shift keeps PCA: it needs a bandwidth
# in a space whose scale it can estimate, which UMAP's coordinates are not)
UMAP_BY_DEFAULT = frozenset({"hdbscan", "dbscan", "optics"})
# the parameter that "auto" can stand for, per algorithm (core.auto_k chooses it)
AUTO_K_PARAMETER = {
    "kmeans": "n_clusters",
    "minibatch_kmeans": "n_clusters",
    "agglomerative": "n_clusters",
    "spectral": "n_clusters",
    "gaussian_mixture": "n_components",
}
AUTO_K_RANGE = ("k_min", "k_max")
# Measured on AG News (core.auto_k): the silhouette of text embeddings peaks at few clusters and
# falls or stays flat beyond; no k from 13 to 20 beat the peak at 3, so a wider default range costs a
# k-means and a silhouette per k and changes nothing. Ask for more with k_max.
DEFAULT_K_MIN, DEFAULT_K_MAX = 2, 12
MIN_CLUSTER_SIZE_FLOOR = 5


def default_min_cluster_size(n_documents: int) -> int:
    """HDBSCAN's ``min_cluster_size`` when none is given: ``max(5, round(sqrt(N) / 2))``.

    Measured on AG News after UMAP (3 seeds, subsets of 1,000 to 7,600 documents): HDBSCAN's
    excess-of-mass selection flips between two regimes, a few large topics with ~5 % noise, or dozens
    of small clusters with ~30 % noise, and the switch sits at a minimum size that grows more slowly
    than N. sqrt(N)/2 (16, 22, 32, 44 at 1k, 2k, 4k, 7.6k) stayed in the first regime in every run
    (≤ 11 % noise); a fixed share of N (0.5 %: 10, 20, 38) fell into the second at 4,000 and sat on the
    edge at 7,600. Growing with sqrt(N) also lets a large collection hold more topics (≤ ~2·sqrt(N)).
    """
    return max(MIN_CLUSTER_SIZE_FLOOR, round(math.sqrt(max(n_documents, 0)) / 2))


NIGHTLY_CRON = "0 2 * * *"
# hdbscan's HDBSCAN has no parameter constraints of its own; these scikit-learn HDBSCAN parameters
# have the same names and meanings ("algorithm" and "metric" differ, so they are left to hdbscan).
_HDBSCAN_SHARED_PARAMETERS = (
    "min_cluster_size",
    "min_samples",
    "cluster_selection_epsilon",
    "alpha",
    "leaf_size",
    "allow_single_cluster",
    "cluster_selection_method",
    "max_cluster_size",
)


def estimator_class(algorithm: str) -> type:
    """The scikit-learn / hdbscan class behind an algorithm name (imported lazily: hdbscan is slow);
    not for ``attribute_based``, which has none."""
    import sklearn.cluster as skc
    from sklearn.mixture import GaussianMixture

    if algorithm == "hdbscan":
        import hdbscan

        return hdbscan.HDBSCAN
    classes: dict[str, type] = {
        "kmeans": skc.KMeans,
        "minibatch_kmeans": skc.MiniBatchKMeans,
        "dbscan": skc.DBSCAN,
        "agglomerative": skc.AgglomerativeClustering,
        "gaussian_mixture": GaussianMixture,
        "spectral": skc.SpectralClustering,
        "birch": skc.Birch,
        "optics": skc.OPTICS,
        "mean_shift": skc.MeanShift,
    }
    return classes[algorithm]


class Preprocessing(BaseModel):
    """How vectors are prepared before fitting (and before any reduction)."""

    model_config = ConfigDict(extra="forbid")

    normalize: bool = Field(True, description="L2-normalise each vector (cosine geometry with Euclidean maths).")


class Reduction(BaseModel):
    """Dimensionality reduction before the algorithm runs (``core.reduction``).

    ``auto``: UMAP for hdbscan, dbscan and optics when the vectors have more than 50 dimensions
    (density estimates break down in high dimension, and PCA keeps too little of text embeddings'
    structure: on AG News PCA-10 then HDBSCAN left 80 % as noise, UMAP-5 6 %); PCA to 10 dimensions
    for mean_shift there; none for the other algorithms.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["auto", "umap", "pca", "none"] = "auto"
    n_components: int | None = Field(None, ge=1, le=100, description="Dimensions kept; default 5 (umap), 10 (pca).")
    n_neighbors: int = Field(
        15,
        ge=2,
        le=200,
        description="UMAP's neighbourhood: larger keeps more global structure, smaller finer topics "
        "(15 is UMAP's and BERTopic's default; 30 gave the same clusters on AG News).",
    )
    min_dist: float = Field(0.0, ge=0.0, le=1.0, description="UMAP's packing: 0 keeps dense groups dense.")
    fit_sample_size: int = Field(
        20_000,
        ge=100,
        description="UMAP is fitted on a seeded sample of this many documents; every other document is placed "
        "from its nearest sampled neighbours, as UMAP's own transform starts.",
    )
    random_state: int = Field(0, description="Seed of UMAP, its sample and PCA's randomised solver.")


def check_cron(schedule: str) -> str:
    """The 5-field cron of ``schedule`` ('nightly' is 02:00), as Dagster's scheduler accepts it."""
    from croniter import croniter

    cron = NIGHTLY_CRON if schedule.strip().lower() == "nightly" else schedule.strip()
    fields = croniter.expand(cron)[0] if croniter.is_valid(cron) else []
    # Dagster runs only 5-field crons (no seconds) and refuses days that never come (30 or 31 February).
    never = len(fields) == 5 and fields[3] == [2] and len(fields[2]) == 1 and fields[2][0] in (30, 31)
    if len(fields) != 5 or never:
        raise ValueError(
            f"{schedule!r} is not a 5-field cron (minute hour day month weekday, e.g. '0 2 * * *') or 'nightly'"
        )
    return cron


class Triggers(BaseModel):
    """When executions start by themselves (sensors and the nightly schedule)."""

    model_config = ConfigDict(extra="forbid")

    on_change: bool = Field(False, description="Execute when the collection changes.")
    min_new_documents: int = Field(1, ge=1, description="Changes smaller than this do not trigger.")
    min_new_fraction: float = Field(0.0, ge=0.0, le=10.0, description="Or a fraction of the collection.")
    cooldown_seconds: int = Field(0, ge=0, description="Minimum time between change-triggered executions.")
    assign_new_documents: bool = Field(
        True,
        description="After the first execution, assign a change's new documents to the latest execution's clusters "
        "(no refit) and execute again only when a refit condition holds; false: execute on every change.",
    )
    refit_novel_fraction: float | None = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Execute again when this share of the documents assigned since the last fit is novel "
        "(farther from its cluster than 95 % of the cluster's members); null: never for novelty.",
    )
    refit_min_novel_documents: int = Field(
        10, ge=1, description="...and at least this many of them are novel (a topic is more than a few documents)."
    )
    refit_growth_fraction: float | None = Field(
        0.5,
        ge=0.0,
        description="Execute again when the documents added since the last fit reach this share of those it "
        "clustered; null: never for growth.",
    )
    schedule: str | None = Field(None, description="Cron; 'nightly' means the default '0 2 * * *'.")
    timezone: str = Field("UTC", description="IANA time zone of the cron, e.g. 'Europe/Paris'.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from None
        return value


class ClusterConfig(BaseModel):
    """One cluster configuration: a collection, a feature, an algorithm and its options."""

    model_config = ConfigDict(extra="forbid")

    cluster_id: str = Field(default_factory=new_cluster_id)
    name: str | None = Field(
        None,
        description="Readable name, unique in the namespace (the Dagster partition is <namespace>.<name>); "
        "derived from collection, algorithm and main parameter when not given, e.g. 'agnews-kmeans-k4'.",
    )
    namespace: str = "default"
    collection: str
    feature: str = "embedding"
    features: list[str] | None = Field(
        None,
        description="Several embedding features clustered as one space (each L2-normalised first); "
        "feature is then the first of them.",
    )
    combine: Literal["concatenate", "weighted", "independent"] = Field(
        "concatenate", description="How several features make one vector: side by side, or weighted ('weights')."
    )
    weights: list[float] | None = Field(None, description="One positive weight per feature, for combine='weighted'.")
    filters: dict[str, Any] | None = Field(
        None, description="Cluster only the documents this filter keeps (core.filters: AND/OR/NOT over metadata)."
    )
    algorithm: Algorithm = "kmeans"
    parameters: dict[str, Any] = Field(default_factory=dict)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    reduction: Reduction = Field(default_factory=Reduction)
    max_clusters: int | None = Field(
        None,
        ge=1,
        description="Merge the most similar clusters (average cosine linkage of their centroids, as BERTopic's "
        "topic reduction) until at most this many remain; the merges are recorded.",
    )
    reassign_noise: bool = Field(
        False,
        description="Assign each noise document to its nearest cluster centroid; assignments keep is_noise as found.",
    )
    metric_sample_size: int = Field(10_000, ge=100, description="Silhouette is sampled above this many points.")
    plot_projection: Literal["pca", "umap"] = Field(
        "pca", description="2-D projection of the result's picture: PCA, or UMAP (slower, keeps neighbourhoods)."
    )
    memory_budget_mb: int | None = Field(
        None,
        ge=64,
        description="Cluster collections whose vectors exceed this by streaming row groups (k-means only): "
        "MiniBatchKMeans partial_fit, a second pass to assign, sampled metrics; and refuse quadratic fits whose "
        "estimated memory exceeds it. None: always in memory, limited by the machine's available memory.",
    )
    sample_size: int | None = Field(
        None,
        ge=2,
        description="Fit the algorithm on a seeded sample of this many documents, then assign every other one: "
        "to the nearest centroid (k-means, GMM, Birch, mean shift), else to the cluster of its nearest sampled "
        "document. For large collections and quadratic algorithms.",
    )
    centroid_method: Literal["mean", "median", "medoid"] = Field(
        "mean",
        description="Each cluster's centre for distances, labels and drift: the members' mean, coordinate-wise "
        "median, or medoid (the member with the least total distance to the others).",
    )
    max_fit_seconds: float | None = Field(
        None, gt=0, description="Refuse to start a quadratic fit whose estimated time exceeds this."
    )
    hdbscan_backend: Literal["auto", "fast_hdbscan", "hdbscan", "sklearn"] = Field(
        "auto", description="HDBSCAN implementation; 'auto' picks the fastest installed that supports the parameters."
    )
    kmeans_engine: Literal["auto", "faiss", "sklearn"] = Field(
        "auto", description="k-means engine; 'auto' is faiss-cpu when installed, else scikit-learn (core.kmeans)."
    )
    labeling: LabelingOptions = Field(default_factory=LabelingOptions)
    triggers: Triggers = Field(default_factory=Triggers)
    webhooks: list[str] = Field(
        default_factory=list,
        description="http(s) URLs that receive a signed JSON POST when an execution completes or fails "
        "(core.webhooks); the signing secret comes from the environment, never from here.",
    )
    time_column: str | None = Field(
        None,
        description="Timestamp column for topics over time; default: the collection's first timestamp or date column.",
    )
    checks: QualityChecks = Field(default_factory=QualityChecks)
    description: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    version: int = Field(1, ge=1, description="Raised by every update that changes what an execution computes.")
    updated_at: datetime | None = None

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        return check_cluster_id(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_config_name(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str) -> str:
        return check_collection(value)

    @field_validator("feature")
    @classmethod
    def _feature(cls, value: str) -> str:
        return check_feature(value)

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook {url!r} is not an http(s) URL with a host, e.g. 'https://example.com/hook'")
        return urls

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("features needs at least one embedding column")
        if len(set(value)) != len(value):
            raise ValueError(f"features lists a column twice: {value}")
        return [check_feature(name) for name in value]

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        from cluster_pipeline.core.store.filters import filter_to_json, parse_filter

        return None if value is None else filter_to_json(parse_filter(value, "filters"))

    @field_validator("parameters")
    @classmethod
    def _attribute_list(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """``attributes`` as a list of column names (``"category,brand"`` from the CLI too)."""
        attributes = value.get("attributes")
        if info.data.get("algorithm") == "attribute_based" and isinstance(attributes, str):
            return {**value, "attributes": [name.strip() for name in attributes.split(",") if name.strip()]}
        return value

    @model_validator(mode="before")
    @classmethod
    def _fit_sample_size_renamed(cls, data: Any) -> Any:
        """``fit_sample_size`` (configurations saved before ``sample_size`` replaced it) means ``sample_size``."""
        if not (isinstance(data, dict) and "fit_sample_size" in data):
            return data
        if data.get("sample_size") is not None:
            raise ValueError("fit_sample_size is the old name of sample_size: give only sample_size")
        moved = {key: value for key, value in data.items() if key != "fit_sample_size"}
        return {**moved, "sample_size": data["fit_sample_size"]}

    @model_validator(mode="before")
    @classmethod
    def _pca_components_moved(cls, data: Any) -> Any:
        """``preprocessing.pca_components`` in configurations saved before ``reduction`` existed."""
        if not (isinstance(data, dict) and isinstance(data.get("preprocessing"), dict)):
            return data
        if "pca_components" not in data["preprocessing"]:
            return data
        preprocessing = dict(data["preprocessing"])
        components = preprocessing.pop("pca_components")
        if components == "auto" or components is None:
            moved: dict[str, Any] = {"method": "auto" if components else "none"}
        else:
            moved = {"method": "pca", "n_components": components}
        return {**data, "preprocessing": preprocessing, "reduction": data.get("reduction", moved)}

    @model_validator(mode="after")
    def _features_combined(self) -> ClusterConfig:
        names = self.features or [self.feature]
        if self.features is not None and "feature" in self.model_fields_set and self.feature != names[0]:
            raise ValueError(f"feature {self.feature!r} and features {names} disagree: give features only")
        self.feature = names[0]
        if self.combine == "independent":
            raise ValueError(
                "combine='independent' is not offered: an execution writes one ExecutionResult under one run_id "
                "(the seed's contract), and one clustering per feature would need several. Create one "
                "configuration per feature instead (clusters create --feature a, then --feature b), or combine "
                "them into one space with 'concatenate' or 'weighted'"
            )
        if self.combine == "weighted":
            if self.weights is None or len(self.weights) != len(names):
                given = "no weights" if self.weights is None else f"{len(self.weights)} weights"
                raise ValueError(
                    f"combine='weighted' needs one weight per feature: {given} for {len(names)} features {names}"
                )
            if not all(math.isfinite(w) and w > 0 for w in self.weights):
                raise ValueError(f"weights must be positive numbers, got {self.weights}")
        elif self.weights is not None:
            raise ValueError("weights go with combine='weighted'; set combine to 'weighted' or remove weights")
        return self

    @model_validator(mode="after")
    def _parameters_valid(self, info: ValidationInfo) -> ClusterConfig:
        # Checked when a configuration is created; one read back from the lake passed this check
        # already, and importing the estimators (scikit-learn: ~1 s) would slow every execution.
        if info.context and info.context.get("stored"):
            return self
        if self.algorithm == "attribute_based":
            _check_attribute_based(self)
            return self
        valid = set(estimator_class(self.algorithm)().get_params())
        if self.auto_k_parameter() is not None:
            valid.update(AUTO_K_RANGE)
        unknown = sorted(set(self.parameters) - valid)
        if unknown:
            hint = "; k_min and k_max go with n_clusters='auto'" if set(unknown) & set(AUTO_K_RANGE) else ""
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.algorithm}; valid: {', '.join(sorted(valid))}"
                + hint
            )
        _check_auto_k(self.algorithm, self.parameters)
        check_parameter_values(self.algorithm, self.fixed_parameters())
        return self

    def fixed_parameters(self) -> dict[str, Any]:
        """The estimator parameters known before the data is seen: without an ``"auto"`` k and its range."""
        auto = self.auto_k_parameter()
        return {
            name: value
            for name, value in self.estimator_parameters().items()
            if name not in AUTO_K_RANGE and name != auto
        }

    def auto_k_parameter(self) -> str | None:
        """``n_clusters`` (or ``n_components``) when the configuration asks for it to be chosen, else None."""
        name = AUTO_K_PARAMETER.get(self.algorithm)
        return name if name is not None and self.parameters.get(name) == "auto" else None

    @property
    def feature_names(self) -> list[str]:
        """The embedding features clustered: ``features``, or the one ``feature``."""
        return list(self.features or [self.feature])

    @property
    def feature_label(self) -> str:
        """``feature``, or ``a+b`` for several (what results and summaries show)."""
        return "+".join(self.feature_names)

    @property
    def display_name(self) -> str:
        """The name, or the ``clust_…`` id of a configuration saved before names existed."""
        return self.name or self.cluster_id

    @property
    def partition_key(self) -> str:
        """The Dagster partition of this configuration: ``<namespace>.<name>`` (``<namespace>.<clust_…>``
        for one saved before names existed, so its partition and history stay as they were)."""
        return f"{self.namespace}.{self.display_name}"

    def estimator_parameters(self) -> dict[str, Any]:
        """Defaults overlaid with the user's parameters."""
        return {**ALGORITHM_DEFAULTS[self.algorithm], **self.parameters}


def _check_attribute_based(config: ClusterConfig) -> None:
    """``attributes`` (one or more metadata columns) and ``max_groups``; nothing that needs a fit."""
    unknown = sorted(set(config.parameters) - set(ATTRIBUTE_PARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for attribute_based; valid: {', '.join(ATTRIBUTE_PARAMETERS)}"
        )
    attributes = config.parameters.get("attributes")
    if not (isinstance(attributes, list) and attributes and all(isinstance(a, str) and a for a in attributes)):
        raise ValueError(
            "attribute_based needs attributes: the metadata columns whose values make the groups, e.g. "
            "--param attributes=category,brand"
        )
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes lists a column twice: {attributes}")
    max_groups = config.estimator_parameters()["max_groups"]
    if not isinstance(max_groups, int) or isinstance(max_groups, bool) or not 2 <= max_groups <= MAX_ATTRIBUTE_GROUPS:
        raise ValueError(f"max_groups must be an integer from 2 to {MAX_ATTRIBUTE_GROUPS:,}, got {max_groups!r}")
    refused = {
        "sample_size": config.sample_size is not None,
        "max_clusters": config.max_clusters is not None,
        "reduction 'umap'": config.reduction.method == "umap",
    }
    for name, present in refused.items():
        if present:
            raise ValueError(
                f"{name} does not apply to attribute_based: its clusters are the groups of {', '.join(attributes)}, "
                "fixed by the data (cap them with max_groups)"
            )


def _check_auto_k(algorithm: str, parameters: dict[str, Any]) -> None:
    for name in ("n_clusters", "n_components"):
        if parameters.get(name) == "auto" and AUTO_K_PARAMETER.get(algorithm) != name:
            choices = ", ".join(f"{a} ({p})" for a, p in AUTO_K_PARAMETER.items())
            raise ValueError(f"{name}='auto' is not available for {algorithm}; it is for {choices}")
    bounds = {"k_min": parameters.get("k_min", DEFAULT_K_MIN), "k_max": parameters.get("k_max", DEFAULT_K_MAX)}
    for name, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{name} must be an integer of at least 2, got {value!r}")
    if bounds["k_min"] > bounds["k_max"]:
        raise ValueError(f"k_min ({bounds['k_min']}) must not exceed k_max ({bounds['k_max']})")


def check_parameter_values(algorithm: str, parameters: dict[str, Any]) -> None:
    """Refuse values the estimator would refuse at fit time (types, ranges, choices), without fitting."""
    from sklearn.cluster import HDBSCAN
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    if algorithm == "hdbscan":
        constraints = {name: HDBSCAN._parameter_constraints[name] for name in _HDBSCAN_SHARED_PARAMETERS}
    else:
        constraints = dict(getattr(estimator_class(algorithm), "_parameter_constraints", {}))
    known = {name: value for name, value in parameters.items() if name in constraints}
    try:
        validate_parameter_constraints(constraints, known, caller_name=algorithm)
    except InvalidParameterError as error:
        raise ValueError(str(error).replace("The '", "'", 1)) from None
    for name, value in known.items():  # JSON true/false are ints to Python, never counts or sizes
        if isinstance(value, bool) and "boolean" not in constraints[name]:
            raise ValueError(f"'{name}' parameter of {algorithm} must be a number, got {value!r}")


def parse_config(data: dict[str, Any], *, stored: bool = False) -> ClusterConfig:
    """Validate a configuration, turning pydantic's report into one readable ConfigurationError.

    ``stored``: ``data`` was read from the lake, written by ``ConfigStore.create`` after a full check,
    so the estimator's parameter names are not checked again.
    """
    try:
        return ClusterConfig.model_validate(data, context={"stored": stored})
    except ValidationError as error:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in item['loc'])}: " if item["loc"] else "")
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        )
        raise ConfigurationError(f"Invalid cluster configuration: {problems}") from None
