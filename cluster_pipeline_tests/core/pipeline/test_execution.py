"""The execution chain on its own (no Dagster): what a completed, a failed and an interrupted
execution leave in a real lake (the streamed path runs through the assets: ``test_assets.py``)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import InsufficientDocumentsError
from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.labels.base import LabelingOutcome
from cluster_pipeline.core.labels.offline import OfflineLabeler
from cluster_pipeline.core.pipeline import execution as chain
from cluster_pipeline.core.pipeline.execution import INTERRUPTED_MESSAGE, build_centroids, execute, run_execution
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline_tests.conftest import blob_documents, oversized_blob
from cluster_pipeline_tests.dagster_helpers import create_config

STAGES = ["load", "fit", "metrics", "labels", "coherence", "drift", "topics", "pictures", "write"]


def test_a_completed_execution_writes_its_result_and_every_file_beside_it(lake, collections):
    collections.ingest("default", "c", blob_documents(300))
    config = create_config(lake, parameters={"n_clusters": 3})
    execution = run_execution(lake, config, "run_0000000000000001", timings={"dagster": 0.5})
    result = execution.result
    assert result.status == "completed" and result.num_clusters == 3 and result.num_points == 300
    assert list(result.timings) == ["dagster", *STAGES]  # measured before the chain, then every stage in order
    assert sorted(result.artifacts) == ["hierarchy", "map", "projection", "sizes"]  # a tree over 3 clusters
    assert set(execution.images) == {"hierarchy", "projection", "sizes"}
    assert ResultStore(lake).get("default", result.run_id, config.cluster_id) == result
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id)
    assert assignments.num_rows == 300 and sorted(set(assignments.column("cluster_id").to_pylist())) == [
        "cl_0",
        "cl_1",
        "cl_2",
    ]
    model = lake.execution_key("default", config.cluster_id, result.run_id, "model.npz")
    assert lake.storage.exists(model)
    assert execution.enrichment is not None and execution.enrichment_error is None


def test_the_second_execution_records_its_drift_against_the_first(lake, collections):
    collections.ingest("default", "c", blob_documents(300))
    config = create_config(lake, parameters={"n_clusters": 3})
    first = execute(lake, config, "run_0000000000000001")
    assert first.drift is None
    second = execute(lake, config, "run_0000000000000002")
    assert second.drift["previous_run_id"] == first.run_id
    assert second.drift["adjusted_rand_index"] == pytest.approx(1.0)
    # the pictures' layout too: the second is turned onto the first on their shared documents
    assert first.layout == {"method": "pca", "layout_stability": "fresh"}
    assert second.layout["layout_stability"] == "aligned" and second.layout["aligned_to"] == first.run_id
    assert second.layout["shared_documents"] == 300 and second.layout["misfit"] < 0.01
    maps = [pq.read_table(result.artifacts["map"]).sort_by("document_id") for result in (first, second)]
    assert np.allclose(maps[0].column("x").to_numpy(), maps[1].column("x").to_numpy(), atol=1e-3)


def test_a_failure_writes_a_failed_result_that_knows_the_snapshot(lake, collections):
    collections.ingest("default", "c", blob_documents(1))
    config = create_config(lake)
    with pytest.raises(InsufficientDocumentsError) as raised:
        execute(lake, config, "run_0000000000000001")
    failed = ResultStore(lake).get("default", "run_0000000000000001", config.cluster_id)
    assert failed.status == "failed" and failed.error_message == str(raised.value)
    assert failed.error_message.startswith("Insufficient documents for clustering: need at least 2 documents")
    assert failed.num_points == 1 and failed.collection_version == collections.snapshot("default", "c").version
    assert failed.metrics is None and failed.centroids is None and failed.completed_at is not None


class InterruptedLabeler:
    """A labeling stage that is interrupted (Ctrl-C arrives while the clusters are being named)."""

    def label(self, documents, fitted, space, options) -> LabelingOutcome:
        raise KeyboardInterrupt


def test_an_interrupt_leaves_a_failed_result_saying_so_and_goes_on_up(lake, collections):
    collections.ingest("default", "c", blob_documents(120))
    config = create_config(lake, parameters={"n_clusters": 3})
    with pytest.raises(KeyboardInterrupt):
        run_execution(lake, config, "run_0000000000000001", labeler=InterruptedLabeler())
    failed = ResultStore(lake).get("default", "run_0000000000000001", config.cluster_id)
    assert failed.status == "failed" and failed.error_message == INTERRUPTED_MESSAGE
    assert not lake.storage.exists(
        lake.execution_key("default", config.cluster_id, failed.run_id, "assignments.parquet")
    )


class ShoutingLabeler:
    """Any object with ``label(documents, fitted, space, options)`` is a labeling stage."""

    def label(self, documents, fitted, space, options) -> LabelingOutcome:
        offline = OfflineLabeler().label(documents, fitted, space, options)
        return LabelingOutcome(
            {i: type(v)(**{**v.__dict__, "label": v.label.upper()}) for i, v in offline.labels.items()}
        )


def test_a_labeler_of_ones_own_names_the_clusters(lake, collections):
    collections.ingest("default", "c", blob_documents(300))
    config = create_config(lake, parameters={"n_clusters": 3})
    result = run_execution(lake, config, "run_0000000000000001", labeler=ShoutingLabeler()).result
    assert all(c.label == c.label.upper() for c in result.centroids) and len(result.centroids) == 3


def test_assignments_name_each_document_once_in_the_collections_order(lake, collections):
    documents = blob_documents(200)
    collections.ingest("default", "c", documents)
    config = create_config(lake, parameters={"n_clusters": 3})
    result = execute(lake, config, "run_0000000000000001")
    key = lake.execution_key("default", config.cluster_id, result.run_id, "assignments.parquet")
    assignments = pq.read_table(lake.storage.path(key))
    assert assignments.column("document_id").equals(documents.column("document_id").cast(pa.string()))
    distances = assignments.column("distance").to_numpy()
    assert np.isfinite(distances).all() and (distances >= 0).all()


class RecordingLabeler:
    """The offline labeler, remembering what it was shown."""

    def label(self, documents, fitted, space, options) -> LabelingOutcome:
        self.shown = (len(documents), len(fitted.labels), len(space), list(fitted.cluster_sizes))
        return OfflineLabeler().label(documents, fitted, space, options)


def test_the_stages_after_the_fit_read_a_bounded_sample_stratified_by_cluster(lake, collections, monkeypatch):
    """Above ``SHOWN_ROWS`` documents, labels, topics and pictures read a seeded sample (50 per cluster
    at least); every document is still assigned, and the clusters' sizes are every document's."""
    monkeypatch.setattr(chain, "SHOWN_ROWS", 100)  # 50·(3 clusters + noise) = 200 of the 900
    collections.ingest("default", "c", blob_documents(900))
    config = create_config(lake, parameters={"n_clusters": 3})
    labeler = RecordingLabeler()
    first = run_execution(lake, config, "run_0000000000000001", labeler=labeler).result
    documents, labels, space, sizes = labeler.shown
    assert documents == labels == space == 200 and sum(sizes) == 900
    assert sorted(c.num_members for c in first.centroids) == sorted(sizes)
    assert all(c.summary.startswith(f"{c.num_members:,} documents") for c in first.centroids)
    assert first.coverage.endswith("; keywords and topic coherence from a stratified sample of 200")
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, first.run_id)
    assert assignments.num_rows == 900
    points = pq.read_table(
        lake.storage.path(lake.execution_key("default", config.cluster_id, first.run_id, "map.parquet"))
    )
    assert points.num_rows <= 200
    second = execute(lake, config, "run_0000000000000002")  # drift still compares every document
    assert second.drift["adjusted_rand_index"] == pytest.approx(1.0)


def test_a_kmeans_execution_imports_no_scikit_learn(lake, collections):
    """The README's start-up promise: a k-means execution pays for faiss, not for scikit-learn (a second)."""
    import subprocess
    import sys

    collections.ingest("default", "c", blob_documents(200))
    config = create_config(lake, parameters={"n_clusters": 3})
    script = (
        "import sys; from cluster_pipeline.core.store.lake import Lake; "
        "from cluster_pipeline.core.config.store import ConfigStore; "
        "from cluster_pipeline.core.pipeline.execution import execute; "
        f"lake = Lake.local({str(lake.storage.path('')).rstrip('/')!r}); "
        f"config = ConfigStore(lake).get('default', {config.cluster_id!r}); "
        "result = execute(lake, config, 'run_0000000000000001'); "
        "print(result.status, result.engine, 'sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completed", "faiss", "False"]


def test_each_cluster_split_from_an_oversized_one_names_its_parent():
    X = oversized_blob()
    options = ClusteringOptions(algorithm="hdbscan", parameters={"min_cluster_size": 40}, normalize=False)
    fitted, _ = fit_clustering(X, options)
    centroids = build_centroids(fitted, LabelingOutcome(labels={}))
    assert fitted.splits is not None
    children = [c.cluster_id for c in centroids if c.metadata.get("split_from") == "found_0"]
    assert children == fitted.splits["split"]["found_0"] and len(children) >= 2
    assert len(children) < len(centroids)  # the far cluster was not split
