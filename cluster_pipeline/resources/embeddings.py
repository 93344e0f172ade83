"""Text embeddings as a Dagster resource: what ``cluster-pipeline ingest --embed`` uses, for an asset of one's
own that ingests text (``core.embed.documents.embed_documents`` with ``embedder()``). A local
sentence-transformers model (the ``[embed]`` extra) or any OpenAI-compatible embeddings endpoint."""

import dagster as dg

from cluster_pipeline.core.embed.embedders import Embedder, embedder_for
from cluster_pipeline.core.embed.options import EmbeddingSettings


class EmbeddingResource(dg.ConfigurableResource, EmbeddingSettings):
    """Provider, model, endpoint and batch size of text embeddings (``EmbeddingSettings``' fields)."""

    def embedder(self) -> Embedder:
        return embedder_for(EmbeddingSettings(**{name: getattr(self, name) for name in EmbeddingSettings.model_fields}))
