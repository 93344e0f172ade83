"""What choosing what to cluster gives and costs on real text: ``python -m benchmarks.choosing``.

AG News' test split (7,600 news texts in 4 topics, MiniLM-384, from ``../shared/datasets/`` or
``--data``) is ingested into a temporary lake and executed as a user would (``core.execution.execute``)
with, side by side against the same configuration without the option:

- ``sample_size``: k-means fitted on 1,000 documents (the others to the nearest centroid), and
  agglomerative (quadratic) on all 7,600 against a sample of 2,000 (the others to their nearest
  sampled document);
- ``filters``: k-means k=2 on the World and Sports documents only;
- ``attribute_based``: the four categories themselves as the clusters (their silhouette is what the
  true topics score);
- ``centroid_method``: median and medoid against mean (what they add to an execution).

Printed: adjusted Rand index against the categories, silhouette, documents clustered, seconds
(median of ``--repeat``; the clustering is the same each time) and the fit's seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.quality import AG_NEWS

WORLD_SPORTS = {"field": "category", "operator": "in", "value": ["World", "Sports"]}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("kmeans k=4", {"parameters": {"n_clusters": 4}}),
    ("kmeans k=4, sample_size 1,000", {"parameters": {"n_clusters": 4}, "sample_size": 1_000}),
    ("kmeans k=4, centroid_method median", {"parameters": {"n_clusters": 4}, "centroid_method": "median"}),
    ("kmeans k=4, centroid_method medoid", {"parameters": {"n_clusters": 4}, "centroid_method": "medoid"}),
    ("agglomerative k=4", {"algorithm": "agglomerative", "parameters": {"n_clusters": 4}}),
    (
        "agglomerative k=4, sample_size 2,000",
        {"algorithm": "agglomerative", "parameters": {"n_clusters": 4}, "sample_size": 2_000},
    ),
    ("kmeans k=2, filter World or Sports", {"parameters": {"n_clusters": 2}, "filters": WORLD_SPORTS}),
    ("attribute_based category", {"algorithm": "attribute_based", "parameters": {"attributes": ["category"]}}),
]


def measure(data: Path, repeat: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq
    from sklearn.metrics import adjusted_rand_score

    from cluster_pipeline.core.config.model import parse_config
    from cluster_pipeline.core.pipeline.execution import execute
    from cluster_pipeline.core.store.collections import CollectionStore
    from cluster_pipeline.core.store.lake import Lake
    from cluster_pipeline.core.store.results import ResultStore

    table = pq.read_table(data)
    truth = dict(zip(table.column("document_id").to_pylist(), table.column("category").to_pylist(), strict=True))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake.local(Path(folder) / "lake")
        CollectionStore(lake).ingest("default", "ag", table)
        for number, (name, fields) in enumerate(CASES):
            seconds, fits = [], []
            for attempt in range(repeat):
                config = parse_config({"collection": "ag", **fields})
                run_id = f"run_{number:08x}{attempt:08x}"
                started = time.perf_counter()
                result = execute(lake, config, run_id)
                seconds.append(time.perf_counter() - started)
                fits.append(result.timings["fit"])
            assignments = ResultStore(lake).read_assignments("default", config.cluster_id, run_id).to_pandas()
            rows.append(
                {
                    "case": name,
                    "ari": adjusted_rand_score(assignments.document_id.map(truth), assignments.cluster_index),
                    "silhouette": (result.metrics or {}).get("silhouette_score"),
                    "documents": result.num_points,
                    "seconds": statistics.median(seconds),
                    "fit_seconds": statistics.median(fits),
                }
            )
            print(f"{name}: done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=AG_NEWS, help="AG News test split with MiniLM embeddings")
    parser.add_argument("--repeat", type=int, default=3, help="executions per case (seconds: their median)")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data PATH to the AG News parquet file.")
    rows = measure(args.data, args.repeat)
    print("\n| AG News (7,600 × 384) | ARI | silhouette | documents | seconds (fit) |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['case']} | {row['ari']:.2f} | {row['silhouette']:.3f} | {row['documents']:,} | "
            f"{row['seconds']:.1f} ({row['fit_seconds']:.1f}) |"
        )


if __name__ == "__main__":
    main()
