"""Executions through the service on a real lake and Dagster instance: execute and submit, the history
(filters, totals, latest), wait, cancel, report and hierarchy."""

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError, NotFoundError
from cluster_pipeline.service import ConfigurationChanges, HistoryQuery


@pytest.fixture
def config(service, news):
    return service.configurations.create(
        ConfigurationChanges({"collection": news}, settings=[("parameters.n_clusters", 3)])
    )


def test_execute_then_read_it_back_every_way(service, config, lake):
    result = service.executions.execute(config.name)
    assert result.status == "completed" and result.num_clusters == 3 and result.cluster_id == config.cluster_id
    assert service.executions.get(result.run_id) == result
    assert service.executions.latest(config.name) == result
    location = service.executions.location(result)
    assert location is not None and location.endswith(f"{result.run_id}.parquet")
    assert lake.storage.exists(lake.execution_key("default", config.cluster_id, result.run_id))
    with pytest.raises(NotFoundError, match=r"No failed executions of news-kmeans-k3 \(1 in other statuses"):
        service.executions.latest(config.name, ["failed"])
    html = service.executions.report(result.run_id, "http://dagster.internal:3000")
    assert html.startswith("<!doctype html>") and "http://dagster.internal:3000" in html
    assert {node["id"] for node in service.executions.hierarchy(result.run_id)["nodes"]} == {"h_0", "h_1"}
    topics = service.executions.topics(result.run_id, 2)
    assert len(topics) == 2 and sum(t.num_members for t in topics) == 150


def test_the_history_lists_with_a_filter_totals_and_the_failed_execution(service, config):
    completed = service.executions.execute(config.name)
    service.configurations.update(config.name, ConfigurationChanges(settings=[("parameters.n_clusters", 500)]))
    failed = service.executions.execute(config.name)
    assert failed.status == "failed" and "larger than the number" in failed.error_message
    page = service.executions.list(config.cluster_id, HistoryQuery(), include_total=True)
    assert page.configuration == "news-kmeans-k3" and [r.run_id for r in page.results] == [
        failed.run_id,
        completed.run_id,
    ]
    assert page.total == 2 and page.stats["by_status"] == {"completed": 1, "failed": 1}
    version_one = {"field": "configuration_version", "operator": "=", "value": 1}
    page = service.executions.list(config.name, HistoryQuery(limit=1), filter=version_one)
    assert [r.run_id for r in page.results] == [completed.run_id] and page.next_cursor is None
    with pytest.raises(ClusterPipelineError, match="unknown field 'colour'"):
        service.executions.list(config.name, HistoryQuery(), filter={"field": "colour", "operator": "is_null"})


def test_a_queued_execution_is_pending_until_cancelled(service, config, warnings):
    pending = service.executions.submit(config.name)
    assert pending.status == "pending" and pending.run_id.startswith("run_")
    assert len(warnings) == 1 and "no Dagster daemon" in warnings[0]  # nothing dequeues it here
    assert service.executions.location(pending) is None
    assert service.executions.get(pending.run_id).status == "pending"
    assert [r.run_id for r in service.executions.list(config.name, HistoryQuery()).results] == [pending.run_id]
    assert service.executions.wait(pending.run_id, timeout=0.2).status == "pending"
    cancelled = service.executions.cancel(pending.run_id)
    assert cancelled.status == "canceled" and "cancelled" in cancelled.error_message
    assert service.executions.wait(pending.run_id) == cancelled  # ended: answers at once
    with pytest.raises(ClusterPipelineError, match="not pending or processing"):
        service.executions.cancel(pending.run_id)


def test_runs_of_another_namespace_answer_as_absent_ones(service, config):
    result = service.executions.execute(config.name)
    other = service.in_namespace("team-b")
    for read in (other.executions.get, other.executions.cancel, other.executions.hierarchy):
        with pytest.raises(NotFoundError):
            read(result.run_id)
    with pytest.raises(NotFoundError, match="in namespace 'team-b'"):
        other.executions.latest(config.name)


def test_cluster_names_and_a_run_name_sit_beside_the_result_and_carry_to_the_next_execution(service, config, lake):
    first = service.executions.execute(config.name)
    renamed = service.executions.rename_clusters(first.run_id, {"cl_0": "  Rockets "})
    assert renamed.label_overrides == {"cl_0": "Rockets"}
    assert (renamed.centroids[0].label, renamed.centroids[0].label_source) == ("Rockets", "override")
    assert service.executions.name_run(first.run_id, "baseline").run_name == "baseline"
    shown = service.executions.get(first.run_id)
    assert shown.run_name == "baseline" and shown.centroids[0].label == "Rockets"
    # the immutable file keeps the label the execution found
    stored = pq.read_table(lake.storage.path(lake.execution_key("default", config.cluster_id, first.run_id)))
    assert stored.column("centroids")[0].as_py()[0]["label"] == first.centroids[0].label != "Rockets"
    with pytest.raises(ConfigurationError, match="has no cluster 'cl_9'"):
        service.executions.rename_clusters(first.run_id, {"cl_9": "Nothing"})

    second = service.executions.execute(config.name)  # the same documents: the drift matching pairs every cluster
    pair = next(p for p in second.drift["stable_clusters"] if p["previous_cluster_id"] == "cl_0")
    carried = next(c for c in second.centroids if c.cluster_id == pair["cluster_id"])
    assert (carried.label, carried.label_source) == ("Rockets", "carried_over")
    assert second.label_overrides == {pair["cluster_id"]: "Rockets"} and second.run_name is None
    assert service.executions.rename_clusters(first.run_id, {"cl_0": None}).label_overrides is None
