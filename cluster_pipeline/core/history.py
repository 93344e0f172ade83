"""Execution history: filter, sort and page through the ExecutionResults of a configuration.

Listing reads only the summary columns of each result file (one projected scan through a
pyarrow dataset), filters and sorts them in Arrow, and opens whole results only for the page
returned. In-flight executions (pending/processing, known to Dagster's run storage, not yet in
the lake) are merged in by the caller as ``extra`` results.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.ids import check_run_id
from cluster_pipeline.core.results import STATUSES, ExecutionResult, ResultStore
from cluster_pipeline.core.storage import LocalStorage, read_parquet

SORT_FIELDS = (
    "created_at",
    "completed_at",
    "num_clusters",
    "num_points",
    "silhouette_score",
    "davies_bouldin_index",
    "calinski_harabasz_score",
)
METRIC_FIELDS = ("silhouette_score", "davies_bouldin_index", "calinski_harabasz_score")


class HistoryQueryError(ClusterPipelineError, ValueError):
    """A listing request with a bad filter, sort or cursor."""


@dataclass(frozen=True)
class HistoryQuery:
    statuses: Sequence[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_clusters: int | None = None
    max_clusters: int | None = None
    min_silhouette: float | None = None
    max_silhouette: float | None = None
    sort_by: str = "created_at"
    descending: bool = True
    limit: int = 20
    offset: int = 0
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.sort_by not in SORT_FIELDS:
            raise HistoryQueryError(f"Cannot sort by {self.sort_by!r}: use one of {', '.join(SORT_FIELDS)}.")
        bad = [s for s in self.statuses or [] if s not in STATUSES]
        if bad:
            raise HistoryQueryError(f"Unknown status {bad[0]!r}: use one of {', '.join(STATUSES)}.")
        if self.limit < 1 or self.offset < 0:
            raise HistoryQueryError("limit must be at least 1 and offset at least 0.")


@dataclass
class HistoryPage:
    results: list[ExecutionResult]
    next_cursor: str | None
    total: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


def encode_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode(run_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return check_run_id(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError, ClusterPipelineError):
        raise HistoryQueryError(f"Invalid cursor {cursor!r}: pass the next_cursor of a previous page.") from None


def _summary_columns() -> dict[str, ds.Expression]:
    columns = {
        name: ds.field(name)
        for name in ("run_id", "status", "num_clusters", "num_points", "created_at", "completed_at")
    }
    columns.update({name: ds.field("metrics", name) for name in METRIC_FIELDS})
    return columns


def summary_table(store: ResultStore, namespace: str, cluster_id: str) -> pa.Table:
    """One row of summary columns per stored result of the configuration (one projected scan)."""
    prefix = store.lake.executions_prefix(namespace, cluster_id)
    keys = [k for k in store.storage.list_keys(prefix) if k.endswith(".parquet") and k.count(".") == 1]
    if not keys:
        return pa.table({name: pa.array([], pa.null()) for name in _summary_columns()})
    if isinstance(store.storage, LocalStorage):
        dataset = ds.dataset([str(store.storage.path(k)) for k in keys], format="parquet")
        return dataset.to_table(columns=_summary_columns())
    tables = [read_parquet(store.storage, k) for k in keys]
    return ds.dataset(tables).to_table(columns=_summary_columns())


def _extra_rows(extra: Sequence[ExecutionResult]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "run_id": r.run_id,
                "status": r.status,
                "num_clusters": r.num_clusters,
                "num_points": r.num_points,
                "created_at": r.created_at,
                "completed_at": r.completed_at,
                **{m: (r.metrics or {}).get(m) for m in METRIC_FIELDS},
            }
            for r in extra
        ]
    )


def _filter(table: pa.Table, query: HistoryQuery) -> pa.Table:
    mask = pc.scalar(True)
    if query.statuses:
        mask = pc.and_(mask, pc.is_in(table["status"], pa.array(list(query.statuses))))
    if query.created_after:
        mask = pc.and_(
            mask, pc.greater_equal(table["created_at"], pa.scalar(query.created_after, table["created_at"].type))
        )
    if query.created_before:
        mask = pc.and_(mask, pc.less(table["created_at"], pa.scalar(query.created_before, table["created_at"].type)))
    for column, bound, compare in (
        ("num_clusters", query.min_clusters, pc.greater_equal),
        ("num_clusters", query.max_clusters, pc.less_equal),
        ("silhouette_score", query.min_silhouette, pc.greater_equal),
        ("silhouette_score", query.max_silhouette, pc.less_equal),
    ):
        if bound is not None:
            mask = pc.and_(mask, pc.fill_null(compare(table[column], bound), False))
    return table.filter(mask)


def list_history(
    store: ResultStore,
    namespace: str,
    cluster_id: str,
    query: HistoryQuery,
    *,
    extra: Sequence[ExecutionResult] = (),
    include_total: bool = False,
) -> HistoryPage:
    """A page of executions matching ``query``, merged with in-flight ``extra`` results."""
    stored = summary_table(store, namespace, cluster_id)
    table = stored if stored.num_rows else None
    stored_ids = set(stored["run_id"].to_pylist()) if stored.num_rows else set()
    in_flight = {r.run_id: r for r in extra if r.run_id not in stored_ids}
    if in_flight:
        rows = _extra_rows(list(in_flight.values()))
        table = rows if table is None else pa.concat_tables([table.cast(rows.schema), rows])
    if table is None or table.num_rows == 0:
        return HistoryPage([], None, 0 if include_total else None)
    table = _filter(table, query)
    order = "descending" if query.descending else "ascending"
    table = (
        table.sort_by([(query.sort_by, order), ("run_id", order)], null_placement="at_end") if table.num_rows else table
    )
    run_ids = table["run_id"].to_pylist()
    start = query.offset
    if query.cursor:
        after = decode_cursor(query.cursor)
        if after not in run_ids:
            raise HistoryQueryError(f"Cursor {query.cursor!r} does not belong to this listing; start again.")
        start = run_ids.index(after) + 1
    page_ids = run_ids[start : start + query.limit]
    results = [
        in_flight[run_id] if run_id in in_flight else store.get(namespace, run_id, cluster_id) for run_id in page_ids
    ]
    has_more = start + query.limit < len(run_ids)
    return HistoryPage(
        results, encode_cursor(page_ids[-1]) if has_more and page_ids else None, len(run_ids) if include_total else None
    )
