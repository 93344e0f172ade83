"""The LLM that names clusters, as a Dagster resource: any OpenAI-compatible endpoint.

OpenAI itself needs only ``OPENAI_API_KEY``; Azure OpenAI, vLLM, Ollama or llama.cpp's server
need ``base_url`` (a key only if the server checks one). With neither a key nor a base_url the
resource hands out no labeler and clusters keep their offline keyword labels. Its fields are
``LLMSettings``' own (inherited, so declared once); give ``api_key`` as ``EnvVar("OPENAI_API_KEY")``.
"""

from __future__ import annotations

import dagster as dg

from cluster_pipeline.core.labels.base import Labeler
from cluster_pipeline.core.labels.cache import LabelCache
from cluster_pipeline.core.labels.llm import LLMLabeler
from cluster_pipeline.core.labels.options import LLMSettings
from cluster_pipeline.core.store.lake import Lake


class LLMResource(dg.ConfigurableResource, LLMSettings):
    """Model, endpoint and limits of the labeling LLM (``LLMSettings``' fields)."""

    def labeler(self, lake: Lake, namespace: str) -> Labeler | None:
        """An LLM labeler caching in ``namespace`` of ``lake``, or None when no endpoint is configured."""
        if not self.enabled:
            return None
        settings = LLMSettings(**{name: getattr(self, name) for name in LLMSettings.model_fields})
        return LLMLabeler(settings, LabelCache(lake, namespace))
