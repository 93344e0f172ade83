"""The service as a whole: one namespace per service, the Dagster instance opened only by calls that
need it, the demo."""

import pytest

from cluster_pipeline.core.errors import InvalidIdentifierError, NotFoundError
from cluster_pipeline.service import ConfigurationChanges, Service
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.openai_server import FakeOpenAIServer


def test_the_instance_is_opened_by_the_first_call_that_needs_it_and_closed_with_the_service(tmp_path):
    root = tmp_path / "data"
    with Service.from_environment(str(root), "team-a") as service:
        service.collections.ingest("news", blob_documents(60))
        assert service.collections.list() == ["news"] and service.configurations.list() == []
        assert not (root / "dagster_home").exists()  # ingesting and listing never open it
        config = service.configurations.create(ConfigurationChanges({"collection": "news"}))
        assert (root / "dagster_home" / "dagster.yaml").exists()
        instance = service.scope.instance()
        assert instance.has_dynamic_partition("cluster_configs", config.partition_key)
    assert service.scope.instance() is not instance  # closed with the service; the next call opens it again
    service.close()


def test_a_service_sees_its_namespace_only(service, news):
    config = service.configurations.create(ConfigurationChanges({"collection": news}))
    other = service.in_namespace("team-b")
    assert other.namespace == "team-b" and other.collections.list() == [] and other.configurations.list() == []
    with pytest.raises(NotFoundError, match="in namespace 'team-b'"):
        other.configurations.get(config.cluster_id)
    with pytest.raises(NotFoundError, match="not found in namespace 'team-b'"):
        other.configurations.create(ConfigurationChanges({"collection": news}))
    assert other.scope.instance() is service.scope.instance()  # one instance for every namespace
    with pytest.raises(InvalidIdentifierError, match="reserved"):
        service.in_namespace("dagster_home")


def test_the_demo_creates_its_collection_and_configuration_once(service):
    first = service.demo(num_documents=120)
    assert first.status == "completed" and first.num_points == 120 and first.num_clusters == 6
    second = service.demo(num_documents=120)
    assert second.cluster_id == first.cluster_id and second.num_points == 120 and second.run_id != first.run_id
    assert [c.name for c in service.configurations.list()] == ["demo-news-kmeans-k6"]


def test_the_demo_on_embedded_text_has_a_collection_of_its_own(service, monkeypatch):
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_MODEL", "test-embed")
        monkeypatch.setenv("CLUSTER_PIPELINE_EMBEDDING_BASE_URL", server.url)
        result = service.demo(num_documents=120, embed=True)
    assert result.status == "completed" and result.num_points == 120 and result.num_clusters == 6
    schema = service.collections.describe("demo-news-text")
    assert schema.features == {"embedding": 32} and schema.embedding_models["embedding"].name == "test-embed"
    assert len(server.requests[0].body["input"][0].splitlines()) == 2  # title and text
