"""The LLM as a Dagster resource: any OpenAI-compatible endpoint, or none (offline labels)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from cluster_pipeline.core.execution import Labeler
from cluster_pipeline.core.lake import Lake
from cluster_pipeline.core.llm_labeling import LabelCache, LLMLabeler, LLMSettings


class LLMResource(ConfigurableResource):
    """OpenAI, Azure OpenAI's v1 endpoint, vLLM, Ollama or llama.cpp's server.

    Give ``api_key`` (from ``EnvVar("OPENAI_API_KEY")``) for OpenAI, ``base_url`` for a local server;
    with neither, clusters keep their offline c-TF-IDF labels.
    """

    model: str = Field("gpt-4o-mini", description="Chat model name as the endpoint knows it.")
    base_url: str | None = Field(None, description="e.g. http://localhost:11434/v1 for Ollama; default OpenAI.")
    api_key: str | None = Field(None, description="Secret: set through EnvVar('OPENAI_API_KEY').")
    timeout_seconds: float = Field(30.0, gt=0)
    max_concurrency: int = Field(4, ge=1, le=64, description="Clusters labelled at once.")
    max_retries: int = Field(3, ge=0, le=10, description="Retries per cluster before its offline fallback.")
    backoff_seconds: float = Field(1.0, ge=0, description="First backoff; doubles per retry, with jitter.")

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.base_url)

    def labeler(self, lake: Lake) -> Labeler | None:
        """An LLM labeler caching in ``lake``, or None when no endpoint is configured."""
        if not self.configured:
            return None
        settings = LLMSettings(
            model=self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            timeout_seconds=self.timeout_seconds,
            max_concurrency=self.max_concurrency,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
        )
        return LLMLabeler(settings, cache=lambda namespace: LabelCache(lake, namespace))
