"""The LLM that names clusters, as a Dagster resource: any OpenAI-compatible endpoint.

OpenAI itself needs only ``OPENAI_API_KEY``; Azure OpenAI, vLLM, Ollama or llama.cpp's server
need ``base_url`` (a key only if the server checks one). With neither a key nor a base_url the
resource hands out no labeler and clusters keep their offline keyword labels.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from cluster_pipeline.core.labels.base import Labeler
from cluster_pipeline.core.labels.llm import LLMLabeler, LLMSettings
from cluster_pipeline.core.store.lake import Lake


class LLMResource(ConfigurableResource):
    """Model, endpoint and limits of the labeling LLM. Give ``api_key`` as ``EnvVar("OPENAI_API_KEY")``."""

    model: str = Field("gpt-4o-mini", description="Chat model name as the endpoint knows it.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    api_key: str | None = Field(None, description="Secret; pass EnvVar('OPENAI_API_KEY'), never a literal.")
    timeout_seconds: float = Field(60.0, gt=0, description="Per request.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Clusters labeled at once.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries per cluster before its offline fallback.")
    backoff_seconds: float = Field(1.0, ge=0, description="First backoff step; doubles per retry, with jitter.")
    max_backoff_seconds: float = Field(60.0, ge=0, description="Longest wait, Retry-After included.")
    temperature: float | None = Field(0.0, description="None for models that refuse the parameter.")
    structured_output: bool = Field(True, description="Ask for json_schema output (falls back by itself).")

    def settings(self) -> LLMSettings:
        return LLMSettings(
            model=self.model,
            base_url=self.base_url or None,
            api_key=self.api_key or None,
            timeout_seconds=self.timeout_seconds,
            max_concurrency=self.max_concurrency,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            temperature=self.temperature,
            structured_output=self.structured_output,
        )

    def labeler(self, lake: Lake) -> Labeler | None:
        """An LLM labeler caching in ``lake``, or None when no endpoint is configured."""
        settings = self.settings()
        return LLMLabeler(settings, lake=lake) if settings.enabled else None
