"""What the labels stage is given: per configuration (``LabelingOptions``) and per deployment (``LLMSettings``).

``LabelingOptions`` is the ``labeling`` block of a cluster configuration's JSON; it lives with the
stage that reads it, and the configuration holds it as a field. ``LLMSettings`` is where the LLM is
and how hard to try; ``resources.llm.LLMResource`` inherits its fields, so they are declared once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class LabelingOptions(BaseModel):
    """How clusters are named: offline keywords always; an LLM when one is configured and enabled."""

    model_config = ConfigDict(extra="forbid")

    use_llm: bool = Field(True, description="Ask the configured LLM; without one, labels stay offline.")
    text_fields: list[str] | None = Field(None, description="Columns holding text; default title/text.")
    num_keywords: int = Field(8, ge=3, le=10)
    representative_documents: int = Field(10, ge=1, le=20)
    max_chars_per_document: int = Field(600, ge=50, le=4000)
    prompt_template: str | None = None
    output_schema: dict[str, Any] | None = None

    @field_validator("output_schema")
    @classmethod
    def _valid_json_schema(cls, schema: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        """A schema that is not one would fail every cluster's reply; refuse it when it is created (a stored
        configuration was checked then, and must load whatever a newer check says)."""
        if schema is not None and not (info.context or {}).get("stored"):
            from jsonschema import Draft202012Validator, SchemaError  # 0.1 s of start-up, for this only

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as error:
                raise ValueError(f"not a valid JSON schema ({error.message}); see https://json-schema.org") from None
        return schema


class LLMSettings(BaseModel):
    """How to reach the LLM and how hard to try (the ``openai`` client's own retries, backoff and
    ``Retry-After``). With neither ``api_key`` nor ``base_url`` the LLM is off."""

    model: str = Field("gpt-4o-mini", description="Chat model name as the endpoint knows it.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    api_key: str | None = Field(None, repr=False, description="Secret; pass EnvVar('OPENAI_API_KEY'), never a literal.")
    timeout_seconds: float = Field(60.0, gt=0, description="Per request.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Clusters labeled at once.")
    max_retries: int = Field(4, ge=0, le=20, description="The client's retries per request before the offline label.")
    temperature: float | None = Field(0.0, description="None for models that refuse the parameter.")
    structured_output: bool = Field(True, description="Ask for json_schema output (falls back by itself).")

    @field_validator("base_url", "api_key")
    @classmethod
    def _unset_when_empty(cls, value: str | None) -> str | None:
        return value or None

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.base_url)
