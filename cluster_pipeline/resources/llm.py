"""The LLM that names clusters, as a Dagster resource: any OpenAI-compatible endpoint (OpenAI itself
with ``OPENAI_API_KEY``; Azure OpenAI, vLLM, Ollama or llama.cpp's server with ``base_url``). With
neither a key nor a base_url it hands out no labeler and clusters keep their offline keyword labels."""

import dagster as dg

from cluster_pipeline.core.labels.base import Labeler
from cluster_pipeline.core.labels.options import LLMSettings
from cluster_pipeline.core.store.lake import Lake


class LLMResource(dg.ConfigurableResource, LLMSettings):
    """Model, endpoint and limits of the labeling LLM (``LLMSettings``' fields)."""

    def labeler(self, lake: Lake, namespace: str) -> Labeler | None:
        """An LLM labeler caching in ``namespace`` of ``lake``, or None when no endpoint is configured."""
        if not self.enabled:
            return None
        # the labeler, its cache and the offline labels they fall back on (scipy, pandas) load at run time
        from cluster_pipeline.core.labels.cache import LabelCache
        from cluster_pipeline.core.labels.llm import LLMLabeler

        settings = LLMSettings(**{name: getattr(self, name) for name in LLMSettings.model_fields})
        return LLMLabeler(settings, LabelCache(lake, namespace))
