"""LLM labels through Dagster: the resource as definitions builds it, a loopback endpoint, real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, EnvVar

from cluster_pipeline.core.labels.llm import LLMLabeler
from cluster_pipeline.core.labels.options import LLMSettings
from cluster_pipeline.definitions import build_definitions, llm_resource
from cluster_pipeline.resources import LLMResource
from cluster_pipeline_tests import openai_server as fake
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config

API_KEY = "sk-test-DAGSTER-SECRET-0123456789"


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        yield instance


@pytest.fixture
def server():
    with fake.FakeOpenAIServer() as server:
        yield server


def metadata_of(outcome, asset: str) -> dict:
    events = {
        event.asset_key.to_user_string(): event.event_specific_data.materialization
        for event in outcome.get_asset_materialization_events()
    }
    return {key: value.value for key, value in events[asset].metadata.items()}


def assert_no_secret_anywhere(tmp_path: Path, instance: DagsterInstance, outcome, *texts: str) -> None:
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"SECRET" not in path.read_bytes(), path
    logs = "\n".join(str(event.message) + repr(event.dagster_event) for event in instance.all_logs(outcome.run_id))
    assert "SECRET" not in logs
    for text in texts:
        assert "SECRET" not in text


def test_llm_labels_and_usage_through_dagster(lake, collections, instance, server, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    collections.ingest("default", "c", blob_documents(90, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})

    outcome, result = materialize_config(lake, config, instance, resources={"llm": llm_resource()})

    assert outcome.success and result.status == "completed"
    assert {c.label_source for c in result.centroids} == {"llm"} and result.llm_labeling_errors == []
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    labels = metadata_of(outcome, "cluster_labels")
    assert labels["llm_calls"] == 3 and labels["llm_fallbacks"] == 0 and labels["llm_model"] == "gpt-4o-mini"
    assert labels["llm_total_tokens"] == result.llm_usage["total_tokens"] > 0
    assert {c.label for c in result.centroids} == set(labels["labels"].values())

    again, second = materialize_config(lake, config, instance, resources={"llm": llm_resource()})
    assert len(server.requests) == 3 and metadata_of(again, "cluster_labels")["llm_cache_hits"] == 3
    assert second.centroids == result.centroids
    assert_no_secret_anywhere(tmp_path, instance, outcome, *capfd.readouterr())


def test_llm_faults_fall_back_and_the_run_still_completes(lake, collections, instance, server, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    server.default = fake.echo_authorization()  # quotes our key back in every error
    collections.ingest("default", "c", blob_documents(90, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3})
    llm = LLMResource(api_key=EnvVar("OPENAI_API_KEY"), base_url=server.url, max_retries=1)

    outcome, result = materialize_config(lake, config, instance, resources={"llm": llm})

    assert outcome.success and result.status == "completed"
    assert {c.label_source for c in result.centroids} == {"offline"}
    assert [e["cluster_id"] for e in result.llm_labeling_errors] == ["cl_0", "cl_1", "cl_2"]
    assert all("Bearer [redacted]" in e["error"] for e in result.llm_labeling_errors)
    labels = metadata_of(outcome, "cluster_labels")
    assert labels["llm_fallbacks"] == 3 and labels["llm_calls"] == 6
    assert labels["llm_labeling_errors"] == result.llm_labeling_errors
    warnings = [e.message for e in instance.all_logs(outcome.run_id) if "keeps its offline label" in str(e.message)]
    assert len(warnings) == 3
    assert_no_secret_anywhere(tmp_path, instance, outcome)


def test_use_llm_false_keeps_labels_offline(lake, collections, server):
    collections.ingest("default", "c", blob_documents(90, centers=3))
    config = create_config(lake, parameters={"n_clusters": 3}, labeling={"use_llm": False})
    llm = LLMResource(api_key="sk-unused", base_url=server.url)
    with DagsterInstance.ephemeral() as instance:
        outcome, result = materialize_config(lake, config, instance, resources={"llm": llm})
    assert outcome.success and {c.label_source for c in result.centroids} == {"offline"}
    assert not server.requests and "llm_calls" not in metadata_of(outcome, "cluster_labels")


def test_definitions_take_the_llm_from_the_environment(lake, monkeypatch):
    assert llm_resource().labeler(lake, "default") is None  # no key, no base URL: offline, nothing fails
    assert "llm" in build_definitions().resources

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("CLUSTER_PIPELINE_LLM_MODEL", "gpt-4.1-mini")
    resource = llm_resource()
    assert isinstance(resource.api_key, EnvVar)  # resolved at run time, never written into config
    labeler = resource.process_config_and_initialize().labeler(lake, "default")
    assert isinstance(labeler, LLMLabeler) and labeler.settings.model == "gpt-4.1-mini"
    assert labeler.settings.api_key == API_KEY and labeler.settings.base_url is None


def test_the_resource_is_configured_by_the_settings_fields():
    def declared(model: type[LLMSettings]) -> dict[str, tuple]:
        return {name: (field.default, field.description) for name, field in model.model_fields.items()}

    assert declared(LLMResource) == declared(LLMSettings)
    with pytest.raises(ValueError, match="greater than 0"):
        LLMResource(timeout_seconds=0)
