"""Text in, topics out: ``python -m benchmarks.text_in`` (about two minutes; needs the ``[embed]`` extra).

AG News' test split (``../shared/datasets/`` or ``--data``) twice, into a temporary lake, through the
service as ``cluster-pipeline ingest`` does: once with its given MiniLM vectors, once as text only,
embedded at ingest by the packaged all-MiniLM-L6-v2 (``ingest --embed text``). Both are clustered
with k-means k=4; printed: V-measure against the topics, the embedding's seconds and texts per
second, and how far the embedded vectors are from the given ones (the lowest cosine). ``--limit N``
takes the first N documents (a quick check). Too slow for the suite (embedding 7,600 texts), so here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.quality import AG_NEWS, OUT


def measure(data: Path, limit: int | None) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.metrics import v_measure_score

    from cluster_pipeline.core.embed.options import EmbeddingSettings
    from cluster_pipeline.service import ConfigurationChanges, Service

    table = pq.read_table(data)
    table = table.slice(0, limit) if limit else table
    truth = dict(zip(table.column("document_id").to_pylist(), table.column("category").to_pylist(), strict=True))
    report: dict[str, Any] = {"documents": table.num_rows, "cases": []}
    with tempfile.TemporaryDirectory() as root:
        os.environ["CLUSTER_PIPELINE_ROOT"] = root  # the runs' lake, as the CLI's --root sets it
        service = Service.from_environment(root)
        service.collections.ingest("given", table)
        started = time.perf_counter()
        text_only = table.drop_columns(["embedding"])
        service.collections.ingest("text", text_only, embed=["text"], embedding=EmbeddingSettings())
        seconds = time.perf_counter() - started
        report.update(embed_seconds=round(seconds, 1), texts_per_second=round(table.num_rows / seconds, 1))
        vectors = {}
        for collection in ("given", "text"):
            config = service.configurations.create(
                ConfigurationChanges({"collection": collection}, settings=[("parameters.n_clusters", 4)])
            )
            result = service.executions.execute(config.name)
            exported = pq.read_table(
                service.collections.export(
                    collection, Path(root) / f"{collection}.parquet", configuration=config.name, embeddings=True
                ).path
            ).sort_by("document_id")
            topics = [truth[i] for i in exported.column("document_id").to_pylist()]
            v_measure = v_measure_score(topics, exported.column("cluster_id").to_pylist())
            vectors[collection] = exported.column("embedding").combine_chunks().flatten().to_numpy()
            vectors[collection] = vectors[collection].reshape(exported.num_rows, -1)
            report["cases"].append({"vectors": collection, "status": result.status, "v_measure": round(v_measure, 4)})
        given, embedded = vectors["given"], vectors["text"]
        cosine = (given * embedded).sum(1) / np.linalg.norm(given, axis=1) / np.linalg.norm(embedded, axis=1)
        report["lowest_cosine"] = float(cosine.min())
        service.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=AG_NEWS, help="AG News test split with MiniLM embeddings")
    parser.add_argument("--limit", type=int, help="only the first N documents (a quick check)")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data PATH to the AG News parquet file.")
    report = measure(args.data, args.limit)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "text_in.json").write_text(json.dumps(report, indent=2))
    for case in report["cases"]:
        print(f"k-means k=4 on {case['vectors']} vectors: V-measure {case['v_measure']:.4f} ({case['status']})")
    print(
        f"embedding {report['documents']:,} texts: {report['embed_seconds']} s ({report['texts_per_second']} texts/s); "
        f"lowest cosine to the given vectors {report['lowest_cosine']:.6f}"
    )


if __name__ == "__main__":
    main()
