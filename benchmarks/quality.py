"""Clustering quality on real text: ``python -m benchmarks.quality`` (about four minutes).

AG News' test split (7,600 news texts in 4 topics, MiniLM-384 embeddings, from
``../shared/datasets/`` or ``--data``) is ingested into a temporary lake and executed as a user
would (``core.execution.execute``: load, fit, metrics, labels, pictures, write) with:

- kmeans, k=4 (the true number of topics) and ``n_clusters: "auto"``;
- hdbscan and dbscan with default parameters (UMAP to 5 dimensions, min_cluster_size from N);
- hdbscan with UMAP fitted on a seeded third of the documents and the rest placed (the sampled path
  that collections above ``reduction.fit_sample_size`` take), to show what sampling costs;
- hdbscan after PCA to 10 dimensions (the previous default), same min_cluster_size.

Printed side by side: V-measure and adjusted Rand index against the topics (noise is a label of its
own), noise share, clusters, the largest cluster's share, mean NPMI coherence (gensim's ``c_npmi``)
and topic diversity of the clusters' top-10 words, and seconds (median of ``--repeat`` executions;
the clustering is the same each time), with BERTopic's figures on the same data as the reference
(measured with gensim for issue 24), then every target of issue 24 and whether it holds. ``--cases``
runs only the cases whose name contains one of its words, without the extras below. Then the automatic-k curve; HDBSCAN's default ``min_cluster_size`` rule against a
fixed share of N on seeded subsets of 2,000 and 4,000 documents; and UMAP's cost in a fresh process,
ours (``core.reduction``) against umap-learn called as BERTopic calls it. numba compiles UMAP once
per machine; a warm-up run before timing pays that and its seconds are printed apart. Results also
go to ``benchmarks/out/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
AG_NEWS = ROOT.parent / "shared" / "datasets" / "ag_news_test_minilm.parquet"
SAMPLED_FIT = 2_500  # a third of AG News
SUBSETS = (2_000, 4_000)

# BERTopic 0.17.4 on AG News with stop words removed, measured with gensim 4.4 (issue 24):
# (system, clusters, V-measure, c_npmi, diversity)
BERTOPIC = [
    ("BERTopic, KMeans(4)", 4, 0.615, 0.038, 0.775),
    ("BERTopic default (UMAP + HDBSCAN, 30 % noise)", 149, 0.290, 0.086, 0.853),
]

CASES: list[tuple[str, dict[str, Any]]] = [
    ("kmeans k=4", {"parameters": {"n_clusters": 4}}),
    ("kmeans n_clusters=auto", {"parameters": {"n_clusters": "auto"}}),
    ("hdbscan default (UMAP-5)", {"algorithm": "hdbscan"}),
    ("dbscan default (UMAP-5)", {"algorithm": "dbscan"}),
    (
        f"hdbscan, UMAP fitted on {SAMPLED_FIT:,} of 7,600",
        {"algorithm": "hdbscan", "reduction": {"method": "umap", "fit_sample_size": SAMPLED_FIT}},
    ),
    ("hdbscan, PCA-10", {"algorithm": "hdbscan", "reduction": {"method": "pca", "n_components": 10}}),
]


def measure(data: Path, repeat: int, only: list[str] | None = None) -> dict[str, Any]:
    """Ingest ``data`` into a temporary lake, run every case (``only``: those whose name holds one of
    these words, and no extras) ``repeat`` times, return the report."""
    import pyarrow.parquet as pq
    from sklearn.metrics import adjusted_rand_score, v_measure_score

    from cluster_pipeline.core.config.model import ClusterConfig
    from cluster_pipeline.core.fit.reduction import umap_coordinates
    from cluster_pipeline.core.pipeline.execution import execute
    from cluster_pipeline.core.store.collections import CollectionStore
    from cluster_pipeline.core.store.lake import Lake
    from cluster_pipeline.core.store.results import ResultStore

    table = pq.read_table(data)
    truth = dict(zip(table.column("document_id").to_pylist(), table.column("category").to_pylist(), strict=True))
    report: dict[str, Any] = {"data": str(data), "documents": table.num_rows, "repeat": repeat, "cases": []}
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake.local(Path(folder) / "lake")
        CollectionStore(lake).ingest("default", "ag", table)
        started = time.perf_counter()
        vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
        umap_coordinates(vectors[:500])  # numba: compile once on this machine, or load the cache
        report["umap_warmup_seconds"] = round(time.perf_counter() - started, 2)
        for number, (name, fields) in enumerate(CASES):
            if only and not any(word in name for word in only):
                continue
            seconds, fits, coherence, outcome = [], [], [], None
            for attempt in range(repeat):
                config = ClusterConfig(collection="ag", **fields)
                run_id = f"run_{number:08x}{attempt:08x}"
                started = time.perf_counter()
                result = execute(lake, config, run_id)
                seconds.append(time.perf_counter() - started)
                fits.append(result.timings["fit"])
                coherence.append(result.timings["coherence"])
                assignments = ResultStore(lake).read_assignments("default", config.cluster_id, run_id).to_pandas()
                topics, clusters = assignments.document_id.map(truth), assignments.cluster_index
                found = {
                    "v_measure": round(float(v_measure_score(topics, clusters)), 3),
                    "ari": round(float(adjusted_rand_score(topics, clusters)), 3),
                    "noise": round(result.num_noise / result.num_points, 3),
                    "clusters": result.num_clusters,
                    "largest": round(max(c.num_members for c in result.centroids or []) / result.num_points, 3),
                    "c_npmi": round(result.metrics["coherence_npmi"], 3),
                    "diversity": round(result.metrics["topic_diversity"], 3),
                    "top3": [c.keywords[:3] for c in result.centroids or []],
                    "labels": [c.label for c in result.centroids or []][:6],
                    "parameters": result.parameters,
                    "auto_k": {k: v for k, v in (result.auto_k or {}).items() if k != "seconds"} or None,
                }
                if outcome is not None and outcome != found:
                    raise RuntimeError(f"{name}: the same configuration gave a different clustering")
                outcome = found
            assert outcome is not None
            report["cases"].append(
                {
                    "case": name,
                    **outcome,
                    "seconds": round(statistics.median(seconds), 2),
                    "fit_seconds": round(statistics.median(fits), 2),
                    "coherence_seconds": round(statistics.median(coherence), 2),
                }
            )
            print(f"{name}: done", flush=True)
        if only:
            return report
        report["min_cluster_size_rule"] = _rule_on_subsets(lake, table, truth)
    for implementation in ("ours", "umap-learn"):
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.quality", "--umap-child", implementation, "--data", str(data)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        report.setdefault("umap_fresh_process_seconds", {})[implementation] = json.loads(child.stdout.splitlines()[-1])
    return report


def _rule_on_subsets(lake: Any, table: Any, truth: dict[str, str]) -> list[dict[str, Any]]:
    """HDBSCAN after UMAP on seeded subsets: min_cluster_size by our rule against 0.5 % of N."""
    import numpy as np

    from cluster_pipeline.core.config.model import ClusterConfig
    from cluster_pipeline.core.fit.registry import default_min_cluster_size
    from cluster_pipeline.core.pipeline.execution import execute
    from cluster_pipeline.core.store.collections import CollectionStore

    rows = []
    for n in (*SUBSETS, table.num_rows):
        collection = f"ag{n}"
        if n < table.num_rows:
            picked = np.sort(np.random.default_rng(n).choice(table.num_rows, n, replace=False))
            CollectionStore(lake).ingest("default", collection, table.take(picked))
        else:
            collection = "ag"
        for rule, size in (("sqrt(N)/2", default_min_cluster_size(n)), ("0.5 % of N", max(5, round(0.005 * n)))):
            config = ClusterConfig(collection=collection, algorithm="hdbscan", parameters={"min_cluster_size": size})
            result = execute(lake, config, f"run_{n:08x}{size:08x}")
            rows.append(
                {
                    "documents": n,
                    "rule": rule,
                    "min_cluster_size": size,
                    "clusters": result.num_clusters,
                    "noise": round(result.num_noise / result.num_points, 3),
                }
            )
    return rows


def umap_child(implementation: str, data: Path) -> None:
    """In this fresh process: import and run UMAP on AG News (5 dimensions, cosine, seed 0); print seconds."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(data, columns=["embedding"])
    X = table.column(0).combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1).astype(np.float32)
    started = time.perf_counter()
    if implementation == "ours":
        from cluster_pipeline.core.fit.reduction import umap_coordinates

        umap_coordinates(X)
    else:
        import umap

        umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0).fit_transform(X)
    print(json.dumps(round(time.perf_counter() - started, 2)))


def table(report: dict[str, Any]) -> str:
    lines = [
        "| AG News (7,600 × 384) | V-measure | c_npmi | diversity | ARI | noise | clusters | largest | seconds (fit) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in report["cases"]:
        lines.append(
            f"| {case['case']} | {case['v_measure']:.2f} | {case['c_npmi']:.3f} | {case['diversity']:.2f} | "
            f"{case['ari']:.2f} | {case['noise'] * 100:.0f} % | {case['clusters']} | {case['largest'] * 100:.0f} % | "
            f"{case['seconds']:.1f} ({case['fit_seconds']:.1f}) |"
        )
    for system, clusters, v_measure, c_npmi, diversity in BERTOPIC:
        lines.append(f"| {system} | {v_measure:.2f} | {c_npmi:.3f} | {diversity:.2f} | - | - | {clusters} | - | - |")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[tuple[str, bool]]:
    """Issue 24's targets on the cases measured, each with whether it holds."""
    cases = {case["case"]: case for case in report["cases"]}
    checks = []
    if hdbscan := cases.get("hdbscan default (UMAP-5)"):
        checks += [
            (f"hdbscan default: largest cluster {hdbscan['largest'] * 100:.0f} % <= 40 %", hdbscan["largest"] <= 0.40),
            (f"hdbscan default: noise {hdbscan['noise'] * 100:.0f} % <= 20 %", hdbscan["noise"] <= 0.20),
            (f"hdbscan default: V-measure {hdbscan['v_measure']:.3f} >= 0.45", hdbscan["v_measure"] >= 0.45),
            (f"hdbscan default: {hdbscan['clusters']} clusters >= 4", hdbscan["clusters"] >= 4),
        ]
    if kmeans := cases.get("kmeans k=4"):
        words = [word for top3 in kmeans["top3"] for word in top3]
        checks += [
            (f"kmeans k=4: c_npmi {kmeans['c_npmi']:.3f} >= 0.04 (BERTopic 0.038)", kmeans["c_npmi"] >= 0.04),
            (f"kmeans k=4: diversity {kmeans['diversity']:.2f} >= 0.9 (BERTopic 0.775)", kmeans["diversity"] >= 0.9),
            (f"kmeans k=4: V-measure {kmeans['v_measure']:.3f} >= 0.59", kmeans["v_measure"] >= 0.59),
            ("kmeans k=4: 'IBM' rather than 'Ibm' in the labels", "IBM" in words and "Ibm" not in words),
        ]
    if auto := cases.get("kmeans n_clusters=auto"):
        checks.append((f"kmeans n_clusters=auto: k = {auto['clusters']} within 3-6", 3 <= auto["clusters"] <= 6))
    for case in report["cases"]:
        tops = [{word.lower() for word in top3} for top3 in case["top3"]]
        most = max((sum(word in top for top in tops) for top3 in tops for word in top3), default=0)
        target = f"{case['case']}: no keyword in the top 3 of more than a third of the clusters (most: {most})"
        checks.append((target, most <= max(1, case["clusters"] / 3)))  # with 1-2 clusters, 1 is no repeat
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=AG_NEWS, help="AG News test split with MiniLM embeddings")
    parser.add_argument("--repeat", type=int, default=3, help="executions per case (seconds: their median)")
    parser.add_argument("--cases", nargs="+", help="only the cases whose name contains one of these words")
    parser.add_argument("--umap-child", choices=["ours", "umap-learn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.umap_child:
        umap_child(args.umap_child, args.data)
        return
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data PATH to the AG News parquet file.")
    report = measure(args.data, args.repeat, args.cases)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table(report))
    print("\nTargets (issue 24):")
    for target, holds in targets(report):
        print(f"  {'ok  ' if holds else 'MISS'} {target}")
    print(f"\nUMAP warm-up (numba compile or cache load): {report['umap_warmup_seconds']} s")
    for case in report["cases"]:
        print(f"{case['case']}: {' | '.join(case['labels'])}")
        if case["auto_k"]:
            curve = ", ".join(f"{k}: {v:.4f}" for k, v in case["auto_k"]["scores"].items())
            print(f"  silhouette by k (chose {case['auto_k']['chosen']}): {curve}")
    if "min_cluster_size_rule" not in report:
        return
    print("\nHDBSCAN after UMAP, min_cluster_size rule on seeded subsets:")
    for row in report["min_cluster_size_rule"]:
        print(
            f"  {row['documents']:>5,} documents, {row['rule']:<10} = {row['min_cluster_size']:>3}: "
            f"{row['clusters']:>3} clusters, {row['noise']:.0%} noise"
        )
    fresh = report["umap_fresh_process_seconds"]
    print(
        f"\nUMAP of 7,600 × 384 in a fresh process (import + fit): ours {fresh['ours']} s, umap-learn as "
        f"BERTopic calls it {fresh['umap-learn']} s"
    )


if __name__ == "__main__":
    main()
