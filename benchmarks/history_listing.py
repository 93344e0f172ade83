"""How fast is `executions list` on a long history? Writes N ExecutionResults (default 5,000) of one
configuration to a temporary lake, then times a filtered, sorted page with its total, an OR/NOT
filter with page stats, and a text search over labels, keywords and errors, against the baseline of
reading every result file whole (what a naive listing does).

    python benchmarks/history_listing.py [--executions 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta

from cluster_pipeline.core.store.filters import parse_filter
from cluster_pipeline.core.store.history import HistoryQuery, list_history
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import Centroid, ExecutionResult, ResultStore

CLUSTER_ID = "clust_bench00000000"


def write_history(store: ResultStore, count: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        k = 2 + i % 9
        store.write(
            ExecutionResult(
                run_id=f"run_{i:016x}",
                cluster_id=CLUSTER_ID,
                status="failed" if i % 50 == 0 else "completed",
                num_clusters=0 if i % 50 == 0 else k,
                num_points=10_000 + i,
                created_at=start + timedelta(minutes=i),
                completed_at=start + timedelta(minutes=i, seconds=40),
                metrics=None
                if i % 50 == 0
                else {
                    "silhouette_score": (i % 97) / 100,
                    "davies_bouldin_index": 1.2,
                    "calinski_harabasz_score": 300.0,
                    "description": "Fair clustering quality",
                },
                centroids=None
                if i % 50 == 0
                else [Centroid(f"cl_{c}", 100, f"Label {c}", "A summary.", ["a", "b", f"w{i % 13}"]) for c in range(k)],
                error_message="Insufficient documents for clustering" if i % 50 == 0 else None,
            )
        )


def timed(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        store = ResultStore(Lake.local(root))
        started = time.perf_counter()
        write_history(store, args.executions)
        print(f"wrote {args.executions} executions in {time.perf_counter() - started:.1f} s")
        query = HistoryQuery(
            statuses=["completed"], min_clusters=4, min_silhouette=0.5, sort_by="silhouette_score", limit=20
        )
        page = list_history(store, "default", CLUSTER_ID, query, include_total=True)
        listing = timed(lambda: list_history(store, "default", CLUSTER_ID, query, include_total=True))
        newest = timed(lambda: list_history(store, "default", CLUSTER_ID, HistoryQuery(limit=20)))
        either = parse_filter(
            {
                "OR": [
                    {"field": "status", "operator": "=", "value": "failed"},
                    {"NOT": {"field": "num_clusters", "operator": "in", "value": [2, 3, 4]}},
                ]
            }
        )
        or_not = timed(
            lambda: list_history(store, "default", CLUSTER_ID, HistoryQuery(filter=either), include_total=True)
        )
        search = timed(
            lambda: list_history(store, "default", CLUSTER_ID, HistoryQuery(search="W7"), include_total=True)
        )
        naive = timed(lambda: store.list("default", CLUSTER_ID), repeat=1)
        print(f"{'case':<52} {'seconds':>8} {'vs baseline':>12}")
        print(f"{'baseline: read every ExecutionResult whole':<52} {naive:>8.3f} {1.0:>11.2f}x")
        print(f"{'filtered + sorted by silhouette, page of 20, total':<52} {listing:>8.3f} {listing / naive:>11.2f}x")
        print(f"{'newest first, page of 20':<52} {newest:>8.3f} {newest / naive:>11.2f}x")
        print(f"{'OR/NOT filter, page of 20, total and stats':<52} {or_not:>8.3f} {or_not / naive:>11.2f}x")
        print(f"{'search in labels, keywords, errors, total, stats':<52} {search:>8.3f} {search / naive:>11.2f}x")
        print(f"(the filtered listing matched {page.total} of {args.executions} executions)")


if __name__ == "__main__":
    main()
