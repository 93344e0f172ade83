"""What the Dagster UI shows for an execution: per-partition asset checks, readable partitions,
pictures in the metadata, and what becomes of a partition added by hand."""

import asyncio
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetSelection,
    DagsterRunStatus,
    Definitions,
    define_asset_job,
    materialize,
)
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.loader import LoadingContextForTest
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionResolvedStatus,
)
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from cluster_pipeline.assets import CLUSTERING_ASSETS
from cluster_pipeline.cli import main
from cluster_pipeline.lifecycle.records import run_facts
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, cluster_configs_partitions
from cluster_pipeline.resources import LakeResource, LLMResource
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


def _checks(outcome):
    return {evaluation.check_name: evaluation for evaluation in outcome.get_asset_check_evaluations()}


def _metadata(outcome, asset: str = "execution_result"):
    return next(
        e.event_specific_data.materialization.metadata
        for e in outcome.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    )


def _latest(instance, check: str, partition: str):
    key = AssetCheckKey.from_user_string(f"execution_result:{check}")
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=partition)
    )
    return records.get(key)


def _resolved(instance, record) -> AssetCheckExecutionResolvedStatus:
    """The status the UI shows for a check execution record."""
    return asyncio.run(record.resolve_status(LoadingContextForTest(instance)))


def test_checks_are_evaluated_per_partition(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    strict = create_config(lake, parameters={"n_clusters": 3}, checks={"max_cluster_fraction": 0.2})
    lenient = create_config(lake, parameters={"n_clusters": 3})
    assert (strict.name, lenient.name) == ("c-kmeans-k3", "c-kmeans-k3-2")
    first, _ = materialize_config(lake, strict, instance)
    assert _checks(first)["largest_cluster_fraction"].partition == "default.c-kmeans-k3"
    materialize_config(lake, lenient, instance)  # later, so it would be "the" latest without partitions

    failing = _latest(instance, "largest_cluster_fraction", strict.partition_key)
    passing = _latest(instance, "largest_cluster_fraction", lenient.partition_key)
    assert failing.status == AssetCheckExecutionRecordStatus.FAILED and failing.partition == strict.partition_key
    assert passing.status == AssetCheckExecutionRecordStatus.SUCCEEDED and passing.partition == lenient.partition_key
    assert failing.evaluation.metadata["threshold"].value == 0.2
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey.from_user_string("execution_result:largest_cluster_fraction"),
        limit=10,
        partition_filter=PartitionKeyFilter(key=strict.partition_key),
    )
    assert [r.run_id for r in history] == [first.run_id]


def test_checks_without_threshold_are_skipped_not_passed(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    outcome, _ = materialize_config(lake, config, instance)
    checks = _checks(outcome)
    assert set(checks) == {"largest_cluster_fraction", "noise_fraction"}  # the two with default thresholds
    assert all(c.passed for c in checks.values())
    assert instance.get_run_by_id(outcome.run_id).status == DagsterRunStatus.SUCCESS
    for skipped in ("silhouette_threshold", "davies_bouldin_threshold", "ari_vs_previous"):
        # planned by a run that succeeded without evaluating it: what Dagster resolves (and shows) as skipped
        record = _latest(instance, skipped, config.partition_key)
        assert (
            record.run_id == outcome.run_id and _resolved(instance, record) == AssetCheckExecutionResolvedStatus.SKIPPED
        )
    summary = _metadata(outcome)["summary"].value
    assert "| silhouette_threshold | skipped |" in summary and "set checks.min_silhouette" in summary
    assert "| ari_vs_previous | skipped | - | - | first execution of the configuration" in summary


def test_checks_fail_with_warn_or_error_severity(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    strict = {"min_silhouette": 0.99, "max_cluster_fraction": 0.2}
    outcome, _ = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}, checks=strict), instance)
    checks = _checks(outcome)
    assert not checks["silhouette_threshold"].passed and not checks["largest_cluster_fraction"].passed
    assert checks["silhouette_threshold"].severity == AssetCheckSeverity.WARN
    assert checks["silhouette_threshold"].metadata["threshold"].value == 0.99
    assert checks["noise_fraction"].passed

    blocking = {**strict, "blocking": True}
    outcome, _ = materialize_config(lake, create_config(lake, parameters={"n_clusters": 3}, checks=blocking), instance)
    assert _checks(outcome)["silhouette_threshold"].severity == AssetCheckSeverity.ERROR


def test_drift_check_uses_the_previous_execution_and_can_run_alone(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3}, checks={"min_ari_vs_previous": 0.9})
    first, _ = materialize_config(lake, config, instance)
    assert "ari_vs_previous" not in _checks(first)  # a first execution has nothing to compare with
    outcome, result = materialize_config(lake, config, instance)
    check = _checks(outcome)["ari_vs_previous"]
    assert check.passed and check.metadata["value"].value == result.drift["adjusted_rand_index"] == 1.0
    # the UI's "Execute" on a check alone re-evaluates the latest result, without clustering again
    only_check = define_asset_job(
        "check_alone",
        selection=AssetSelection.checks(AssetCheckKey.from_user_string("execution_result:ari_vs_previous")),
        partitions_def=cluster_configs_partitions,
    )
    defs = Definitions(
        assets=CLUSTERING_ASSETS,
        jobs=[only_check],
        resources={"lake": LakeResource(root=str(lake.storage.root)), "llm": LLMResource()},
    )
    # tagged like the UI's launch (execute_in_process's partition_key cannot validate a selection of checks only)
    alone = defs.resolve_job_def("check_alone").execute_in_process(
        instance=instance, tags={"dagster/partition": config.partition_key}
    )
    assert not alone.get_asset_materialization_events()
    assert [(c.check_name, c.passed) for c in alone.get_asset_check_evaluations()] == [("ari_vs_previous", True)]
    # result, assignments, model, map, projection, sizes, hierarchy
    assert len(list(lake.storage.list_keys(lake.executions_prefix("default", config.cluster_id)))) == 2 * 7


def test_metadata_is_rounded_and_pictures_are_their_own_entries(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    outcome, result = materialize_config(lake, config, instance)
    for name in ("projection", "sizes"):
        path = Path(result.artifacts[name])
        assert path.name == f"{result.run_id}.{name}.png" and path.read_bytes()[:4] == b"\x89PNG"
    metadata = _metadata(outcome)
    assert metadata["projection"].value.startswith("![projection](data:image/png;base64,")
    assert metadata["sizes"].value.startswith("![sizes](data:image/png;base64,")
    assert "data:image" not in metadata["summary"].value  # the summary stays text; one picture per entry
    assert metadata["configuration"].value == "c-kmeans-k3"
    silhouette = metadata["silhouette_score"].value
    assert silhouette == float(f"{result.metrics['silhouette_score']:.4g}")
    assert all(len(str(v)) <= 8 for v in metadata["timings"].value.values())
    table = metadata["clusters"].value
    assert [c.name for c in table.schema.columns] == ["cluster", "label", "size", "share", "keywords"]
    assert all(len(r.data["keywords"]) <= 40 for r in table.records)
    assert _metadata(outcome, "cluster_assignments")["parameters"].value["n_clusters"] == 3


def test_runs_carry_the_configuration_tags(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(120, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    outcome, _ = materialize_config(lake, config, instance)  # no tags given: added when the run starts
    tags = instance.get_run_by_id(outcome.run_id).tags
    assert {k: v for k, v in tags.items() if k.startswith("cluster_pipeline/")} == {
        "cluster_pipeline/namespace": "default",
        "cluster_pipeline/collection": "c",
        "cluster_pipeline/algorithm": "kmeans",
        "cluster_pipeline/name": "c-kmeans-k3",
    }  # and nothing else of ours: the worker and the snapshot are in the run's facts
    facts = run_facts(instance, outcome.run_id)
    assert facts["cluster_id"] == config.cluster_id and facts["snapshot"]["num_documents"] == 120


@pytest.mark.parametrize("key", ["default.my-new-config", "my-new-config"])
def test_a_partition_added_by_hand_fails_fast_and_leaves_nothing_failed(lake, collections, instance, key):
    collections.ingest("default", "c", blob_documents(120, centers=3))
    instance.add_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME, [key])  # the UI's "Add partition"
    outcome = materialize(
        CLUSTERING_ASSETS,
        partition_key=key,
        instance=instance,
        resources={"lake": LakeResource(root=str(lake.storage.root)), "llm": LLMResource()},
        raise_on_error=False,
    )
    assert not outcome.success and instance.get_run_by_id(outcome.run_id).status == DagsterRunStatus.CANCELED
    failure = outcome.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert f"Partition '{key}' names no cluster configuration" in failure
    assert "cluster-pipeline clusters create" in failure and "Invalid cluster id" not in failure
    assert not instance.has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, key)  # removed at once
    assert not outcome.get_asset_materialization_events() and not outcome.get_asset_check_evaluations()
    assert lake.storage.list_keys("default/executions/") == []
    # nothing left failed: no failed partition of the asset, no failed check of any partition
    check = AssetCheckKey.from_user_string("execution_result:noise_fraction")
    planned = _latest(instance, "noise_fraction", key)  # the asset's latest check run: skipped, not failed
    assert (
        planned.run_id == outcome.run_id and _resolved(instance, planned) == AssetCheckExecutionResolvedStatus.SKIPPED
    )
    with partition_loading_context(dynamic_partitions_store=instance):
        states = instance.event_log_storage.get_asset_check_state([(check, cluster_configs_partitions)])
        assert all(not subset.subset_value.get_partition_keys() for subset in states[check].subsets.values())
        status = get_and_update_asset_status_cache_value(instance, check.asset_key, cluster_configs_partitions)
        assert not status.deserialize_failed_partition_subsets(cluster_configs_partitions).get_partition_keys()


def test_report_command_writes_a_self_contained_page(lake, collections, instance, tmp_path):
    collections.ingest("default", "c", blob_documents(120, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    _, result = materialize_config(lake, config, instance)
    output = tmp_path / "report.html"
    assert (
        main(["executions", "report", result.run_id, "--output", str(output), "--dagster-url", "http://dagster:3000"])
        == 0
    )
    page = output.read_text()
    assert (
        page.count('<img alt="') == 3 and result.run_id in page and "c-kmeans-k3" in page
    )  # projection, sizes, hierarchy
    assert all(c.label in page for c in result.centroids)
    assert f'href="http://dagster:3000/runs/{result.dagster_run_id}"' in page
    assert "<h2>Checks</h2>" in page and "<h2>Interactive map</h2>" in page and "Plotly" in page
    assert "<script src=" not in page and "<link " not in page  # nothing to fetch: readable offline
