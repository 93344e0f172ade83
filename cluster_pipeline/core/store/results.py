"""ExecutionResult: the seed's contract, stored as one immutable Parquet file per run_id (its fields:
the README's "The ExecutionResult"). Per-document assignments go in ``<run_id>.assignments.parquet``
and are written *before* the result: a result that exists always has its assignments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.errors import AlreadyExistsError, ClusterPipelineError, NotFoundError
from cluster_pipeline.core.ids import check_cluster_id, check_namespace, check_run_id
from cluster_pipeline.core.store.annotations import Annotations, AnnotationStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.storage import read_parquet

Status = Literal["pending", "processing", "completed", "failed", "canceled"]
STATUSES: tuple[str, ...] = ("pending", "processing", "completed", "failed", "canceled")
FINISHED_STATUSES: tuple[str, ...] = ("completed", "failed", "canceled")
METRICS_UNAVAILABLE = "Metrics not available (failed execution)"  # the seed's string

log = logging.getLogger(__name__)
T = TypeVar("T")


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
class Codec:
    """How a field's Python value becomes its Parquet value and back (``None`` stays ``None`` both ways)."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


PLAIN = Codec(lambda value: value, lambda value: value)
TIME = Codec(lambda value: value.astimezone(UTC), lambda value: value)
JSON = Codec(lambda value: json.dumps(value, default=str), json.loads)
SORTED_JSON = Codec(lambda value: json.dumps(value, sort_keys=True, default=str), json.loads)
JSON_TEXT = pa.string()
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def column(
    arrow_type: pa.DataType,
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | Any = MISSING,
    nullable: bool = True,
    codec: Codec = PLAIN,
) -> Any:
    """A dataclass field that is also a Parquet column (``default``/``factory`` as in ``dataclasses.field``)."""
    metadata = {"arrow_type": arrow_type, "nullable": nullable, "codec": codec}
    return field(default=default, default_factory=factory, metadata=metadata)


def annotation(default: Any = None) -> Any:
    """A dataclass field that is no Parquet column: what a person adds to a finished result later (its
    ``<run_id>.annotations.json``, ``core.store.annotations``), merged in when the result is read."""
    return field(default=default)


def _columns(cls: type) -> list[tuple[str, Mapping[str, Any], Any]]:
    """``(name, column metadata, default when null or absent)`` of each column field, in declaration order."""
    return [
        (f.name, f.metadata, f.default_factory() if f.default_factory is not MISSING else f.default)
        for f in fields(cls)
        if "arrow_type" in f.metadata
    ]


def arrow_fields(cls: type) -> list[pa.Field]:
    return [pa.field(name, col["arrow_type"], nullable=col["nullable"]) for name, col, _ in _columns(cls)]


def encode_row(value: Any) -> dict[str, Any]:
    """A dataclass of ``column`` fields as one Parquet row (a dict of its columns)."""
    items = ((name, getattr(value, name), col["codec"]) for name, col, _ in _columns(type(value)))
    return {name: None if item is None else codec.encode(item) for name, item, codec in items}


def decode_row(cls: type[T], row: dict[str, Any]) -> T:
    """The dataclass of ``row``; a column the row lacks (a file written before the field existed) or
    a null takes the field's default. A required field the row lacks raises KeyError."""
    values = {}
    for name, col, default in _columns(cls):
        item = row[name] if default is MISSING else row.get(name)
        values[name] = (None if default is MISSING else default) if item is None else col["codec"].decode(item)
    return cls(**values)


@dataclass(frozen=True)
class Centroid:
    """One cluster's summary; the first five fields are the seed's."""

    cluster_id: str = column(pa.string())
    num_members: int = column(pa.int64())
    label: str = column(pa.string())
    summary: str = column(pa.string())
    keywords: list[str] = column(pa.list_(pa.string()))
    label_source: str = column(pa.string(), "offline")
    representative_document_ids: list[str] = column(pa.list_(pa.string()), factory=list)
    metadata: dict[str, Any] = column(JSON_TEXT, factory=dict, codec=SORTED_JSON)
    coherence: float | None = column(pa.float64(), None)  # NPMI of its top-10 topic words (core.quality.coherence)


CENTROID_TYPE = pa.struct(arrow_fields(Centroid))
CENTROIDS = Codec(
    lambda centroids: [encode_row(c) for c in centroids], lambda rows: [decode_row(Centroid, r) for r in rows]
)
METRICS_TYPE = pa.struct(
    [
        ("silhouette_score", pa.float64()),
        ("davies_bouldin_index", pa.float64()),
        ("calinski_harabasz_score", pa.float64()),
        ("description", pa.string()),
        # topic measures (core.quality.coherence): mean c_npmi, its document-level variant, topic diversity
        ("coherence_npmi", pa.float64()),
        ("coherence_npmi_document", pa.float64()),
        ("topic_diversity", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ExecutionResult:
    """One execution's outcome, declared once: each field is also its Parquet column (``RESULT_SCHEMA``)
    and its JSON value (``to_json_dict``), in this order, the seed's fields first.

    Adding a field is one line here, with a default so that older files still read::

        reviewer: str | None = column(pa.string(), None)
    """

    run_id: str = column(pa.string(), nullable=False)
    cluster_id: str = column(pa.string(), nullable=False)
    status: Status = column(pa.string(), nullable=False)
    num_clusters: int = column(pa.int64(), nullable=False)
    num_points: int = column(pa.int64(), nullable=False)
    created_at: datetime = column(_TIMESTAMP, nullable=False, codec=TIME)
    metrics: dict[str, Any] | None = column(METRICS_TYPE, None)
    centroids: list[Centroid] | None = column(pa.list_(CENTROID_TYPE), None, codec=CENTROIDS)
    completed_at: datetime | None = column(_TIMESTAMP, None, codec=TIME)
    error_message: str | None = column(pa.string(), None)
    # extras
    namespace: str = column(pa.string(), "default")
    collection: str | None = column(pa.string(), None)
    feature: str | None = column(pa.string(), None)
    algorithm: str | None = column(pa.string(), None)
    parameters: dict[str, Any] = column(JSON_TEXT, factory=dict, codec=SORTED_JSON)
    num_noise: int = column(pa.int64(), 0)
    silhouette_sample_size: int | None = column(pa.int64(), None)
    collection_version: str | None = column(pa.string(), None)
    dagster_run_id: str | None = column(pa.string(), None)
    timings: dict[str, float] = column(JSON_TEXT, factory=dict, codec=SORTED_JSON)
    llm_labeling_errors: list[dict[str, Any]] | None = column(JSON_TEXT, None, codec=JSON)
    llm_usage: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    drift: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    artifacts: dict[str, str] = column(JSON_TEXT, factory=dict, codec=SORTED_JSON)
    engine: str | None = column(pa.string(), None)
    reduction: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    auto_k: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    topic_reduction: dict[str, Any] | None = column(JSON_TEXT, None, codec=JSON)
    cluster_splits: dict[str, Any] | None = column(JSON_TEXT, None, codec=JSON)  # oversized clusters split
    num_noise_reassigned: int = column(pa.int64(), 0)
    coverage: str | None = column(pa.string(), None)
    quality_note: str | None = column(pa.string(), None)
    warning: str | None = column(pa.string(), None)
    configuration: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)  # what the execution ran with
    configuration_version: int | None = column(pa.int64(), None)
    # documents in the collection, the filter, matched, fitted
    selection: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    trigger: str | None = column(pa.string(), None)
    trigger_reason: str | None = column(pa.string(), None)
    hierarchy: dict[str, Any] | None = column(JSON_TEXT, None, codec=JSON)
    topics_over_time: dict[str, Any] | None = column(JSON_TEXT, None, codec=JSON)
    # the pictures' and map's 2-D layout: method, and the previous run it was aligned to
    layout: dict[str, Any] | None = column(JSON_TEXT, None, codec=SORTED_JSON)
    mode: str | None = column(pa.string(), None)  # "full": fitted afresh (the SDK's field)
    source_documents: int | None = column(pa.int64(), None)  # in the collection when the execution read it
    vectors_retrieved: int | None = column(pa.int64(), None)  # vectors loaded (the filter's matches)
    vectors_clustered: int | None = column(pa.int64(), None)  # documents that left the fit in a cluster
    error_traceback: str | None = column(pa.string(), None)  # a failure's traceback, its tail
    # a person's additions, beside the immutable file (core.store.annotations)
    label_overrides: dict[str, str] | None = annotation()
    run_name: str | None = annotation()

    def __post_init__(self) -> None:
        check_run_id(self.run_id)
        check_cluster_id(self.cluster_id)
        check_namespace(self.namespace)
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def with_updates(self, **changes: Any) -> ExecutionResult:
        return replace(self, **changes)

    def annotated(self, annotations: Annotations) -> ExecutionResult:
        """This result as people named it: each renamed cluster's ``label`` replaced (its ``label_source``
        says ``override``, or ``carried_over`` for a name inherited from an earlier run), ``label_overrides``
        and ``run_name`` set. The stored file keeps the labels the execution found."""
        if annotations.empty:
            return self
        overrides = annotations.label_overrides
        centroids = [
            replace(c, label=overrides[c.cluster_id],
                    label_source="carried_over" if c.cluster_id in annotations.carried_from else "override")
            if c.cluster_id in overrides else c
            for c in self.centroids or []
        ]  # fmt: skip
        return replace(
            self,
            centroids=centroids if self.centroids is not None else None,
            label_overrides=dict(overrides) or None,
            run_name=annotations.run_name,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The seed's response shape (seed fields first, then the extras)."""
        data = asdict(self)
        for name, col, _ in _columns(ExecutionResult):
            if col["codec"] is TIME:
                data[name] = format_timestamp(data[name])
        return data

    def to_table(self) -> pa.Table:
        return pa.Table.from_pylist([encode_row(self)], schema=RESULT_SCHEMA)


RESULT_SCHEMA = pa.schema(arrow_fields(ExecutionResult))

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


# Parquet dictionary-encodes only the columns whose values repeat: a dictionary of ten million unique
# document ids is built and thrown away (a third of the write at 10M documents).
ASSIGNMENTS_DICTIONARY = ["cluster_id"]


def cluster_name(index: int) -> str:
    return f"cl_{index}"


def assignment_columns(
    document_ids: pa.Array | pa.ChunkedArray,
    labels: np.ndarray,
    num_clusters: int,
    distances: np.ndarray,
    membership: np.ndarray | None,
) -> dict[str, Any]:
    """The first five columns of ``ASSIGNMENTS_SCHEMA``, shared by the assignments of new documents."""
    names = pa.array([cluster_name(i) for i in range(num_clusters)] + [None], pa.string())
    if membership is None:
        membership = np.full(len(labels), np.nan, np.float32)
    return {
        "document_id": document_ids.cast(pa.string()),
        "cluster_id": names.take(np.where(labels < 0, num_clusters, labels)),
        "cluster_index": pa.array(labels.astype(np.int32)),
        "distance": pa.array(distances, pa.float32(), from_pandas=True),
        "membership_strength": pa.array(membership, pa.float32(), from_pandas=True),
    }


class ResultStore:
    """Write-once ExecutionResults and their assignments; list and read them back."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.storage = lake.storage
        self.annotations = AnnotationStore(lake)

    def result_key(self, result: ExecutionResult) -> str:
        return self.lake.execution_key(result.namespace, result.cluster_id, result.run_id)

    def assignments_key(self, namespace: str, cluster_id: str, run_id: str) -> str:
        return self.lake.execution_key(namespace, cluster_id, run_id, "assignments.parquet")

    def exists(self, namespace: str, cluster_id: str, run_id: str) -> bool:
        return self.storage.exists(self.lake.execution_key(namespace, cluster_id, run_id))

    def write(self, result: ExecutionResult) -> str:
        """Publish ``result``; AlreadyExistsError for a known run_id."""
        key = self.result_key(result)
        if self.storage.exists(key):
            raise AlreadyExistsError(f"ExecutionResult {result.run_id} exists already; results are immutable.")
        self.storage.write_parquet_new(key, result.to_table())
        return self.storage.uri(key)

    def write_assignments(self, result: ExecutionResult, assignments: pa.Table | pa.RecordBatchReader) -> None:
        """The per-document assignments of a result about to be published (once; never replaced): a table,
        or ``ASSIGNMENTS_SCHEMA`` batches written as they come."""
        key = self.assignments_key(result.namespace, result.cluster_id, result.run_id)
        if not self.storage.exists(key):
            if isinstance(assignments, pa.Table):
                assignments = assignments.cast(ASSIGNMENTS_SCHEMA)
            self.storage.write_parquet_new(key, assignments, use_dictionary=ASSIGNMENTS_DICTIONARY)

    def read_key(self, key: str) -> ExecutionResult:
        try:
            rows = read_parquet(self.storage, key).to_pylist()
            result = decode_row(ExecutionResult, rows[0])
        except (pa.ArrowException, OSError, KeyError, IndexError, TypeError, ValueError) as error:
            raise UnreadableResultError(
                f"Result file {self.storage.uri(key)} is unreadable ({type(error).__name__}: {error}); it was not "
                "written by cluster_pipeline (results are written whole or not at all): move it away."
            ) from None
        return result.annotated(self.annotations.get(result.namespace, result.cluster_id, result.run_id))

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
