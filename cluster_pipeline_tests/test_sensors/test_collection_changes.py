"""The change sensor on a real instance: one run per change, none for no change, none twice."""

from dagster import SensorResult, build_sensor_context

from cluster_pipeline.resources import LakeResource
from cluster_pipeline.sensors.collection_changes import collection_change_sensor
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config


def tick(instance, lake, cursor=None) -> SensorResult:
    resources = {"lake": LakeResource(root=str(lake.storage.root))}
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = collection_change_sensor(context)
    return result if isinstance(result, SensorResult) else SensorResult(skip_reason=result)


def test_one_run_per_change_and_none_without_change(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(50))
    config = create_config(lake, triggers={"on_change": True})
    create_config(lake, triggers={"on_change": False})  # not bound to changes: never requested

    first = tick(instance, lake)
    assert [r.partition_key for r in first.run_requests] == [config.partition_key]
    assert first.run_requests[0].run_key.startswith(f"{config.partition_key}@v1-")
    assert first.dynamic_partitions_requests[0].partition_keys == [config.partition_key]

    again = tick(instance, lake, first.cursor)
    assert again.run_requests == []

    collections.ingest("default", "c", blob_documents(5, id_offset=500))
    changed = tick(instance, lake, again.cursor)
    assert len(changed.run_requests) == 1 and changed.run_requests[0].run_key != first.run_requests[0].run_key

    collections.delete_documents("default", "c", ["d1"])
    deleted = tick(instance, lake, changed.cursor)
    assert len(deleted.run_requests) == 1


def test_threshold_and_cooldown(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(100))
    create_config(lake, triggers={"on_change": True, "min_new_documents": 20, "cooldown_seconds": 3600})
    first = tick(instance, lake)
    assert len(first.run_requests) == 1
    collections.ingest("default", "c", blob_documents(10, id_offset=1000))
    assert tick(instance, lake, first.cursor).run_requests == []  # below threshold
    collections.ingest("default", "c", blob_documents(15, id_offset=2000))
    assert tick(instance, lake, first.cursor).run_requests == []  # 25 changed, but cooling down


def test_restarted_sensor_requests_nothing_again(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(30))
    create_config(lake, triggers={"on_change": True})
    stored_cursor = tick(instance, lake).cursor
    # a new context (a restarted daemon) resumes from the stored cursor
    assert tick(instance, lake, stored_cursor).run_requests == []


def test_skip_without_bound_configurations(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(30))
    result = tick(instance, lake)
    assert result.run_requests in (None, []) and "No configuration asks for change triggers" in str(result.skip_reason)
