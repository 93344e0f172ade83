from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import FilterError
from cluster_pipeline.core.store.filters import parse_filter
from cluster_pipeline.core.store.history import HistoryQuery, HistoryQueryError, list_history
from cluster_pipeline.core.store.results import Centroid, ExecutionResult, ResultStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make(i: int, status="completed", clusters=3, silhouette=0.5) -> ExecutionResult:
    completed = status in ("completed", "failed")
    return ExecutionResult(
        run_id=f"run_{i:016x}",
        cluster_id="clust_aaaaaaaaaa",
        status=status,
        num_clusters=clusters if status == "completed" else 0,
        num_points=100,
        created_at=T0 + timedelta(minutes=i),
        completed_at=T0 + timedelta(minutes=i, seconds=30) if completed else None,
        metrics={
            "silhouette_score": silhouette,
            "davies_bouldin_index": 1.0,
            "calinski_harabasz_score": 10.0,
            "description": "Good clustering quality",
        }
        if status == "completed"
        else None,
        error_message="boom: NaN values in embeddings" if status == "failed" else None,
        centroids=[Centroid("cl_0", 100, "Rocket / Space", "Space.", ["rocket", "orbit"] if i % 2 else ["launch"])]
        if status == "completed"
        else None,
        algorithm="kmeans" if i < 5 else "hdbscan",
    )


@pytest.fixture(autouse=True, params=["duckdb_scan", "file_by_file"])
def scan(request, monkeypatch):
    """Every listing test on both readers: DuckDB's scan (long histories) and file by file (short ones)."""
    monkeypatch.setattr(
        "cluster_pipeline.core.store.history.DUCKDB_ABOVE", 0 if request.param == "duckdb_scan" else 10**9
    )
    return request.param


@pytest.fixture
def store(lake):
    store = ResultStore(lake)
    for i in range(10):
        store.write(make(i, clusters=2 + i % 3, silhouette=i / 10))
    store.write(make(10, status="failed"))
    return store


def run_ids(page):
    return [int(r.run_id[4:], 16) for r in page.results]


def test_newest_first_with_limit_offset_and_total(store):
    page = list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(limit=3), include_total=True)
    assert run_ids(page) == [10, 9, 8] and page.total == 11 and page.next_cursor
    page = list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(limit=3, offset=9))
    assert run_ids(page) == [1, 0] and page.next_cursor is None


def test_cursor_pages_through_everything_once(store):
    seen, cursor = [], None
    while True:
        page = list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(limit=4, cursor=cursor))
        seen += run_ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(10, -1, -1))


def test_filters_and_metric_sort(store):
    q = HistoryQuery(statuses=["completed"], min_clusters=3, min_silhouette=0.3, sort_by="silhouette_score")
    page = list_history(store, "default", "clust_aaaaaaaaaa", q)
    assert run_ids(page) == [8, 7, 5, 4]
    q = HistoryQuery(created_after=T0 + timedelta(minutes=8), statuses=["failed"])
    assert run_ids(list_history(store, "default", "clust_aaaaaaaaaa", q)) == [10]
    q = HistoryQuery(created_before=T0 + timedelta(minutes=2), descending=False)
    assert run_ids(list_history(store, "default", "clust_aaaaaaaaaa", q)) == [0, 1]


def test_in_flight_executions_are_merged(store):
    pending = make(20, status="pending")
    page = list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(limit=2), extra=[pending])
    assert page.results[0].status == "pending" and run_ids(page) == [20, 10]
    q = HistoryQuery(statuses=["pending", "processing"])
    assert run_ids(list_history(store, "default", "clust_aaaaaaaaaa", q, extra=[pending])) == [20]


def test_bad_queries(store):
    with pytest.raises(HistoryQueryError, match="Cannot sort by 'speed'"):
        HistoryQuery(sort_by="speed")
    with pytest.raises(HistoryQueryError, match="Unknown status 'done'"):
        HistoryQuery(statuses=["done"])
    with pytest.raises(HistoryQueryError, match="Invalid cursor"):
        list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(cursor="!!!"))


def test_empty_history(lake):
    page = list_history(ResultStore(lake), "default", "clust_bbbbbbbbbb", HistoryQuery(), include_total=True)
    assert page.results == [] and page.total == 0


def listed(store, include_total=False, **query):
    return list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(**query), include_total=include_total)


def test_or_and_not_over_result_fields(store):
    either = parse_filter(
        {
            "OR": [
                {"field": "status", "operator": "=", "value": "failed"},
                {"field": "silhouette_score", "operator": ">=", "value": 0.8},
            ]
        }
    )
    assert run_ids(listed(store, filter=either)) == [10, 9, 8]
    neither = parse_filter({"NOT": {"field": "algorithm", "operator": "in", "value": ["hdbscan"]}})
    assert run_ids(listed(store, filter=neither)) == [4, 3, 2, 1, 0]
    # the listing's own options are ANDed to the filter
    assert run_ids(listed(store, filter=neither, min_silhouette=0.3)) == [4, 3]
    with pytest.raises(FilterError, match="unknown field 'silhouette'.*did you mean 'silhouette_score'"):
        listed(store, filter=parse_filter({"field": "silhouette", "operator": ">", "value": 0.5}))
    with pytest.raises(FilterError, match="'num_clusters' holds integer values"):
        listed(store, filter=parse_filter({"field": "num_clusters", "operator": "=", "value": "three"}))


def test_search_labels_keywords_and_errors_in_any_case(store):
    assert run_ids(listed(store, search="ORBIT")) == [9, 7, 5, 3, 1]  # a keyword of the odd runs
    assert run_ids(listed(store, search="rocket /")) == list(range(9, -1, -1))  # every completed run's label
    assert run_ids(listed(store, search="nan values")) == [10]  # the failed run's error
    assert run_ids(listed(store, search="launch", statuses=["completed"], limit=2)) == [8, 6]
    assert listed(store, search="nothing like this").results == []
    with pytest.raises(HistoryQueryError, match="search needs some text"):
        HistoryQuery(search="  ")


def test_stats_describe_everything_matched_not_just_the_page(store):
    page = listed(store, include_total=True, limit=2)
    assert page.total == 11 and len(page.results) == 2
    assert page.stats == {"by_status": {"completed": 10, "failed": 1}, "mean_silhouette": 0.45, "with_metrics": 10}
    page = listed(store, include_total=True, search="orbit")
    assert page.stats == {"by_status": {"completed": 5}, "mean_silhouette": 0.5, "with_metrics": 5}
    page = listed(store, include_total=True, statuses=["pending"])
    assert page.total == 0 and page.stats == {"by_status": {}, "mean_silhouette": None, "with_metrics": 0}


@pytest.mark.parametrize("unreadable_neighbour", [False, True])
def test_results_written_before_the_new_fields_are_listed(lake, store, unreadable_neighbour):
    """A result file without configuration_version, engine (written by an older version) still lists,
    on the DuckDB scan and on the file-by-file fallback."""
    old = make(30, silhouette=0.95).to_table().drop_columns(["configuration_version", "engine", "selection"])
    pq.write_table(old, lake.storage.path(store.result_key(make(30))))
    if unreadable_neighbour:  # forces the file-by-file path
        lake.storage.path(store.result_key(make(31))).write_bytes(b"not parquet")
    skipped = []
    page = list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(limit=1), on_skip=skipped.append)
    assert run_ids(page) == [30] and len(skipped) == int(unreadable_neighbour)
    high = parse_filter({"field": "silhouette_score", "operator": ">", "value": 0.9})
    assert run_ids(listed(store, filter=high, search="orbit")) == []
    assert run_ids(listed(store, filter=high, search="launch")) == [30]


def test_a_process_reads_each_result_once_and_sees_new_and_removed_ones(store, lake):
    assert listed(store, include_total=True).total == 11
    store.write(make(11))
    lake.storage.delete(lake.execution_key("default", "clust_aaaaaaaaaa", "run_0000000000000003"))
    page = listed(store, include_total=True)
    assert page.total == 11 and 11 in run_ids(page) and 3 not in run_ids(listed(store, limit=20))
    (lake.storage.path(lake.execution_key("default", "clust_aaaaaaaaaa", "run_000000000000000c"))).write_bytes(b"")
    warnings = []
    list_history(store, "default", "clust_aaaaaaaaaa", HistoryQuery(), on_skip=warnings.append)
    assert len(warnings) == 1 and "run_000000000000000c" in warnings[0]  # an unreadable file is never remembered
