from datetime import UTC, datetime, timedelta

import pytest

from cluster_pipeline.core.history import HistoryQuery, HistoryQueryError, list_history
from cluster_pipeline.core.results import ExecutionResult, ResultStore

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
        error_message="boom" if status == "failed" else None,
    )


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
