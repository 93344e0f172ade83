"""ExecutionResult: the seed's contract, stored as one immutable Parquet file per run_id.

The seed's fields keep their exact names and meanings; extra fields (namespace, collection,
algorithm, parameters, timings, noise, drift, Dagster run id, ...) follow them. Nested values
that have no fixed shape (parameters, timings, LLM errors) are stored as JSON text so any Parquet
reader sees plain columns. Per-document assignments go in ``<run_id>.assignments.parquet`` and are
written *before* the result: a result that exists always has its assignments.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa

from cluster_pipeline.core.errors import ClusterPipelineError, NotFoundError
from cluster_pipeline.core.ids import check_cluster_id, check_namespace, check_run_id
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.storage import read_parquet

Status = Literal["pending", "processing", "completed", "failed"]
STATUSES: tuple[str, ...] = ("pending", "processing", "completed", "failed")
METRICS_UNAVAILABLE = "Metrics not available (failed execution)"  # the seed's string

log = logging.getLogger(__name__)


class UnreadableResultError(ClusterPipelineError):
    """A file where an ExecutionResult should be is not one (empty, truncated, foreign)."""


def format_timestamp(value: datetime | None) -> str | None:
    """The seed's JSON form: ``2025-11-13T13:20:40.122000Z`` (UTC, microseconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Centroid:
    """One cluster's summary; the first five fields are the seed's."""

    cluster_id: str
    num_members: int
    label: str
    summary: str
    keywords: list[str]
    label_source: str = "offline"
    representative_document_ids: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionResult:
    run_id: str
    cluster_id: str
    status: Status
    num_clusters: int
    num_points: int
    created_at: datetime
    metrics: dict[str, Any] | None = None
    centroids: list[Centroid] | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    # extras
    namespace: str = "default"
    collection: str | None = None
    feature: str | None = None
    algorithm: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    num_noise: int = 0
    silhouette_sample_size: int | None = None
    collection_version: str | None = None
    dagster_run_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    llm_labeling_errors: list[dict[str, Any]] | None = None
    llm_usage: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    engine: str | None = None
    reduction: dict[str, Any] | None = None
    auto_k: dict[str, Any] | None = None
    topic_reduction: dict[str, Any] | None = None
    num_noise_reassigned: int = 0
    coverage: str | None = None
    quality_note: str | None = None
    warning: str | None = None
    configuration: dict[str, Any] | None = None
    configuration_version: int | None = None
    selection: dict[str, Any] | None = None
    trigger: str | None = None
    trigger_reason: str | None = None
    hierarchy: dict[str, Any] | None = None
    topics_over_time: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_run_id(self.run_id)
        check_cluster_id(self.cluster_id)
        check_namespace(self.namespace)
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def with_updates(self, **changes: Any) -> ExecutionResult:
        return replace(self, **changes)

    def to_json_dict(self) -> dict[str, Any]:
        """The seed's response shape (seed fields first, then the extras)."""
        data = asdict(self)
        data["created_at"] = format_timestamp(self.created_at)
        data["completed_at"] = format_timestamp(self.completed_at)
        return data

    def to_table(self) -> pa.Table:
        row = {
            "run_id": self.run_id,
            "cluster_id": self.cluster_id,
            "status": self.status,
            "num_clusters": self.num_clusters,
            "num_points": self.num_points,
            "created_at": self.created_at.astimezone(UTC),
            "metrics": self.metrics,
            "centroids": None
            if self.centroids is None
            else [{**asdict(c), "metadata": json.dumps(c.metadata, sort_keys=True)} for c in self.centroids],
            "completed_at": None if self.completed_at is None else self.completed_at.astimezone(UTC),
            "error_message": self.error_message,
            "namespace": self.namespace,
            "collection": self.collection,
            "feature": self.feature,
            "algorithm": self.algorithm,
            "parameters": json.dumps(self.parameters, sort_keys=True, default=str),
            "num_noise": self.num_noise,
            "silhouette_sample_size": self.silhouette_sample_size,
            "collection_version": self.collection_version,
            "dagster_run_id": self.dagster_run_id,
            "timings": json.dumps(self.timings, sort_keys=True),
            "llm_labeling_errors": None if self.llm_labeling_errors is None else json.dumps(self.llm_labeling_errors),
            "llm_usage": None if self.llm_usage is None else json.dumps(self.llm_usage, sort_keys=True),
            "drift": None if self.drift is None else json.dumps(self.drift, sort_keys=True, default=str),
            "artifacts": json.dumps(self.artifacts, sort_keys=True),
            "engine": self.engine,
            "reduction": None if self.reduction is None else json.dumps(self.reduction, sort_keys=True),
            "auto_k": None if self.auto_k is None else json.dumps(self.auto_k, sort_keys=True),
            "topic_reduction": None if self.topic_reduction is None else json.dumps(self.topic_reduction),
            "num_noise_reassigned": self.num_noise_reassigned,
            "coverage": self.coverage,
            "quality_note": self.quality_note,
            "warning": self.warning,
            "configuration": None if self.configuration is None else json.dumps(self.configuration, sort_keys=True),
            "configuration_version": self.configuration_version,
            "selection": None if self.selection is None else json.dumps(self.selection, sort_keys=True),
            "trigger": self.trigger,
            "trigger_reason": self.trigger_reason,
            "hierarchy": None if self.hierarchy is None else json.dumps(self.hierarchy),
            "topics_over_time": None if self.topics_over_time is None else json.dumps(self.topics_over_time),
        }
        return pa.Table.from_pylist([row], schema=RESULT_SCHEMA)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ExecutionResult:
        def loads(value: str | None, default: Any = None) -> Any:
            return default if value is None else json.loads(value)

        centroids = row["centroids"]
        return cls(
            run_id=row["run_id"],
            cluster_id=row["cluster_id"],
            status=row["status"],
            num_clusters=int(row["num_clusters"]),
            num_points=int(row["num_points"]),
            created_at=row["created_at"],
            metrics=row["metrics"],
            centroids=None
            if centroids is None
            else [Centroid(**{**c, "metadata": loads(c["metadata"], {})}) for c in centroids],
            completed_at=row["completed_at"],
            error_message=row["error_message"],
            namespace=row["namespace"],
            collection=row["collection"],
            feature=row["feature"],
            algorithm=row["algorithm"],
            parameters=loads(row["parameters"], {}),
            num_noise=int(row["num_noise"] or 0),
            silhouette_sample_size=row["silhouette_sample_size"],
            collection_version=row["collection_version"],
            dagster_run_id=row["dagster_run_id"],
            timings=loads(row["timings"], {}),
            llm_labeling_errors=loads(row["llm_labeling_errors"]),
            llm_usage=loads(row["llm_usage"]),
            drift=loads(row["drift"]),
            artifacts=loads(row["artifacts"], {}),
            # absent from results written before they were recorded
            engine=row.get("engine"),
            reduction=loads(row.get("reduction")),
            auto_k=loads(row.get("auto_k")),
            topic_reduction=loads(row.get("topic_reduction")),
            num_noise_reassigned=int(row.get("num_noise_reassigned") or 0),
            coverage=row.get("coverage"),
            quality_note=row.get("quality_note"),
            warning=row.get("warning"),
            configuration=loads(row.get("configuration")),
            configuration_version=row.get("configuration_version"),
            selection=loads(row.get("selection")),
            trigger=row.get("trigger"),
            trigger_reason=row.get("trigger_reason"),
            hierarchy=loads(row.get("hierarchy")),
            topics_over_time=loads(row.get("topics_over_time")),
        )


_TIMESTAMP = pa.timestamp("us", tz="UTC")
METRICS_TYPE = pa.struct(
    [
        ("silhouette_score", pa.float64()),
        ("davies_bouldin_index", pa.float64()),
        ("calinski_harabasz_score", pa.float64()),
        ("description", pa.string()),
    ]
)
CENTROID_TYPE = pa.struct(
    [
        ("cluster_id", pa.string()),
        ("num_members", pa.int64()),
        ("label", pa.string()),
        ("summary", pa.string()),
        ("keywords", pa.list_(pa.string())),
        ("label_source", pa.string()),
        ("representative_document_ids", pa.list_(pa.string())),
        ("metadata", pa.string()),
    ]
)
RESULT_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("num_clusters", pa.int64(), nullable=False),
        pa.field("num_points", pa.int64(), nullable=False),
        pa.field("created_at", _TIMESTAMP, nullable=False),
        pa.field("metrics", METRICS_TYPE),
        pa.field("centroids", pa.list_(CENTROID_TYPE)),
        pa.field("completed_at", _TIMESTAMP),
        pa.field("error_message", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("collection", pa.string()),
        pa.field("feature", pa.string()),
        pa.field("algorithm", pa.string()),
        pa.field("parameters", pa.string()),
        pa.field("num_noise", pa.int64()),
        pa.field("silhouette_sample_size", pa.int64()),
        pa.field("collection_version", pa.string()),
        pa.field("dagster_run_id", pa.string()),
        pa.field("timings", pa.string()),
        pa.field("llm_labeling_errors", pa.string()),
        pa.field("llm_usage", pa.string()),
        pa.field("drift", pa.string()),
        pa.field("artifacts", pa.string()),
        pa.field("engine", pa.string()),
        pa.field("reduction", pa.string()),
        pa.field("auto_k", pa.string()),
        pa.field("topic_reduction", pa.string()),
        pa.field("num_noise_reassigned", pa.int64()),
        pa.field("coverage", pa.string()),
        pa.field("quality_note", pa.string()),
        pa.field("warning", pa.string()),
        pa.field("configuration", pa.string()),  # the configuration the execution ran with (JSON)
        pa.field("configuration_version", pa.int64()),
        pa.field("selection", pa.string()),  # documents in the collection, the filter, matched, fitted (JSON)
        pa.field("trigger", pa.string()),
        pa.field("trigger_reason", pa.string()),
        pa.field("hierarchy", pa.string()),
        pa.field("topics_over_time", pa.string()),
    ]
)

ASSIGNMENTS_SCHEMA = pa.schema(
    [
        pa.field("document_id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string()),  # cl_N, null for noise
        pa.field("cluster_index", pa.int32(), nullable=False),  # -1 for noise
        pa.field("distance", pa.float32()),  # to the cluster's centroid in the embedding space
        pa.field("membership_strength", pa.float32()),
        pa.field("is_noise", pa.bool_(), nullable=False),
        pa.field("in_sample", pa.bool_(), nullable=False),  # in the sample the algorithm was fitted on
    ]
)


def cluster_name(index: int) -> str:
    return f"cl_{index}"


class ResultStore:
    """Write-once ExecutionResults and their assignments; list and read them back."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.storage = lake.storage

    def result_key(self, result: ExecutionResult) -> str:
        return self.lake.execution_key(result.namespace, result.cluster_id, result.run_id)

    def assignments_key(self, namespace: str, cluster_id: str, run_id: str) -> str:
        return self.lake.execution_key(namespace, cluster_id, run_id, "assignments.parquet")

    def exists(self, namespace: str, cluster_id: str, run_id: str) -> bool:
        return self.storage.exists(self.lake.execution_key(namespace, cluster_id, run_id))

    def write(self, result: ExecutionResult, assignments: pa.Table | None = None) -> str:
        """Publish ``result`` (and its assignments first). Raises AlreadyExistsError for a known run_id."""
        from cluster_pipeline.core.errors import AlreadyExistsError

        key = self.result_key(result)
        if self.storage.exists(key):
            raise AlreadyExistsError(f"ExecutionResult {result.run_id} exists already; results are immutable.")
        if assignments is not None:
            self.write_assignments(result, assignments)
        self.storage.write_parquet_new(key, result.to_table())
        return self.storage.uri(key)

    def write_assignments(self, result: ExecutionResult, assignments: pa.Table) -> None:
        """The per-document assignments of a result about to be published (once; never replaced)."""
        key = self.assignments_key(result.namespace, result.cluster_id, result.run_id)
        if not self.storage.exists(key):
            self.storage.write_parquet_new(key, assignments.cast(ASSIGNMENTS_SCHEMA))

    def read_key(self, key: str) -> ExecutionResult:
        try:
            rows = read_parquet(self.storage, key).to_pylist()
            return ExecutionResult.from_row(rows[0])
        except NotFoundError:
            raise
        except (pa.ArrowException, OSError, KeyError, IndexError, TypeError, ValueError) as error:
            raise UnreadableResultError(
                f"Result file {self.storage.uri(key)} is unreadable ({type(error).__name__}: {error}); it was not "
                "written by cluster_pipeline (results are written whole or not at all): move it away."
            ) from None

    def get(self, namespace: str, run_id: str, cluster_id: str | None = None) -> ExecutionResult:
        check_run_id(run_id)
        if cluster_id is not None:
            key = self.lake.execution_key(namespace, cluster_id, run_id)
            if self.storage.exists(key):
                return self.read_key(key)
        else:
            for key in self.storage.list_keys(self.lake.executions_prefix(namespace)):
                if key.endswith(f"/{run_id}.parquet"):
                    return self.read_key(key)
        raise NotFoundError(f"Execution {run_id!r} not found in namespace {namespace!r}.")

    def result_keys(self, namespace: str, cluster_id: str) -> list[str]:
        prefix = self.lake.executions_prefix(namespace, cluster_id)
        return [k for k in self.storage.list_keys(prefix) if k.endswith(".parquet") and k.count(".") == 1]

    def list(self, namespace: str, cluster_id: str) -> list[ExecutionResult]:
        """All readable stored results of one configuration, newest first (unreadable files are logged)."""
        results = []
        for key in self.result_keys(namespace, cluster_id):
            try:
                results.append(self.read_key(key))
            except UnreadableResultError as error:
                log.warning(str(error))
        return sorted(results, key=lambda r: r.created_at, reverse=True)

    def delete_history(self, namespace: str, cluster_id: str) -> int:
        """Remove every stored execution of a configuration (results, assignments, pictures); returns
        how many results there were. Only for a configuration deleted with its history."""
        results = self.result_keys(namespace, cluster_id)
        for key in results + self.storage.list_keys(self.lake.executions_prefix(namespace, cluster_id)):
            self.storage.delete(key)  # results first: an interrupted delete never leaves one without its files
        return len(results)

    def read_assignments(self, namespace: str, cluster_id: str, run_id: str) -> pa.Table:
        return read_parquet(self.storage, self.assignments_key(namespace, cluster_id, run_id))

    def uri(self, result: ExecutionResult) -> str:
        return self.storage.uri(self.result_key(result))
