"""The clustering assets on a real Dagster instance with real Parquet files."""

import numpy as np
import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterRunStatus, materialize

from cluster_pipeline.assets import CLUSTERING_ASSETS, clustering
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.definitions import defs
from cluster_pipeline.jobs import EXECUTION_ASSETS, is_execution_run
from cluster_pipeline.lifecycle.processes import WorkerIdentity
from cluster_pipeline.lifecycle.records import record_facts
from cluster_pipeline.resources import LakeResource, LLMResource
from cluster_pipeline.runs import register_partition
from cluster_pipeline.settings import PARTITION_TAG
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


def test_completed_execution_writes_result_assignments_and_metadata(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    outcome, result = materialize_config(lake, config, instance)
    assert outcome.success and result is not None
    assert result.status == "completed" and result.num_clusters == 3 and result.num_points == 300
    assert result.run_id == "run_" + outcome.run_id.replace("-", "")[:16]
    assert result.dagster_run_id == outcome.run_id
    assert result.metrics["silhouette_score"] > 0.5 and result.metrics["description"]
    assert result.engine == "faiss"
    stages = ["dagster", "load", "fit", "metrics", "labels", "coherence", "drift", "topics", "pictures", "write"]
    assert set(result.timings) == set(stages) and all(seconds >= 0 for seconds in result.timings.values())
    assert sorted(c.num_members for c in result.centroids) == [100, 100, 100]
    assert {tuple(sorted(c.keywords[:3])) for c in result.centroids} == {
        ("launch", "orbit", "rocket"),
        ("garlic", "oven", "pasta"),
        ("goal", "league", "striker"),
    }
    record = instance.get_run_record_by_id(outcome.run_id)
    assert abs(result.created_at.timestamp() - record.create_timestamp.timestamp()) < 1e-3
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id)
    assert assignments.num_rows == 300 and assignments.column("is_noise").to_pylist().count(True) == 0
    assert set(assignments.column("cluster_id").to_pylist()) == {"cl_0", "cl_1", "cl_2"}

    events = {
        event.asset_key.to_user_string(): event.event_specific_data.materialization
        for event in outcome.get_asset_materialization_events()
    }
    # one step ran the whole execution and materialized all five assets
    assert {e.step_key for e in outcome.get_asset_materialization_events()} == {"cluster_execution_step"}
    assert len(events) == 5 and events["cluster_assignments"].metadata["engine"].value == "faiss"
    final = events["execution_result"].metadata
    assert final["run_id"].value == result.run_id and final["num_clusters"].value == 3
    assert final["result_path"].value.endswith(f"{result.run_id}.parquet")
    assert len(final["clusters"].value.records) == 3
    # shown to 4 significant digits (the result keeps every digit)
    assert events["cluster_quality"].metadata["silhouette_score"].value == float(
        f"{result.metrics['silhouette_score']:.4g}"
    )


def test_reexecution_makes_a_new_run_id(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(60))
    config = create_config(lake, parameters={"n_clusters": 3})
    _, first = materialize_config(lake, config, instance)
    _, second = materialize_config(lake, config, instance)
    assert first.run_id != second.run_id
    assert [r.run_id for r in ResultStore(lake).list("default", config.cluster_id)] == [second.run_id, first.run_id]


def two_blobs_and_noise() -> pa.Table:
    """Two tight blobs of 60 points each and 15 points scattered far from both (what HDBSCAN calls noise)."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.02, (60, 8)), rng.normal(3, 0.02, (60, 8)), rng.uniform(-40, 40, (15, 8))])
    return pa.table(
        {
            "document_id": [f"p{i}" for i in range(len(X))],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), 8),
        }
    )


def test_noise_is_counted_apart_and_left_out_of_metrics(lake, collections, instance):
    collections.ingest("default", "c", two_blobs_and_noise())
    config = create_config(
        lake, algorithm="hdbscan", parameters={"min_cluster_size": 10}, preprocessing={"normalize": False}
    )
    _, result = materialize_config(lake, config, instance)
    assert result.status == "completed" and result.num_clusters == 2 and result.num_noise >= 10
    assert sum(c.num_members for c in result.centroids) == result.num_points - result.num_noise
    assert result.metrics["silhouette_score"] > 0.9  # noise excluded, so the two tight blobs score high
    assert all(c.label.startswith("Cluster") for c in result.centroids)  # no text, no metadata
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id).to_pandas()
    noise = assignments[assignments.is_noise]
    assert len(noise) == result.num_noise and noise.cluster_id.isna().all() and (noise.cluster_index == -1).all()


def test_automatic_k_and_its_curve_are_in_the_metadata(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=4))
    config = create_config(lake, parameters={"n_clusters": "auto", "k_max": 6})
    outcome, result = materialize_config(lake, config, instance)
    assert outcome.success and result.num_clusters == 4 and result.auto_k["chosen"] == 4
    events = {
        event.asset_key.to_user_string(): event.event_specific_data.materialization
        for event in outcome.get_asset_materialization_events()
    }
    fit = events["cluster_assignments"].metadata
    assert fit["auto_k_chosen"].value == 4 and fit["auto_k"].value["scores"].keys() == {"2", "3", "4", "5", "6"}
    assert fit["auto_k_curve"].value.startswith("![silhouette by k](data:image/png;base64,")
    assert fit["reduction"].value == {"method": "none"}
    final = events["execution_result"].metadata
    assert final["coverage"].value == "computed on 300 of 300 documents; 0 % noise"
    assert final["auto_k"].value.startswith("![auto_k](data:image/png;base64,")  # each picture its own entry
    assert result.artifacts["auto_k"].endswith("auto_k.png")


def test_reassigned_noise_keeps_is_noise_as_found(lake, collections, instance):
    collections.ingest("default", "c", two_blobs_and_noise())
    config = create_config(
        lake,
        algorithm="hdbscan",
        parameters={"min_cluster_size": 10},
        preprocessing={"normalize": False},
        reassign_noise=True,
    )
    _, result = materialize_config(lake, config, instance)
    assert result.num_clusters == 2 and result.num_noise >= 10 and result.num_noise_reassigned == result.num_noise
    assert sum(c.num_members for c in result.centroids) == result.num_points
    assert result.coverage.startswith("computed on 135 of 135 documents; ")
    assert result.coverage.endswith(f"noise, {result.num_noise} of them reassigned to their nearest cluster")
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id).to_pandas()
    noise = assignments[assignments.is_noise]
    assert len(noise) == result.num_noise and noise.cluster_id.notna().all() and (noise.cluster_index >= 0).all()


def _write_part_directly(lake, table):
    """A part written by another tool, bypassing ingest's checks (e.g. NaN vectors)."""
    key = "default/collections/c/parts/part-000002-" + f"{table.num_rows}-abcd.parquet"
    lake.storage.write_parquet_new(key, table)


@pytest.mark.parametrize(
    ("setup", "fields", "message"),
    [
        ("one_doc", {}, "Insufficient documents for clustering: need at least 2 documents"),
        ("ok", {"feature": "clip"}, "Feature extractor 'clip' not found in collection 'c'"),
        ("nan", {"parameters": {"n_clusters": 2}}, "Clustering algorithm failed: NaN values in embeddings"),
        ("ok", {"parameters": {"n_clusters": 500}}, "n_clusters=500 is larger than the number of documents"),
        ("none", {}, "Collection 'c' not found in namespace 'default'"),
    ],
)
def test_failed_executions_write_a_failed_result(lake, collections, instance, setup, fields, message):
    if setup == "one_doc":
        collections.ingest("default", "c", blob_documents(1))
    elif setup == "ok":
        collections.ingest("default", "c", blob_documents(30))
    elif setup == "nan":
        collections.ingest("default", "c", blob_documents(30))
        bad = blob_documents(3, id_offset=99).to_pandas()
        bad.at[0, "embedding"] = np.full(16, np.nan, dtype=np.float32)
        _write_part_directly(lake, pa.Table.from_pandas(bad, schema=blob_documents(1).schema, preserve_index=False))
    config = create_config(lake, **fields)
    outcome, result = materialize_config(lake, config, instance)
    assert not outcome.success
    assert result is not None and result.status == "failed"
    assert message in result.error_message
    assert result.metrics is None and result.centroids is None and result.completed_at is not None
    failure = outcome.get_step_failure_events()[0].step_failure_data.error
    assert message in failure.message
    assert not ResultStore(lake).storage.exists(
        ResultStore(lake).assignments_key("default", config.cluster_id, result.run_id)
    )


def test_a_collection_over_the_memory_budget_is_streamed_through_the_assets(lake, collections, instance, monkeypatch):
    monkeypatch.setattr(clustering, "LONG_STAGE_SECONDS", 0.0)  # log the progress of every stage, however short
    for i in range(3):
        collections.ingest("default", "big", blob_documents(20_000, centers=3, dim=128, id_offset=i * 20_000))
    config = create_config(lake, collection="big", parameters={"n_clusters": 3}, memory_budget_mb=64)
    outcome, result = materialize_config(lake, config, instance)
    assert outcome.success and result.status == "completed" and result.num_points == 60_000
    sizes = [c.num_members for c in result.centroids]
    assert sum(sizes) == 60_000 and all(abs(size - 20_000) < 50 for size in sizes)
    assert result.metrics is not None and 9_900 <= result.silhouette_sample_size <= 10_000
    assert {tuple(sorted(c.keywords[:3])) for c in result.centroids} == {
        ("launch", "orbit", "rocket"),
        ("garlic", "oven", "pasta"),
        ("goal", "league", "striker"),
    }
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id)
    assert assignments.num_rows == 60_000 and len(set(assignments.column("document_id").to_pylist())) == 60_000
    events = {
        event.asset_key.to_user_string(): event.event_specific_data.materialization
        for event in outcome.get_asset_materialization_events()
    }
    assert events["collection_embeddings"].metadata["streamed"].value is True
    assert events["cluster_assignments"].metadata["fit_method"].value == "streaming_kmeans+sampled_training"
    logs = [e.message for e in instance.all_logs(outcome.run_id) if e.message and "documents (" in e.message]
    assert any("assign:" in message for message in logs)  # progress reached the Dagster log


def test_a_run_that_raced_another_of_its_configuration_fails_and_stays_in_the_history(lake, collections, instance):
    """The CLI refuses a second execution before launching; two launches that raced past that check
    meet in the step, where the later run fails (Dagster cannot store a run and start it in two steps)."""
    collections.ingest("default", "c", blob_documents(30))
    config = create_config(lake, parameters={"n_clusters": 3})
    earlier = instance.create_run_for_job(
        job_def=defs.resolve_job_def("cluster_execution"),
        tags={PARTITION_TAG: config.partition_key},
        status=DagsterRunStatus.STARTED,
    )
    record_facts(instance, earlier.run_id, earlier.job_name, worker=WorkerIdentity.current().to_text())
    outcome, result = materialize_config(lake, config, instance)
    assert not outcome.success and result is not None and result.status == "failed"
    assert f"already processing ({run_id_from_dagster_run(earlier.run_id)})" in result.error_message
    assert instance.get_run_by_id(earlier.run_id).status == DagsterRunStatus.STARTED  # the earlier run goes on


def test_a_launch_of_one_asset_materializes_all_five(lake, collections, instance):
    """The UI's Materialize on one asset's page runs the whole step: every asset gets the partition's
    materialization, and the run counts as the configuration's execution (status, lifecycle)."""
    collections.ingest("default", "c", blob_documents(60))
    config = create_config(lake, parameters={"n_clusters": 3})
    register_partition(instance, config)
    outcome = materialize(
        CLUSTERING_ASSETS,
        selection=["cluster_labels"],
        partition_key=config.partition_key,
        instance=instance,
        resources={"lake": LakeResource(root=str(lake.storage.root)), "llm": LLMResource()},
    )
    assert outcome.success and is_execution_run(instance.get_run_by_id(outcome.run_id))
    for name in EXECUTION_ASSETS:
        latest = instance.get_latest_materialization_event(AssetKey(name))
        assert latest is not None and latest.run_id == outcome.run_id, name
        assert latest.asset_materialization.partition == config.partition_key
