"""Topics over time (BERTopic's ``topics_over_time``): documents per cluster per time bucket.

The time of a document is the configuration's ``time_column``, or else the collection's first
timestamp or date column (read from the Parquet schema, so a text column that looks like a date is
never guessed). Buckets are days, weeks (starting Monday) or months, chosen from the span so a
chart has at most about a hundred of them: up to 90 days by day, up to two years by week, beyond by
month. For every bucket and cluster (noise included, as cluster index -1) the table holds the count
and the cluster's share of the bucket's documents; buckets and clusters with no documents are rows
of 0 (a bucket's shares sum to 1, or to 0 when it is empty). Documents without a time are counted
and left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.store.results import cluster_name

DAY_SPAN_DAYS = 90
WEEK_SPAN_DAYS = 730
PERIODS = {"day": "D", "week": "W", "month": "M"}  # pandas' weeks end on Sunday: buckets start on Monday
OVER_TIME_SCHEMA = pa.schema(
    [
        pa.field("bucket", pa.timestamp("us"), nullable=False),  # the bucket's first instant, UTC
        pa.field("cluster_id", pa.string()),  # null for noise
        pa.field("cluster_index", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("share", pa.float64(), nullable=False),  # of the bucket's documents with a time
    ]
)


def time_column(schema: pa.Schema, configured: str | None) -> str | None:
    """The column topics over time are counted by: ``configured`` (which must exist), else the first
    timestamp or date column of ``schema``; None when there is none."""
    if configured:
        if configured not in schema.names:
            raise ConfigurationError(
                f"time_column {configured!r} is not a metadata column of the collection "
                f"(it has: {', '.join(schema.names) or 'none'}); set time_column to one of them, "
                "or leave it unset to use the first timestamp or date column."
            )
        return configured
    for field in schema:
        if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            return field.name
    return None


def granularity(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``day``, ``week`` or ``month``, from the span (see the module doc)."""
    days = (end - start).total_seconds() / 86_400
    if days <= DAY_SPAN_DAYS:
        return "day"
    return "week" if days <= WEEK_SPAN_DAYS else "month"


@dataclass(frozen=True)
class TopicsOverTime:
    """The table (``OVER_TIME_SCHEMA``) and the summary stored in the ExecutionResult."""

    table: pa.Table
    summary: dict[str, Any]


def topics_over_time(values: pd.Series, labels: np.ndarray, num_clusters: int, column: str) -> TopicsOverTime | None:
    """Counts and shares per bucket and cluster of the documents' times ``values`` (any type
    ``pandas.to_datetime`` reads; naive times are taken as UTC); None when no document has a time."""
    series = pd.Series(values).reset_index(drop=True)
    try:
        # text is parsed value by value ("mixed"): ISO dates with and without a time or zone side by side
        mixed = {} if pd.api.types.is_datetime64_any_dtype(series) else {"format": "mixed"}
        times = pd.to_datetime(series, utc=True, errors="coerce", **mixed)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"time_column {column!r} does not hold times ({error}); name a timestamp column."
        ) from None
    known = times.notna().to_numpy()
    if not known.any():
        return None
    times = times[known].dt.tz_convert("UTC").dt.tz_localize(None)
    unit = granularity(times.min(), times.max())
    buckets = times.dt.to_period(PERIODS[unit]).dt.start_time
    clusters = np.where(np.asarray(labels)[known] >= 0, np.asarray(labels)[known], -1)
    counts = pd.crosstab(buckets.to_numpy(), clusters)
    everything = pd.period_range(times.min(), times.max(), freq=PERIODS[unit]).start_time
    indices = ([-1] if (clusters < 0).any() else []) + list(range(num_clusters))
    counts = counts.reindex(index=everything, columns=indices, fill_value=0)
    totals = counts.sum(axis=1).to_numpy()
    shares = counts.to_numpy() / np.maximum(totals, 1)[:, None]
    grid_buckets = np.repeat(counts.index.to_numpy(), len(indices))
    grid_clusters = np.tile(np.array(indices, dtype=np.int32), len(counts))
    table = pa.table(
        {
            "bucket": pa.array(grid_buckets, pa.timestamp("us")),
            "cluster_id": pa.array([cluster_name(c) if c >= 0 else None for c in grid_clusters], pa.string()),
            "cluster_index": pa.array(grid_clusters),
            "count": pa.array(counts.to_numpy().ravel().astype(np.int64)),
            "share": pa.array(shares.ravel()),
        },
        schema=OVER_TIME_SCHEMA,
    )
    summary = {
        "column": column,
        "granularity": unit,
        "start": everything[0].isoformat(),
        "end": everything[-1].isoformat(),
        "buckets": len(everything),
        "documents_with_time": int(known.sum()),
        "documents_without_time": int((~known).sum()),
    }
    return TopicsOverTime(table, summary)


def shares_by_cluster(table: pa.Table) -> tuple[list[pd.Timestamp], dict[int, np.ndarray]]:
    """The buckets and, per cluster index, its share in each (what the picture draws)."""
    frame = table.to_pandas()
    pivot = frame.pivot(index="bucket", columns="cluster_index", values="share").sort_index()
    return list(pivot.index), {int(c): pivot[c].to_numpy() for c in pivot.columns}
