import pytest

from cluster_pipeline.core.config import ClusterConfig, ConfigStore, parse_config, split_partition_key
from cluster_pipeline.core.errors import AlreadyExistsError, ConfigurationError, InvalidIdentifierError, NotFoundError


def test_defaults_and_partition_key():
    config = parse_config({"collection": "news", "parameters": {"n_clusters": 4}})
    assert config.cluster_id.startswith("clust_") and config.namespace == "default"
    assert config.estimator_parameters() == {"n_clusters": 4, "n_init": 3, "random_state": 0}
    assert split_partition_key(config.partition_key) == ("default", config.cluster_id)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"collection": "news", "parameters": {"k": 3}}, r"unknown parameter\(s\) k for kmeans; valid: .*n_clusters"),
        ({"collection": "news", "algorithm": "kmedoids"}, "algorithm: Input should be 'kmeans'"),
        ({"collection": "../news"}, "Invalid collection"),
        ({"collection": "news", "cluster_id": "clust_../x"}, "Invalid cluster id"),
        ({"collection": "news", "metric_sample_size": 5}, "metric_sample_size"),
        ({"collection": "news", "preprocessing": {"pca_components": 0}}, "pca_components must be at least 1"),
        ({"collection": "news", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_configurations_are_refused_with_a_readable_message(data, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_config(data)


def test_store_roundtrip_and_namespace_scope(lake):
    store = ConfigStore(lake)
    config = store.create(parse_config({"collection": "news", "namespace": "prod", "algorithm": "hdbscan"}))
    assert store.get("prod", config.cluster_id) == config
    assert [c.cluster_id for c in store.list("prod")] == [config.cluster_id]
    assert store.list("dev") == []
    with pytest.raises(NotFoundError):
        store.get("dev", config.cluster_id)
    with pytest.raises(AlreadyExistsError):
        store.create(config)
    with pytest.raises(InvalidIdentifierError):
        store.get("prod", "../../etc/passwd")


def test_model_is_strict_about_types():
    with pytest.raises(ConfigurationError, match="triggers.min_new_documents"):
        parse_config({"collection": "news", "triggers": {"min_new_documents": 0}})
    assert ClusterConfig(collection="n").labeling.representative_documents == 10


def test_parameters_are_checked_at_creation_not_again_when_read_back(lake):
    with pytest.raises(ConfigurationError, match="unknown parameter"):
        parse_config({"collection": "news", "parameters": {"k": 3}})
    # read back from the lake (written after the full check): no estimator import, no second check
    assert parse_config({"collection": "news", "parameters": {"n_clusters": 3}}, stored=True).parameters == {
        "n_clusters": 3
    }
    config = ConfigStore(lake).create(parse_config({"collection": "news", "kmeans_engine": "sklearn"}))
    assert ConfigStore(lake).get("default", config.cluster_id).kmeans_engine == "sklearn"
