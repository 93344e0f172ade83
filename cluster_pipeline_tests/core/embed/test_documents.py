"""Text embedded at ingest through the real openai client, against a loopback OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest

from cluster_pipeline.core.embed.documents import embed_documents
from cluster_pipeline.core.embed.embedders import EndpointEmbedder, embedder_for
from cluster_pipeline.core.embed.options import PACKAGED_MODEL, EmbeddingSettings
from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.progress import ProgressEvent, listening
from cluster_pipeline.core.store.collections import EmbeddingModel
from cluster_pipeline_tests import openai_server as fake


@pytest.fixture
def server():
    with fake.FakeOpenAIServer() as server:
        yield server


def endpoint(server, **changes) -> EmbeddingSettings:
    values = dict(provider="openai", model="test-embed", base_url=server.url, timeout_seconds=2.0, max_retries=1)
    return EmbeddingSettings(**{**values, **changes})


def documents(n: int = 10) -> pa.Table:
    topics = ["rocket orbit launch", "pasta garlic oven", "goal league striker"]
    return pa.table(
        {
            "document_id": [f"d{i}" for i in range(n)],
            "title": [f"Item {i}" if i % 2 else None for i in range(n)],
            "text": [f"{topics[i % 3]} news {i}" for i in range(n)],
        }
    )


def test_text_columns_become_one_feature_in_batches(server):
    events: list[ProgressEvent] = []
    with listening(events.append):
        table, model = embed_documents(
            documents(), ["title", "text"], "embedding", embedder_for(endpoint(server, batch_size=4))
        )

    assert model == EmbeddingModel("openai", "test-embed", 32)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    assert [len(r.body["input"]) for r in server.requests] == [4, 4, 2]
    assert {r.body["model"] for r in server.requests} == {"test-embed"}
    sent = [text for r in server.requests for text in r.body["input"]]
    assert sent[:2] == ["rocket orbit launch news 0", "Item 1\npasta garlic oven news 1"]  # joined one per line
    reply = fake.embeddings()(fake.Request(0, {}, {"input": sent}))
    expected = np.array([d["embedding"] for d in reply.body["data"]], dtype=np.float32)
    np.testing.assert_array_equal(
        table.column("embedding").combine_chunks().flatten().to_numpy().reshape(10, 32), expected
    )
    assert [(e.stage, e.done, e.total, e.unit) for e in events] == [
        ("embed", 4, 10, "texts"),
        ("embed", 10, 10, "texts"),
    ]


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        (
            lambda request: fake.error(404, "The model `test-embed` does not exist."),
            "The embeddings endpoint failed: HTTP 404: The model `test-embed` does not exist. (1 attempt); nothing was ingested.",
        ),
        (
            fake.server_error(503),
            "The embeddings endpoint failed: HTTP 503: The server had an error while processing your request. (2 attempts)",
        ),
        (
            lambda request: fake.Reply(body={"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}]}),
            "The embeddings endpoint answered 1 vectors of [2] dimensions for 4 texts",
        ),
        (
            lambda request: fake.Reply(
                body={"data": [{"index": i, "embedding": [0.1] * (2 + i % 2)} for i in range(4)]}
            ),
            "The embeddings endpoint answered 4 vectors of [2, 3] dimensions for 4 texts",
        ),
    ],
    ids=["unknown-model", "retried-503", "vector-count", "ragged"],
)
def test_endpoint_faults_refuse_the_batch(server, behaviour, problem):
    server.embedding = behaviour
    with pytest.raises(IngestError, match=re.escape(problem)):
        embed_documents(documents(4), ["text"], "embedding", embedder_for(endpoint(server)))


def test_a_dimension_that_changes_between_batches_is_refused(server):
    dimensions = iter([32, 16])
    server.embedding = lambda request: fake.embeddings(next(dimensions))(request)
    with pytest.raises(IngestError, match=r"answered 4 vectors of \[16\] dimensions for 4 texts \(earlier: 32\)"):
        embed_documents(documents(8), ["text"], "embedding", embedder_for(endpoint(server, batch_size=4)))


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        (["body"], "No column 'body' to embed; the documents' text columns: document_id, title, text."),
        (["count"], "Column 'count' holds int64, not text: name text columns to --embed."),
        (["title"], "Document 'd0' has no text in title (5 documents have none); every document needs text to embed."),
        ([], "--embed needs the text columns to embed, e.g. --embed text or --embed title,text."),
    ],
)
def test_columns_that_cannot_be_embedded_are_refused(server, columns, problem):
    table = documents().append_column("count", pa.array(range(10)))
    with pytest.raises(IngestError, match=re.escape(problem)):
        embed_documents(table, columns, "embedding", embedder_for(endpoint(server)))
    assert not server.requests


def test_a_column_of_the_feature_name_is_not_overwritten(server):
    table = documents().append_column("embedding", pa.array([[0.1, 0.2]] * 10))
    with pytest.raises(IngestError, match="already have a column 'embedding'"):
        embed_documents(table, ["text"], "embedding", embedder_for(endpoint(server)))


def test_the_environment_chooses_the_model(tmp_path):
    assert EmbeddingSettings.from_environment({"CLUSTER_PIPELINE_EMBEDDING_MODEL": str(tmp_path)}).provider == (
        "sentence-transformers"  # a folder on disk
    )
    assert EmbeddingSettings.from_environment({}).provider == "sentence-transformers"
    assert EmbeddingSettings.from_environment({}).model == PACKAGED_MODEL
    chosen = EmbeddingSettings.from_environment(
        {
            "CLUSTER_PIPELINE_EMBEDDING_MODEL": "nomic-embed-text",
            "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "CLUSTER_PIPELINE_EMBEDDING_BASE_URL": "http://127.0.0.1:8081/v1",
        }
    )
    assert (chosen.provider, chosen.model, chosen.base_url) == (
        "openai",
        "nomic-embed-text",
        "http://127.0.0.1:8081/v1",
    )
    with pytest.raises(IngestError, match="names a model of an embeddings endpoint, and none is set"):
        EndpointEmbedder(EmbeddingSettings.from_environment({"CLUSTER_PIPELINE_EMBEDDING_MODEL": "nomic-embed-text"}))
    assert json.loads(EmbeddingSettings().model_dump_json())["api_key"] is None
