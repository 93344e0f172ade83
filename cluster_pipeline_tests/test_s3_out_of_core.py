"""Out of core from S3: a collection larger than the memory budget streams part by part, by byte
range, with memory that does not grow with the collection (moto's S3 server on loopback).

How memory is measured: each execution runs in a child process (moto's server runs in this one and
copies whole objects per request; it must not be counted), with ``tracemalloc`` tracing Python
objects and NumPy arrays, plus the peak of Arrow's memory pool for Arrow's buffers. That is exactly
what the execution holds, and it is deterministic from run to run. Peak RSS would add the
interpreter's and the libraries' code and the allocators' retained pages, which vary with what ran
before and would blur a difference of a few MB. The sum of the two peaks over-counts (they need not
coincide), so the bound is conservative.
"""

import json
import os
import subprocess
import sys
import tracemalloc

import pyarrow as pa
import pytest

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.fit.neighbors import faiss_installed, load_faiss
from cluster_pipeline.core.fit.streaming import needs_streaming
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.progress import Progress, ProgressEvent
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.core.store.storage import S3Storage
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.s3_server import moto_s3, s3_client

BUDGET_MB = 64
DIM = 384
SMALL_PARTS = (22_000,)  # 32 MiB of vectors: over the budget / 2.5, so it streams too
LARGE_PARTS = (60_000, 10_000)  # 103 MiB; its first part alone (88 MiB) is larger than the budget


def config_for(collection: str) -> ClusterConfig:
    return ClusterConfig(
        cluster_id=f"clust_{collection}oocore",
        collection=collection,
        parameters={"n_clusters": 5},
        memory_budget_mb=BUDGET_MB,
    )


def measure_execution(endpoint: str, collection: str, run_id: str) -> dict:
    """Run in the child: execute one streamed configuration; report the result, the peak of each
    progress stage (the passes over the collection are ``sample``, ``fit``, ``assign``, ``score``;
    ``init``, k-means++ on the sample, is not one) and the peak of the whole execution."""
    lake = Lake(S3Storage(s3_client(endpoint), "lake", "lake"))
    pool = pa.default_memory_pool()
    stages: dict[str, int] = {}
    current = ["start"]

    def on_progress(event: ProgressEvent) -> None:  # every batch: min_interval=0
        if event.stage != current[0]:
            tracemalloc.reset_peak()
            current[0] = event.stage
        traced = tracemalloc.get_traced_memory()[1] + pool.bytes_allocated()
        stages[event.stage] = max(stages.get(event.stage, 0), traced)

    # the libraries the execution imports on first use are imported first: their modules are not data
    # (scikit-learn's alone is ~47 MB of Python objects)
    import scipy.sparse  # noqa: F401
    import sklearn.cluster  # noqa: F401

    if faiss_installed():
        load_faiss()
    tracemalloc.start()
    result = execute(lake, config_for(collection), run_id, progress=Progress([on_progress], min_interval=0))
    _, python_peak = tracemalloc.get_traced_memory()
    return {
        "status": result.status,
        "error": result.error_message,
        "num_points": result.num_points,
        "passes_peak_bytes": max(stages[stage] for stage in ("sample", "fit", "assign", "score")),
        "stages_mb": {stage: round(peak / 2**20, 1) for stage, peak in stages.items()},
        "execution_peak_bytes": python_peak + pool.max_memory(),
    }


def run_child(endpoint: str, collection: str, run_id: str) -> dict:
    code = (
        "import json, sys; from cluster_pipeline_tests.test_s3_out_of_core import measure_execution; "
        "print(json.dumps(measure_execution(*sys.argv[1:])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, endpoint, collection, run_id],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def ingest_parts(store: CollectionStore, collection: str, parts: tuple[int, ...]) -> None:
    offset = 0
    for seed, rows in enumerate(parts):
        store.ingest("default", collection, blob_documents(rows, centers=5, dim=DIM, seed=seed, id_offset=offset))
        offset += rows


@pytest.mark.slow
def test_a_collection_larger_than_the_budget_streams_from_s3_in_bounded_memory(monkeypatch):
    # moto keeps objects this large in memory instead of a temp file it re-reads on every range request
    monkeypatch.setenv("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(1 << 30))
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="lake")
        lake = Lake(S3Storage(client, "lake", "lake"))
        store = CollectionStore(lake)
        ingest_parts(store, "small", SMALL_PARTS)
        ingest_parts(store, "large", LARGE_PARTS)
        sizes = {name: sum(parts) * DIM * 4 for name, parts in (("small", SMALL_PARTS), ("large", LARGE_PARTS))}
        assert all(
            needs_streaming(config_for(name).clustering, store.snapshot("default", name).num_documents, DIM)
            for name in sizes
        )
        assert max(LARGE_PARTS) * DIM * 4 > BUDGET_MB * 2**20

        small = run_child(endpoint, "small", "run_00000000000000a1")
        large = run_child(endpoint, "large", "run_00000000000000a2")

        for outcome, parts in ((small, SMALL_PARTS), (large, LARGE_PARTS)):
            assert outcome["status"] == "completed", outcome["error"]
            assert outcome["num_points"] == sum(parts)
        results = ResultStore(lake)
        result = results.get("default", "run_00000000000000a2")
        assert result.metrics is not None and sum(c.num_members for c in result.centroids) == sum(LARGE_PARTS)
        ids = results.read_assignments("default", result.cluster_id, result.run_id).column("document_id").to_pylist()
        assert len(ids) == len(set(ids)) == sum(LARGE_PARTS)

    # While the passes read the collection they hold one batch, one read-ahead block, the samples and
    # per-document arrays: never a part (the large collection's first part is larger than the whole
    # peak), and 3.2x the vectors add only per-document arrays. A whole-object read adds the part.
    assert large["passes_peak_bytes"] < max(LARGE_PARTS) * DIM * 4, (small, large)
    growth = large["passes_peak_bytes"] - small["passes_peak_bytes"]
    assert growth < (sizes["large"] - sizes["small"]) / 4, (small, large)
