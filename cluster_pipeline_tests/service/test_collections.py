"""Collections through the service: ingest (a table or a file), delete documents, describe, export."""

import pyarrow.parquet as pq
import pytest
from sklearn.metrics import v_measure_score

from cluster_pipeline.core.embed.options import EmbeddingSettings
from cluster_pipeline.core.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    IngestError,
    NotFoundError,
)
from cluster_pipeline.core.store.collections import EmbeddingModel
from cluster_pipeline.service import ConfigurationChanges
from cluster_pipeline_tests import openai_server as fake
from cluster_pipeline_tests.conftest import blob_documents


def test_ingest_a_table_or_a_file_and_delete_documents(service, tmp_path):
    report = service.collections.ingest("news", blob_documents(30))
    assert (report.num_documents, report.total_documents, report.features) == (30, 30, {"embedding": 16})
    pq.write_table(blob_documents(10, id_offset=30), tmp_path / "more.parquet")
    assert service.collections.ingest("news", tmp_path / "more.parquet").total_documents == 40
    with pytest.raises(IngestError, match="Duplicate document_id 'd0'"):
        service.collections.ingest("news", blob_documents(5))
    with pytest.raises(IngestError, match="Document 'nope' is not in collection 'news'"):
        service.collections.delete_documents("news", ["d0", "nope"])
    assert service.collections.delete_documents("news", ["d0", "d1"]) == 2
    schema = service.collections.describe("news")
    assert schema.features == {"embedding": 16} and "group" in schema.metadata_columns
    assert service.collections.list() == ["news"]
    with pytest.raises(NotFoundError, match="Collection 'other' not found"):
        service.collections.describe("other")


def test_export_with_the_clusters_of_a_configuration_named_by_its_name(service, news, tmp_path):
    config = service.configurations.create(
        ConfigurationChanges({"collection": news}, settings=[("parameters.n_clusters", 3)])
    )
    service.executions.execute(config.name)
    report = service.collections.export(news, tmp_path / "news.parquet", configuration=config.name)
    assert (report.format, report.documents, report.with_clusters) == ("parquet", 150, 150)
    exported = pq.read_table(report.path)
    assert exported.num_rows == 150 and set(exported["cluster_id"].to_pylist()) == {"cl_0", "cl_1", "cl_2"}
    service.collections.ingest("other", blob_documents(20))
    with pytest.raises(ConfigurationError, match="news-kmeans-k3 clusters collection 'news', not 'other'"):
        service.collections.export("other", tmp_path / "other.csv", configuration=config.name)
    assert not (tmp_path / "other.csv").exists()


def test_text_is_embedded_at_ingest_and_clustered_end_to_end(service, tmp_path):
    """A text-only collection: embedded by a loopback OpenAI-compatible endpoint, its model kept, clustered."""
    texts = blob_documents(150, centers=3).drop_columns(["embedding"])
    with fake.FakeOpenAIServer() as server:
        settings = EmbeddingSettings(provider="openai", model="test-embed", base_url=server.url, max_retries=0)
        report = service.collections.ingest("texts", texts, embed=["text"], embedding=settings)
        assert (report.num_documents, report.features) == (150, {"embedding": 32})
        assert service.collections.describe("texts").embedding_models == {
            "embedding": EmbeddingModel("openai", "test-embed", 32)
        }
        sent = len(server.requests)
        other = settings.model_copy(update={"model": "other-embed"})
        with pytest.raises(IngestError, match="embeds 'embedding' with openai model test-embed .32 dimensions., not"):
            service.collections.ingest("texts", blob_documents(10, id_offset=150), embed=["text"], embedding=other)
        assert len(server.requests) == sent  # refused before any text was sent
    config = service.configurations.create(
        ConfigurationChanges({"collection": "texts"}, settings=[("parameters.n_clusters", 3)])
    )
    result = service.executions.execute(config.name)
    assert result.status == "completed" and result.num_points == 150
    exported = pq.read_table(
        service.collections.export("texts", tmp_path / "t.parquet", configuration=config.name).path
    )
    assert v_measure_score(exported["group"].to_pylist(), exported["cluster_id"].to_pylist()) == 1.0


def test_a_declared_collection_is_upserted_in_batches_paged_and_deleted_when_nothing_clusters_it(service):
    info = service.collections.create("byo", "vectors of our own", {"team": "search"})
    assert (info.num_documents, info.features, info.description) == (0, {}, "vectors of our own")
    with pytest.raises(AlreadyExistsError, match="exists already"):
        service.collections.create("byo")
    service.collections.upsert("byo", blob_documents(40))
    service.collections.upsert("byo", blob_documents(30, id_offset=30, seed=1))  # d30…d39 replaced, d40…d59 new
    assert service.collections.info("byo").num_documents == 60
    page, total = service.collections.documents("byo", 55, 10)
    assert total == 60 and page.num_rows == 5 and "embedding" not in page.column_names
    with pytest.raises(IngestError):  # one bad document refuses the whole batch
        service.collections.upsert("byo", blob_documents(5, dim=8, id_offset=100))
    assert [c.collection for c in service.collections.list_info()] == ["byo"]

    config = service.configurations.create(ConfigurationChanges({"collection": "byo"}))
    with pytest.raises(ConflictError, match=f"clustered by {config.display_name}"):
        service.collections.delete("byo")
    service.configurations.delete(config.name)
    assert service.collections.delete("byo") == 60
    with pytest.raises(NotFoundError):
        service.collections.info("byo")
