"""What the labels stage is given: per configuration (``LabelingOptions``) and per deployment (``LLMSettings``).

``LabelingOptions`` is the ``labeling`` block of a cluster configuration's JSON; it lives with the
stage that reads it, and the configuration holds it as a field. ``LLMSettings`` is where the LLM is
(``core.endpoint``'s settings, shared with text embeddings) and how hard to try;
``resources.llm.LLMResource`` inherits its fields, so they are declared once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cluster_pipeline.core.endpoint import EndpointSettings


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


class LLMSettings(EndpointSettings):
    """Which chat model names clusters and how hard to try. ``max_tokens`` bounds a reply (a small model
    can otherwise write until its context is full); a timeout halves ``max_concurrency`` for the rest of
    the stage (a one-request-at-a-time server queues the others past their timeout); ``deadline_seconds``
    bounds the whole stage: clusters not labelled by then keep their offline labels."""

    model: str = Field("gpt-4o-mini", description="Chat model name as the endpoint knows it.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Clusters labeled at once; a timeout halves it.")
    temperature: float | None = Field(0.0, description="None for models that refuse the parameter.")
    structured_output: bool = Field(True, description="Ask for json_schema output (falls back by itself).")
    max_tokens: int | None = Field(
        512, ge=64, description="Longest reply, in tokens (label, summary, keywords and any schema fields fit in "
        "about 200); None for endpoints that refuse the parameter."
    )  # fmt: skip
    deadline_seconds: float = Field(
        600.0, gt=0, description="The labels stage's time limit; clusters not labeled by then keep offline labels."
    )
