"""Execution history: filter, sort and page through the ExecutionResults of a configuration.

Listing reads only the summary columns of each result file (one projected scan), filters and sorts
them in Arrow as one expression (the listing's options ANDed to its filter), and opens whole results
only for the page returned. Only a search reads the centroids column.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.ids import check_run_id
from cluster_pipeline.core.store.filters import Combination, Condition, Filter, to_expression
from cluster_pipeline.core.store.results import METRICS_TYPE, RESULT_SCHEMA, STATUSES, ExecutionResult, ResultStore
from cluster_pipeline.core.store.storage import LocalStorage, read_parquet

METRIC_FIELDS = ("silhouette_score", "davies_bouldin_index", "calinski_harabasz_score")
SORT_FIELDS = ("created_at", "completed_at", "num_clusters", "num_points", *METRIC_FIELDS)
DUCKDB_ABOVE = 32  # result files; fewer are read one by one (see summary_table)

log = logging.getLogger(__name__)


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
    filter: Filter | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        if self.sort_by not in SORT_FIELDS:
            raise HistoryQueryError(f"Cannot sort by {self.sort_by!r}: use one of {', '.join(SORT_FIELDS)}.")
        bad = [s for s in self.statuses or [] if s not in STATUSES]
        if bad:
            raise HistoryQueryError(f"Unknown status {bad[0]!r}: use one of {', '.join(STATUSES)}.")
        if self.limit < 1 or self.offset < 0:
            raise HistoryQueryError("limit must be at least 1 and offset at least 0.")
        if self.search is not None and not self.search.strip():
            raise HistoryQueryError("search needs some text to look for.")

    def conditions(self) -> Filter | None:
        """The listing's options and its filter, as one filter (None: keep everything)."""
        bounds = (
            ("status", "in", tuple(self.statuses) if self.statuses else None),
            ("created_at", "gte", self.created_after and self.created_after.isoformat()),
            ("created_at", "lt", self.created_before and self.created_before.isoformat()),
            ("num_clusters", "gte", self.min_clusters),
            ("num_clusters", "lte", self.max_clusters),
            ("silhouette_score", "gte", self.min_silhouette),
            ("silhouette_score", "lte", self.max_silhouette),
        )
        parts: list[Filter] = [Condition(f, op, value) for f, op, value in bounds if value is not None]
        if self.filter is not None:
            parts.append(self.filter)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Combination("AND", tuple(parts))


@dataclass
class HistoryPage:
    """One page of executions; with ``include_total``, ``total`` and ``stats`` describe all that matched:
    ``{"by_status": {status: count}, "mean_silhouette": float | None, "with_metrics": int}``."""

    results: list[ExecutionResult]
    next_cursor: str | None
    total: int | None = None
    stats: dict[str, object] | None = None


def encode_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode(run_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return check_run_id(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError, ClusterPipelineError):
        raise HistoryQueryError(f"Invalid cursor {cursor!r}: pass the next_cursor of a previous page.") from None


SUMMARY_FIELDS = ("run_id", "status", "num_clusters", "num_points", "num_noise", "created_at", "completed_at",
                  *METRIC_FIELDS, "algorithm", "feature", "engine", "configuration_version", "error_message",
                  "warning", "trigger")  # fmt: skip
# the metrics struct's fields become columns of their own
SUMMARY_SCHEMA = pa.schema(
    (name, METRICS_TYPE.field(name).type if name in METRIC_FIELDS else RESULT_SCHEMA.field(name).type)
    for name in SUMMARY_FIELDS
)
FILTER_FIELDS = tuple(SUMMARY_SCHEMA.names)
SEARCH_COLUMN = pa.field("centroids", RESULT_SCHEMA.field("centroids").type)


def _summary_of(table: pa.Table, search: bool) -> pa.Table:
    """The summary columns of whole results: the metrics struct's fields as columns of their own, a
    field the results predate (written by an older version) as nulls."""
    schema = SUMMARY_SCHEMA.append(SEARCH_COLUMN) if search else SUMMARY_SCHEMA
    for field in RESULT_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    columns = [
        pc.struct_field(table.column("metrics"), name) if name in METRIC_FIELDS else table.column(name)
        for name in schema.names
    ]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


SUMMARY_CACHE_SIZE = 64  # configurations whose summaries a long-lived process (the HTTP API) keeps
_summaries: dict[tuple[str, bool], pa.Table] = {}


def summary_table(
    store: ResultStore,
    namespace: str,
    cluster_id: str,
    on_skip: Callable[[str], None] = log.warning,
    *,
    search: bool = False,
) -> pa.Table:
    """One row of summary columns per stored result of the configuration (and ``centroids`` when
    ``search``). Results never change once written, so a process keeps the rows it has read: the next
    call lists the folder and reads only the files that appeared since (rows of deleted files are
    dropped), which keeps the HTTP API's polls and listings from scanning a long history each time."""
    cache_key = (store.storage.uri(store.lake.executions_prefix(namespace, cluster_id)), search)
    cached = _summaries.get(cache_key)  # requests in parallel threads all find it
    if cached is None:
        table = _read_summaries(store, namespace, cluster_id, on_skip, search)
    else:
        table = _refreshed(store, namespace, cluster_id, cached, on_skip, search)
    _summaries.pop(cache_key, None)
    _summaries[cache_key] = table  # the most recently used last
    while len(_summaries) > SUMMARY_CACHE_SIZE:
        del _summaries[next(iter(_summaries))]
    return table


def _refreshed(
    store: ResultStore, namespace: str, cluster_id: str, cached: pa.Table, on_skip: Callable[[str], None], search: bool
) -> pa.Table:
    """``cached`` rows brought up to the folder's files now: rows of removed files dropped, new files read."""
    keys = {key.rsplit("/", 1)[-1].removesuffix(".parquet"): key for key in store.result_keys(namespace, cluster_id)}
    known = set(cached.column("run_id").to_pylist())
    if len(keys.keys() - known) > DUCKDB_ABOVE:
        return _read_summaries(store, namespace, cluster_id, on_skip, search)
    if known - keys.keys():
        cached = cached.filter(pc.is_in(cached.column("run_id"), pa.array(sorted(keys), pa.string())))
    new = _summaries_of_files(store, [keys[run_id] for run_id in sorted(keys.keys() - known)], on_skip, search)
    return pa.concat_tables([cached, new]) if new.num_rows else cached


def _read_summaries(
    store: ResultStore, namespace: str, cluster_id: str, on_skip: Callable[[str], None], search: bool
) -> pa.Table:
    """The summary rows of every result file of the configuration, read afresh.

    On local disk, above ``DUCKDB_ABOVE`` files, one DuckDB scan reads just these columns from every
    file (multi-threaded, ~4x faster than opening each file from Python; columns a file predates read
    as nulls); a short history is read file by file instead, since importing and starting DuckDB
    (~0.45 s in a fresh process) costs more than reading a few dozen small files, and every execution
    reads its configuration's history once (drift). On S3, or when a file is unreadable (empty,
    truncated, put there by hand), each result is read on its own and the unreadable ones are skipped
    with a warning through ``on_skip``, so one bad file never hides the history.
    """
    schema = SUMMARY_SCHEMA.append(SEARCH_COLUMN) if search else SUMMARY_SCHEMA
    prefix = store.lake.executions_prefix(namespace, cluster_id)
    if isinstance(store.storage, LocalStorage):
        folder = store.storage.path(prefix)
        files = sum(1 for _ in folder.glob("run_*.parquet"))
        if not files:
            return schema.empty_table()
    if isinstance(store.storage, LocalStorage) and files > DUCKDB_ABOVE:
        import duckdb

        pattern = str(folder / ("run_" + "?" * 16 + ".parquet"))
        source = f"read_parquet('{pattern.replace(chr(39), chr(39) * 2)}', union_by_name = true)"
        try:
            with duckdb.connect() as connection:
                connection.execute("SET TimeZone = 'UTC'")
                present = {row[0] for row in connection.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
                columns = ", ".join(
                    f'metrics."{name}" AS "{name}"'
                    if name in METRIC_FIELDS
                    else (f'"{name}"' if name in present else f'NULL AS "{name}"')
                    for name in schema.names
                )
                table = connection.sql(f"SELECT {columns} FROM {source}").to_arrow_table()
            return table.cast(schema)
        except duckdb.Error:
            pass  # some file is not a result: read them one by one below
    return _summaries_of_files(store, store.result_keys(namespace, cluster_id), on_skip, search)


def _summaries_of_files(
    store: ResultStore, keys: Sequence[str], on_skip: Callable[[str], None], search: bool
) -> pa.Table:
    tables = []
    for key in keys:
        try:
            tables.append(_summary_of(read_parquet(store.storage, key), search))
        except (pa.ArrowException, OSError, KeyError, ValueError) as error:
            on_skip(
                f"skipped {store.storage.uri(key)}: not a readable ExecutionResult ({type(error).__name__}: {error}); "
                "move it away."
            )
    schema = SUMMARY_SCHEMA.append(SEARCH_COLUMN) if search else SUMMARY_SCHEMA
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _search_mask(table: pa.Table, text: str) -> pa.Array:
    """Rows whose error message, or one of whose clusters' label or keywords, contains ``text`` (any case)."""

    def hits(values: pa.Array) -> np.ndarray:
        return pc.fill_null(pc.match_substring(values, text, ignore_case=True), False).to_numpy(zero_copy_only=False)

    found = hits(table.column("error_message").combine_chunks())
    centroids = table.column("centroids").combine_chunks()
    flat = pc.list_flatten(centroids)
    if len(flat):
        owner = pc.list_parent_indices(centroids).to_numpy()
        keywords = pc.struct_field(flat, "keywords")
        keyword_hits = np.zeros(len(flat), dtype=bool)
        keyword_hits[pc.list_parent_indices(keywords).to_numpy()[hits(pc.list_flatten(keywords))]] = True
        found[owner[hits(pc.struct_field(flat, "label")) | keyword_hits]] = True
    return pa.array(found)


def page_stats(table: pa.Table) -> dict[str, object]:
    """Counts by status and the mean silhouette of the executions in ``table`` (those that have one)."""
    by_status = {row["values"]: row["counts"] for row in pc.value_counts(table.column("status")).to_pylist()}
    silhouettes = table.column("silhouette_score")
    mean = pc.mean(silhouettes).as_py() if table.num_rows else None
    return {
        "by_status": {status: by_status[status] for status in STATUSES if status in by_status},
        "mean_silhouette": None if mean is None else round(mean, 6),
        "with_metrics": table.num_rows - silhouettes.null_count,
    }


def list_history(
    store: ResultStore,
    namespace: str,
    cluster_id: str,
    query: HistoryQuery,
    *,
    extra: Sequence[ExecutionResult] = (),
    include_total: bool = False,
    on_skip: Callable[[str], None] = log.warning,
) -> HistoryPage:
    """A page of executions matching ``query``, merged with in-flight ``extra`` results; ``on_skip``
    receives a warning for each result file that cannot be read (it is left out)."""
    table = summary_table(store, namespace, cluster_id, on_skip, search=query.search is not None)
    stored = set(table["run_id"].to_pylist())
    in_flight = {r.run_id: r for r in extra if r.run_id not in stored}
    if in_flight:
        rows = pa.concat_tables(r.to_table() for r in in_flight.values())
        table = pa.concat_tables([table, _summary_of(rows, query.search is not None)])
    condition = query.conditions()
    if condition is not None:
        table = table.filter(to_expression(condition, SUMMARY_SCHEMA, "executions"))
    if query.search is not None:
        table = table.filter(_search_mask(table, query.search.strip()))
    total, stats = (table.num_rows, page_stats(table)) if include_total else (None, None)
    if table.num_rows == 0:
        return HistoryPage([], None, total, stats)
    order = "descending" if query.descending else "ascending"
    run_ids = table.sort_by([(query.sort_by, order), ("run_id", order)])["run_id"].to_pylist()
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
    return HistoryPage(results, encode_cursor(page_ids[-1]) if has_more and page_ids else None, total, stats)


def latest_completed(store: ResultStore, namespace: str, cluster_id: str) -> ExecutionResult | None:
    """The newest completed execution of a configuration (by ``created_at``), or None."""
    page = list_history(store, namespace, cluster_id, HistoryQuery(statuses=["completed"], limit=1))
    return page.results[0] if page.results else None
