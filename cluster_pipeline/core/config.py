"""Cluster configurations (``clust_…``): what to cluster, how, and how to name and judge the result.

A configuration is a validated pydantic model saved as JSON in the lake. Algorithm parameters use
scikit-learn/hdbscan names and are checked against the estimator's own ``get_params()``, so a typo
is refused at creation time with the list of valid names, not deep inside an execution.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from typing import Any, Literal

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
    AlreadyExistsError,
    ConfigurationError,
    NotFoundError,
)
from cluster_pipeline.core.ids import (
    check_cluster_id,
    check_collection,
    check_feature,
    check_namespace,
    new_cluster_id,
)
from cluster_pipeline.core.lake import Lake

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
]

# Defaults differ from scikit-learn's only where its defaults are poor for embeddings: fixed seeds
# (reproducible runs), several k-means inits (one seed can cost 0.15 V-measure, see PERF_NOTES),
# a kNN affinity for spectral (RBF on 384-d is near-constant), diagonal GMM covariances.
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "kmeans": {"n_clusters": 8, "n_init": 3, "random_state": 0},
    "minibatch_kmeans": {"n_clusters": 8, "n_init": 3, "random_state": 0, "batch_size": 4096},
    "hdbscan": {"min_cluster_size": 10},
    "dbscan": {"eps": 0.5, "min_samples": 5},
    "agglomerative": {"n_clusters": 8},
    "gaussian_mixture": {"n_components": 8, "covariance_type": "diag", "random_state": 0},
    "spectral": {"n_clusters": 8, "affinity": "nearest_neighbors", "random_state": 0},
    "birch": {"n_clusters": 8},
    "optics": {"min_samples": 5},
    "mean_shift": {"bin_seeding": True},
}

DENSITY_BASED = frozenset({"hdbscan", "dbscan", "optics", "mean_shift"})


def estimator_class(algorithm: str) -> type:
    """The scikit-learn / hdbscan class behind an algorithm name (imported lazily: hdbscan is slow)."""
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
    """How vectors are prepared before fitting. Metrics are computed in this prepared space."""

    model_config = ConfigDict(extra="forbid")

    normalize: bool = Field(True, description="L2-normalise each vector (cosine geometry with Euclidean maths).")
    pca_components: int | Literal["auto"] | None = Field(
        "auto",
        description="Reduce to this many dimensions first. 'auto': 10 for density-based algorithms when the "
        "vectors have more than 50 dimensions (density estimates break down in high dimension), else none.",
    )

    @field_validator("pca_components")
    @classmethod
    def _positive(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("pca_components must be at least 1")
        return value


class LabelingOptions(BaseModel):
    """How clusters are named: offline c-TF-IDF always; an LLM when one is configured and enabled."""

    model_config = ConfigDict(extra="forbid")

    use_llm: bool = Field(True, description="Ask the configured LLM; without one, labels stay offline.")
    text_fields: list[str] | None = Field(None, description="Columns holding text; default title/text.")
    num_keywords: int = Field(8, ge=3, le=10)
    representative_documents: int = Field(10, ge=1, le=20)
    max_chars_per_document: int = Field(600, ge=50, le=4000)
    prompt_template: str | None = None
    output_schema: dict[str, Any] | None = None


class Triggers(BaseModel):
    """When executions start by themselves (sensors and the nightly schedule)."""

    model_config = ConfigDict(extra="forbid")

    on_change: bool = Field(False, description="Execute when the collection changes.")
    min_new_documents: int = Field(1, ge=1, description="Changes smaller than this do not trigger.")
    min_new_fraction: float = Field(0.0, ge=0.0, le=10.0, description="Or a fraction of the collection.")
    cooldown_seconds: int = Field(0, ge=0, description="Minimum time between change-triggered runs.")
    schedule: str | None = Field(None, description="Cron; 'nightly' means the default '0 2 * * *'.")
    timezone: str = "UTC"


class QualityChecks(BaseModel):
    """What 'good' means for this configuration's results (asset checks)."""

    model_config = ConfigDict(extra="forbid")

    min_silhouette: float | None = Field(None, ge=-1.0, le=1.0)
    max_davies_bouldin: float | None = Field(None, ge=0.0)
    max_cluster_fraction: float = Field(0.9, gt=0.0, le=1.0)
    max_noise_fraction: float = Field(0.5, ge=0.0, le=1.0)
    min_ari_vs_previous: float | None = Field(None, ge=-1.0, le=1.0)
    blocking: bool = Field(False, description="Fail (error) instead of warn when a check does not pass.")


class ClusterConfig(BaseModel):
    """One cluster configuration: a collection, a feature, an algorithm and its options."""

    model_config = ConfigDict(extra="forbid")

    cluster_id: str = Field(default_factory=new_cluster_id)
    namespace: str = "default"
    collection: str
    feature: str = "embedding"
    algorithm: Algorithm = "kmeans"
    parameters: dict[str, Any] = Field(default_factory=dict)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    metric_sample_size: int = Field(10_000, ge=100, description="Silhouette is sampled above this many points.")
    plot_projection: Literal["pca", "umap"] = Field(
        "pca", description="2-D projection of the result's picture; 'umap' when umap-learn is installed."
    )
    memory_budget_mb: int | None = Field(
        None,
        ge=64,
        description="Cluster collections whose vectors exceed this by streaming row groups (k-means only): "
        "MiniBatchKMeans partial_fit, a second pass to assign, sampled metrics. None: always in memory.",
    )
    hdbscan_backend: Literal["auto", "fast_hdbscan", "hdbscan", "sklearn"] = Field(
        "auto", description="HDBSCAN implementation; 'auto' picks the fastest installed that supports the parameters."
    )
    kmeans_engine: Literal["auto", "faiss", "sklearn"] = Field(
        "auto", description="k-means engine; 'auto' is faiss-cpu when installed, else scikit-learn (core.kmeans)."
    )
    labeling: LabelingOptions = Field(default_factory=LabelingOptions)
    triggers: Triggers = Field(default_factory=Triggers)
    checks: QualityChecks = Field(default_factory=QualityChecks)
    description: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str) -> str:
        return check_cluster_id(value)

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

    @model_validator(mode="after")
    def _parameters_known(self, info: ValidationInfo) -> ClusterConfig:
        # Checked when a configuration is created; one read back from the lake passed this check
        # already, and importing the estimators (scikit-learn: ~1 s) would slow every execution.
        if info.context and info.context.get("stored"):
            return self
        valid = set(estimator_class(self.algorithm)().get_params())
        unknown = sorted(set(self.parameters) - valid)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.algorithm}; valid: {', '.join(sorted(valid))}"
            )
        return self

    @property
    def partition_key(self) -> str:
        """The Dagster partition of this configuration: ``<namespace>.<cluster_id>``."""
        return f"{self.namespace}.{self.cluster_id}"

    def estimator_parameters(self) -> dict[str, Any]:
        """Defaults overlaid with the user's parameters."""
        return {**ALGORITHM_DEFAULTS[self.algorithm], **self.parameters}


def parse_config(data: dict[str, Any], *, stored: bool = False) -> ClusterConfig:
    """Validate a configuration, turning pydantic's report into one readable ConfigurationError.

    ``stored``: ``data`` was read from the lake, written by ``ConfigStore.create`` after a full check,
    so the estimator's parameter names are not checked again.
    """
    try:
        return ClusterConfig.model_validate(data, context={"stored": stored})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'configuration'}: {item['msg']}" for item in error.errors()
        )
        raise ConfigurationError(f"Invalid cluster configuration: {problems}") from None


def split_partition_key(partition_key: str) -> tuple[str, str]:
    """Inverse of ``ClusterConfig.partition_key``."""
    namespace, _, cluster_id = partition_key.partition(".")
    return check_namespace(namespace), check_cluster_id(cluster_id)


class ConfigStore:
    """Configurations of one lake, one JSON object each."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def create(self, config: ClusterConfig) -> ClusterConfig:
        key = self.lake.cluster_config_key(config.namespace, config.cluster_id)
        if self.lake.storage.exists(key):
            raise AlreadyExistsError(f"Cluster configuration {config.cluster_id!r} exists already.")
        self.lake.storage.write_new(key, config.model_dump_json(indent=2).encode())
        return config

    def get(self, namespace: str, cluster_id: str) -> ClusterConfig:
        key = self.lake.cluster_config_key(namespace, cluster_id)
        if not self.lake.storage.exists(key):
            raise NotFoundError(
                f"Cluster configuration {cluster_id!r} not found in namespace {namespace!r}; "
                "list them with `cluster-pipeline clusters list`."
            )
        return parse_config(json.loads(self.lake.storage.read_bytes(key)), stored=True)

    def list(self, namespace: str) -> list[ClusterConfig]:
        prefix = self.lake.clusters_prefix(namespace)
        configs = [
            parse_config(json.loads(self.lake.storage.read_bytes(key)), stored=True)
            for key in self.lake.storage.list_keys(prefix)
            if key.endswith(".json")
        ]
        return sorted(configs, key=lambda c: c.created_at)

    def list_all(self) -> builtins.list[ClusterConfig]:
        return [config for namespace in self.lake.namespaces() for config in self.list(namespace)]
