"""Mixpeek's own Python SDK drives the whole workflow against the live API (uvicorn on loopback, a real
Dagster daemon running the queued executions): every response is parsed by the SDK's models."""

from __future__ import annotations

import time

import mixpeek
import pytest
from mixpeek.models import (
    BYODocument,
    BYOUpsertRequest,
    CreateClusterRequest,
    CreateCollectionRequest,
    KmeansParameters,
    KMeansParams,
    ListClusterExecutionsRequest,
    PatchExecutionLabelsRequest,
    PatchExecutionRunNameRequest,
    SharedClustersTriggersModelsCreateTriggerRequest,
    SharedClustersTriggersModelsListTriggersRequest,
    SourceConfigInput,
    TriggerHistoryRequest,
    VectorBasedConfigInput,
    VectorsValue,
)

from cluster_pipeline_tests.api.conftest import make_key
from cluster_pipeline_tests.api_server import api_server
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.daemon_helpers import running_daemon


def until(read, done, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def when_idle(action):
    """``action()``, or None while the configuration's last run is still ending in Dagster (409)."""
    try:
        return action()
    except mixpeek.exceptions.ConflictException:
        return None


@pytest.mark.slow
def test_the_sdk_runs_the_whole_workflow(api_env, tmp_path):
    key = make_key(api_env, {"team-a": "write"})
    with running_daemon(api_env, tmp_path / "daemon.log"), api_server(api_env, tmp_path / "api.log") as url:
        client = mixpeek.ApiClient(
            mixpeek.Configuration(host=url, access_token=key, api_key={"NamespaceHeader": "team-a"})
        )
        collections, byo = mixpeek.CollectionsApi(client), mixpeek.BYODocumentsApi(client)
        clusters, executions = mixpeek.ClustersApi(client), mixpeek.ClusterExecutionsApi(client)
        triggers, documents = mixpeek.ClusterTriggersApi(client), mixpeek.CollectionDocumentsApi(client)

        created = collections.create_collection(
            CreateCollectionRequest(collection_name="news", source=SourceConfigInput(type="direct_upsert"))
        )
        assert created.collection_name == "news" and created.document_count == 0
        rows = blob_documents(400, centers=3, dim=16).to_pylist()
        for start in range(0, len(rows), 100):  # in batches
            batch = [BYODocument(document_id=r["document_id"], vectors={"embedding": VectorsValue(r["embedding"])},
                                 payload={"text": r["text"], "group": r["group"]}) for r in rows[start : start + 100]]  # fmt: skip
            upserted = byo.upsert_documents_byo_namespaces(
                "team-a", BYOUpsertRequest(collection_id="news", documents=batch)
            )
            assert upserted.inserted == 100
        assert documents.count_documents("news").count == 400
        page = documents.list_documents("news", limit=5)
        assert len(page.results) == 5 and page.results[0].document_id == "d0"

        config = clusters.create_cluster(CreateClusterRequest(
            collection_ids=["news"], cluster_name="news-k3",
            vector_config=VectorBasedConfigInput(
                feature_uris=["mixpeek://byo@v1/embedding"], clustering_method="kmeans",
                kmeans_parameters=KmeansParameters(KMeansParams(n_clusters=3))),
        ))  # fmt: skip
        assert config.cluster_name == "news-k3" and config.algorithm == "kmeans"
        assert config.algorithm_params["n_clusters"] == 3
        assert clusters.get_cluster("news-k3").cluster_id == config.cluster_id
        assert [c.cluster_id for c in clusters.list_clusters().results] == [config.cluster_id]

        task = clusters.execute_clustering_clusters(config.cluster_id)
        run_id = task.task_id
        assert run_id.startswith("run_") and task.status == "PENDING"
        result = until(lambda: executions.get_cluster_execution(config.cluster_id),
                       lambda r: r.status in ("completed", "failed"))  # fmt: skip
        assert result.status == "completed", result.error_message
        assert result.run_id == run_id and result.num_clusters == 3 and result.num_points == 400
        assert result.mode == "full" and result.source_documents == result.vectors_retrieved == 400
        assert result.vectors_clustered == 400 and len(result.centroids) == 3

        listed = executions.list_cluster_executions(config.cluster_id, include_total=True, limit=10,
            list_cluster_executions_request=ListClusterExecutionsRequest.from_dict({
                "filters": {"AND": [{"field": "status", "operator": "eq", "value": "completed"}]},
                "sort": {"field": "created_at", "direction": "desc"}}))  # fmt: skip
        assert listed.total_count == 1 and listed.results[0].run_id == run_id
        assert listed.stats.executions_by_status == {"completed": 1}
        assert executions.get_cluster_execution_by_run(config.cluster_id, run_id).run_id == run_id

        renamed = executions.patch_execution_labels_clusters_id_run(
            config.cluster_id, run_id, PatchExecutionLabelsRequest(labels={"cl_0": "Rockets"})
        )
        assert renamed.label_overrides == {"cl_0": "Rockets"}
        named = executions.patch_execution_run_name_clusters(
            config.cluster_id, run_id, PatchExecutionRunNameRequest(run_name="baseline")
        )
        assert named.run_name == "baseline"
        shown = executions.get_cluster_execution_by_run(config.cluster_id, run_id)
        assert shown.centroids[0].label == "Rockets" and shown.run_name == "baseline"
        assert shown.label_overrides == {"cl_0": "Rockets"}

        # a second execution held at its fit, cancelled: canceled, not failed
        (tmp_path / f"{config.cluster_id}.hold").write_text("fit")
        held = until(
            lambda: when_idle(lambda: clusters.execute_clustering_clusters(config.cluster_id).task_id), bool, 60
        )  # the first run ends in Dagster
        until(lambda: (tmp_path / f"{config.cluster_id}.fit.reached").exists(), bool)
        canceled = executions.cancel_execution_clusters_id_run(config.cluster_id, held)
        assert canceled["status"] == "canceled"
        assert executions.get_cluster_execution_by_run(config.cluster_id, held).status == "canceled"
        (tmp_path / f"{config.cluster_id}.fit.release").write_text("")

        request = SharedClustersTriggersModelsCreateTriggerRequest(
            cluster_id=config.cluster_id, trigger_type="cron", schedule_config={"cron_expression": "0 3 * * *"},
            description="nightly")  # fmt: skip
        trigger = until(lambda: when_idle(lambda: triggers.create_trigger_clusters(request)), bool, 60)
        assert trigger.status == "active" and clusters.get_cluster(config.cluster_id).cluster_id
        listed_triggers = triggers.list_triggers_clusters(SharedClustersTriggersModelsListTriggersRequest())
        assert [t.trigger_id for t in listed_triggers.results] == [trigger.trigger_id]
        assert triggers.pause_trigger_clusters(trigger.trigger_id).status == "paused"
        assert triggers.resume_trigger_clusters(trigger.trigger_id).status == "active"
        assert triggers.get_trigger_history_clusters(trigger.trigger_id, TriggerHistoryRequest()).total == 0
        triggers.delete_trigger_clusters(trigger.trigger_id)

        until(lambda: executions.get_cluster_execution(config.cluster_id).status, lambda s: s == "canceled", 30)
        clusters.delete_cluster(config.cluster_id)
        with pytest.raises(mixpeek.exceptions.NotFoundException):
            clusters.get_cluster(config.cluster_id)
        collections.delete_collection("news")
        assert collections.list_collections().total_count == 0
