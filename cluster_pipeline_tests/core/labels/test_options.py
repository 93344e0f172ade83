"""The labels stage's options: a configuration's ``labeling`` block and the LLM settings."""

from __future__ import annotations

import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.labels.options import LabelingOptions, LLMSettings


def test_an_output_schema_that_is_no_json_schema_is_refused_at_creation():
    data = {"collection": "c", "labeling": {"output_schema": {"properties": {"audience": {"type": "strnig"}}}}}
    with pytest.raises(ConfigurationError, match=r"labeling\.output_schema: not a valid JSON schema \(") as error:
        parse_config(data)
    assert "\n" not in str(error.value)
    assert parse_config(data, stored=True).labeling.output_schema == data["labeling"]["output_schema"]
    good = {"properties": {"audience": {"type": "string", "enum": ["experts", "general public"]}}}
    assert parse_config({"collection": "c", "labeling": {"output_schema": good}}).labeling == LabelingOptions(
        output_schema=good
    )


def test_llm_settings_are_off_without_an_endpoint_and_keep_the_key_out_of_repr():
    assert not LLMSettings().enabled and not LLMSettings(api_key="", base_url="").enabled
    settings = LLMSettings(api_key="sk-test-SECRET-0123456789")
    assert settings.enabled and settings.base_url is None and "SECRET" not in repr(settings)
