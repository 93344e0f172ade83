"""Cluster configurations (``clust_…``): what to cluster, how, and how to name and judge the result.

A configuration is a validated pydantic model saved as JSON in the lake, its fields flat; each stage
is handed its own options built from them (``clustering``, ``metrics``, ``topics``). Parameters are
checked by the algorithm's registry entry against the estimator's own parameters and constraints,
and the cron and timezone against the scheduler's rules, so a typo or an impossible value
(``n_clusters=0``, ``Mars/Olympus``) is refused at creation time with the rule it breaks, not deep
inside an execution.
"""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.options import ClusteringOptions, ReductionOptions
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
from cluster_pipeline.core.quality.metrics import MetricsOptions
from cluster_pipeline.core.topics.options import TopicsOptions

NIGHTLY_CRON = "0 2 * * *"
if TYPE_CHECKING:
    Algorithm = str
else:  # the registry's names, as a choice pydantic checks and the command line offers
    Algorithm = Literal[tuple(registry.names())]
# the fit's options that are fields of the configuration itself (normalize is preprocessing's)
CLUSTERING_FIELDS = tuple(f.name for f in fields(ClusteringOptions) if f.name != "normalize")


class Preprocessing(BaseModel):
    """How vectors are prepared before fitting (and before any reduction)."""

    model_config = ConfigDict(extra="forbid")

    normalize: bool = Field(True, description="L2-normalise each vector (cosine geometry with Euclidean maths).")


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

    cluster_id: Annotated[str, AfterValidator(check_cluster_id)] = Field(default_factory=new_cluster_id)
    name: str | None = Field(
        None,
        description="Readable name, unique in the namespace (the Dagster partition is <namespace>.<name>); "
        "derived from collection, algorithm and main parameter when not given, e.g. 'agnews-kmeans-k4'.",
    )
    namespace: Annotated[str, AfterValidator(check_namespace)] = "default"
    collection: Annotated[str, AfterValidator(check_collection)] = Field(
        description="The collection to cluster, in the configuration's namespace."
    )
    feature: Annotated[str, AfterValidator(check_feature)] = "embedding"
    features: list[str] | None = Field(
        None,
        description="Several embedding features clustered as one space (each L2-normalised first); "
        "feature is then the first of them.",
    )
    combine: Literal["concatenate", "weighted"] = Field(
        "concatenate", description="How several features make one vector: side by side, or weighted ('weights')."
    )
    weights: list[float] | None = Field(None, description="One positive weight per feature, for combine='weighted'.")
    filters: dict[str, Any] | None = Field(
        None, description="Cluster only the documents this filter keeps (core.filters: AND/OR/NOT over metadata)."
    )
    algorithm: Algorithm = Field("kmeans", description="The clustering algorithm; its parameters go in --param.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    reduction: ReductionOptions = Field(default_factory=ReductionOptions)
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
        description="Cluster collections whose vectors exceed this by streaming them (k-means only): trained on a "
        "seeded sample, then passes that assign every document, sampled metrics; and refuse quadratic fits whose "
        "estimated memory exceeds it. None: in memory while the vectors fit the machine's available memory, "
        "streamed (k-means) when they do not.",
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
    description: str | None = Field(None, description="Free text shown with the configuration.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    version: int = Field(1, ge=1, description="Raised by every update that changes what an execution computes.")
    updated_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_config_name(value)

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
    def _column_list(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Metadata columns (``attribute_based``'s ``attributes``) as a list (``"category,brand"`` from the CLI too)."""
        name = registry.spec(info.data["algorithm"]).columns_parameter if "algorithm" in info.data else None
        if name is not None and isinstance(value.get(name), str):
            return {**value, name: [column.strip() for column in value[name].split(",") if column.strip()]}
        return value

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """Configurations saved before ``sample_size`` replaced ``fit_sample_size`` and ``reduction``
        replaced ``preprocessing.pca_components``."""
        if not isinstance(data, dict):
            return data
        if "fit_sample_size" in data:
            if data.get("sample_size") is not None:
                raise ValueError("fit_sample_size is the old name of sample_size: give only sample_size")
            moved = {key: value for key, value in data.items() if key != "fit_sample_size"}
            data = {**moved, "sample_size": data["fit_sample_size"]}
        preprocessing = data.get("preprocessing")
        if isinstance(preprocessing, dict) and "pca_components" in preprocessing:
            components = preprocessing["pca_components"]
            if components == "auto" or components is None:
                reduction: dict[str, Any] = {"method": "auto" if components else "none"}
            else:
                reduction = {"method": "pca", "n_components": components}
            kept = {key: value for key, value in preprocessing.items() if key != "pca_components"}
            data = {**data, "preprocessing": kept, "reduction": data.get("reduction", reduction)}
        return data

    @field_validator("combine", mode="before")
    @classmethod
    def _one_result_per_execution(cls, value: Any) -> Any:
        """'independent' is no choice (the CLI does not offer it), but a file naming it learns why."""
        if value == "independent":
            raise ValueError(
                "combine='independent' is not offered: an execution writes one ExecutionResult under one run_id "
                "(the seed's contract), and one clustering per feature would need several. Create one "
                "configuration per feature instead (clusters create --feature a, then --feature b), or combine "
                "them into one space with 'concatenate' or 'weighted'"
            )
        return value

    @model_validator(mode="after")
    def _features_combined(self) -> ClusterConfig:
        names = self.features or [self.feature]
        if self.features is not None and "feature" in self.model_fields_set and self.feature != names[0]:
            raise ValueError(f"feature {self.feature!r} and features {names} disagree: give features only")
        self.feature = names[0]
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
        if not (info.context and info.context.get("stored")):
            registry.spec(self.algorithm).validate(self.clustering)
        return self

    @property
    def clustering(self) -> ClusteringOptions:
        """The fit stage's options (``core.fit``)."""
        chosen = {name: getattr(self, name) for name in CLUSTERING_FIELDS}
        return ClusteringOptions(normalize=self.preprocessing.normalize, **chosen)

    @property
    def metrics(self) -> MetricsOptions:
        """The quality metrics' options (``core.quality.metrics``)."""
        return MetricsOptions(sample_size=self.metric_sample_size)

    @property
    def topics(self) -> TopicsOptions:
        """The topic structure's options (``core.topics``)."""
        return TopicsOptions(self.time_column, self.labeling.text_fields, self.labeling.num_keywords)

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
        """The algorithm's defaults overlaid with the user's parameters."""
        return registry.spec(self.algorithm).with_defaults(self.parameters)


def parse_config(data: dict[str, Any], *, stored: bool = False) -> ClusterConfig:
    """Validate a configuration, turning pydantic's report into one readable ConfigurationError;
    ``stored`` data (read from the lake, checked in full when created) skips the estimator's checks."""
    try:
        return ClusterConfig.model_validate(data, context={"stored": stored})
    except ValidationError as error:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in item['loc'])}: " if item["loc"] else "")
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        )
        raise ConfigurationError(f"Invalid cluster configuration: {problems}") from None
