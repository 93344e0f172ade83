"""Topics over time: the time column, the bucket size from the span, counts and shares."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.topics.over_time import granularity, time_column, topics_over_time


def test_the_time_column_is_configured_or_the_first_timestamp_or_date():
    schema = pa.schema(
        [("document_id", pa.string()), ("when", pa.string()), ("day", pa.date32()), ("at", pa.timestamp("s"))]
    )
    assert time_column(schema, None) == "day"
    assert time_column(schema, "when") == "when"  # a configured text column is parsed
    assert time_column(pa.schema([("document_id", pa.string())]), None) is None
    with pytest.raises(ConfigurationError, match="time_column 'published' is not a metadata column"):
        time_column(schema, "published")


def test_buckets_follow_the_span():
    start = pd.Timestamp("2024-01-01")
    assert granularity(start, start + pd.Timedelta(days=90)) == "day"
    assert granularity(start, start + pd.Timedelta(days=400)) == "week"
    assert granularity(start, start + pd.Timedelta(days=800)) == "month"


def test_counts_and_shares_per_bucket_and_cluster():
    times = pd.Series(["2024-03-04T10:00:00Z", "2024-03-05", "2024-03-12", None, "2024-07-01", "not a time"])
    labels = np.array([0, 1, 0, 1, -1, 0])
    found = topics_over_time(times, labels, 2, "published")
    table = found.table.to_pandas()
    assert found.summary["granularity"] == "week" and found.summary["buckets"] == 18
    assert (found.summary["documents_with_time"], found.summary["documents_without_time"]) == (4, 2)
    first = table[table.bucket == pd.Timestamp("2024-03-04")].set_index("cluster_index")  # a Monday
    assert first["count"].to_dict() == {-1: 0, 0: 1, 1: 1} and first.share.to_dict() == {-1: 0.0, 0: 0.5, 1: 0.5}
    assert table.groupby("bucket")["count"].sum().sum() == 4
    empty = table[table.bucket == pd.Timestamp("2024-04-01")]
    assert (empty["count"] == 0).all() and (empty.share == 0).all()
    assert topics_over_time(pd.Series([None, None]), np.array([0, 1]), 2, "published") is None
