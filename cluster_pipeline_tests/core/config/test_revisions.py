"""How a configuration changes: what may change, and what makes a new version."""

import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.config.revisions import revise
from cluster_pipeline.core.errors import ConfigurationError


@pytest.fixture
def current():
    return parse_config({"collection": "news", "parameters": {"n_clusters": 4}})


def test_what_an_execution_computes_makes_a_new_version(current):
    data = current.model_dump(mode="json")
    revision = revise(current, {**data, "parameters": {"n_clusters": 6}, "sample_size": 500})
    assert revision.new_version and revision.config.version == 2 and revision.changed == ["parameters", "sample_size"]
    assert revision.config.updated_at is not None and revision.config.created_at == current.created_at


def test_description_triggers_and_checks_keep_the_version(current):
    data = current.model_dump(mode="json")
    revision = revise(current, {**data, "description": "news", "checks": {"min_silhouette": 0.1}})
    assert not revision.new_version and revision.config.version == 1
    assert revision.changed == ["checks", "description"]  # in the configuration's field order


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"collection": "other"}, "collection of clust_.* cannot change"),
        ({"namespace": "team"}, "namespace of clust_.* cannot change"),
        ({"name": "renamed"}, "name of clust_.* cannot change \\(it is the configuration's Dagster partition"),
        ({"parameters": {"n_clusters": 0}}, "'n_clusters' parameter of kmeans"),
        ({}, "Nothing to change"),
    ],
)
def test_refused_revisions(current, change, message):
    with pytest.raises(ConfigurationError, match=message):
        revise(current, {**current.model_dump(mode="json"), **change})
