import re

import pytest

from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.config.store import ConfigStore, default_name, split_partition_key
from cluster_pipeline.core.errors import AlreadyExistsError, ConfigurationError, InvalidIdentifierError, NotFoundError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.options import ClusteringOptions, ReductionOptions
from cluster_pipeline.core.quality.metrics import MetricsOptions
from cluster_pipeline.core.topics.options import TopicsOptions


def test_defaults_and_partition_key():
    config = parse_config({"collection": "news", "parameters": {"n_clusters": 4}})
    assert config.cluster_id.startswith("clust_") and config.namespace == "default"
    assert config.estimator_parameters() == {"n_clusters": 4, "n_init": 3, "random_state": 0}
    named = config.model_copy(update={"name": "news-kmeans-k4"})
    assert named.partition_key == "default.news-kmeans-k4"
    assert split_partition_key(named.partition_key) == ("default", "news-kmeans-k4")
    # a configuration saved before names existed keeps its clust_ partition (and its Dagster history)
    assert config.partition_key == f"default.{config.cluster_id}"
    assert split_partition_key(config.partition_key) == ("default", config.cluster_id)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"collection": "agnews", "parameters": {"n_clusters": 4}}, "agnews-kmeans-k4"),
        (
            {"collection": "AG_News", "algorithm": "hdbscan", "parameters": {"min_cluster_size": 50}},
            "ag_news-hdbscan-mcs50",
        ),
        ({"collection": "news", "algorithm": "dbscan", "parameters": {"eps": 0.25}}, "news-dbscan-eps0.25"),
        ({"collection": "news", "algorithm": "gaussian_mixture"}, "news-gaussian_mixture-k8"),
        (
            {"collection": "news", "algorithm": "bisecting_kmeans", "parameters": {"n_clusters": 4}},
            "news-bisecting_kmeans-k4",
        ),
        ({"collection": "news", "algorithm": "mean_shift"}, "news-mean_shift"),
        (
            {"collection": "shop", "algorithm": "attribute_based", "parameters": {"attributes": "category,brand"}},
            "shop-attribute_based-category-brand",
        ),
    ],
)
def test_names_are_derived_from_collection_algorithm_and_main_parameter(lake, data, name):
    assert default_name(parse_config(data)) == name
    assert ConfigStore(lake).create(parse_config(data)).name == name


def test_names_are_unique_in_a_namespace(lake):
    store = ConfigStore(lake)
    news = {"collection": "news", "parameters": {"n_clusters": 4}}
    first, second = store.create(parse_config(news)), store.create(parse_config(news))
    assert (first.name, second.name) == ("news-kmeans-k4", "news-kmeans-k4-2")
    assert store.create(parse_config({**news, "namespace": "other"})).name == "news-kmeans-k4"
    with pytest.raises(
        AlreadyExistsError, match=rf"named 'news-kmeans-k4' exists already .*{first.cluster_id}.*--name"
    ):
        store.create(parse_config({**news, "name": "news-kmeans-k4"}))
    assert store.create(parse_config({**news, "name": "my-news"})).name == "my-news"
    # both forms resolve, in the configuration's own namespace only
    assert store.resolve("default", "news-kmeans-k4-2") == second == store.resolve("default", second.cluster_id)
    assert store.for_partition("default.my-news").name == "my-news"
    with pytest.raises(NotFoundError, match="No cluster configuration named 'my-news' in namespace 'other'"):
        store.resolve("other", "my-news")


def test_a_name_claim_left_by_a_dead_creation_is_taken_over(lake):
    store = ConfigStore(lake)
    lake.storage.write_new(
        lake.cluster_name_key("default", "news-kmeans-k4"), b'{"cluster_id": "clust_0000000000dead"}'
    )
    assert store.create(parse_config({"collection": "news", "parameters": {"n_clusters": 4}})).name == "news-kmeans-k4"


def test_configurations_without_a_name_keep_working(lake):
    legacy = parse_config({"collection": "news"})  # as written before names existed: no name in the file
    lake.storage.write_new(lake.cluster_config_key("default", legacy.cluster_id), legacy.model_dump_json().encode())
    store = ConfigStore(lake)
    assert store.for_partition(f"default.{legacy.cluster_id}") == legacy
    assert legacy.display_name == legacy.cluster_id


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("my-new-config", "no '.' between namespace and configuration"),
        ("default.", "Invalid configuration name ''"),
        ("default.My Config", "Invalid configuration name 'My Config'"),
        ("default.clust_x", "Invalid configuration name 'clust_x'"),
        ("../etc.passwd", "Invalid namespace"),
    ],
)
def test_partition_keys_that_name_no_configuration_are_refused(key, message):
    with pytest.raises(
        InvalidIdentifierError, match=f"Partition '{re.escape(key)}' is not a cluster configuration's.*{message}"
    ):
        split_partition_key(key)


def test_names_are_validated():
    with pytest.raises(ConfigurationError, match="Invalid configuration name 'Big News'"):
        parse_config({"collection": "news", "name": "Big News"})
    with pytest.raises(ConfigurationError, match="not with 'clust_'"):
        parse_config({"collection": "news", "name": "clust_0123456789"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"collection": "news", "parameters": {"k": 3}}, r"unknown parameter\(s\) k for kmeans; valid: .*n_clusters"),
        ({"collection": "news", "algorithm": "kmedoids"}, "algorithm: Input should be 'kmeans'"),
        ({"collection": "../news"}, "Invalid collection"),
        ({"collection": "news", "cluster_id": "clust_../x"}, "Invalid cluster id"),
        ({"collection": "news", "metric_sample_size": 5}, "metric_sample_size"),
        ({"collection": "news", "preprocessing": {"pca_components": 0}}, "reduction.n_components: Input should be"),
        ({"collection": "news", "reduction": {"method": "tsne"}}, "reduction.method: Input should be 'auto'"),
        ({"collection": "news", "algorithm": "birch", "parameters": {"n_clusters": "auto"}}, "not available for birch"),
        ({"collection": "news", "parameters": {"n_clusters": "auto", "k_min": 1}}, "k_min must be an integer of at"),
        ({"collection": "news", "parameters": {"n_clusters": "auto", "k_min": 9, "k_max": 4}}, "must not exceed k_max"),
        ({"collection": "news", "parameters": {"k_max": 9}}, "k_min and k_max go with n_clusters='auto'"),
        ({"collection": "news", "max_clusters": 0}, "max_clusters: Input should be greater than or equal to 1"),
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


def test_auto_k_and_topic_options_are_accepted():
    config = parse_config(
        {
            "collection": "news",
            "algorithm": "gaussian_mixture",
            "parameters": {"n_components": "auto", "k_max": 6},
            "max_clusters": 5,
            "reassign_noise": True,
        }
    )
    spec = registry.spec(config.algorithm)
    assert spec.auto_k_parameter(config.parameters) == "n_components" and config.estimator_parameters()["k_max"] == 6
    assert registry.spec("kmeans").auto_k_parameter({"n_clusters": 4}) is None


@pytest.mark.parametrize(
    ("pca_components", "reduction"),
    [("auto", {"method": "auto"}), (None, {"method": "none"}), (12, {"method": "pca", "n_components": 12})],
)
def test_preprocessing_pca_components_becomes_a_reduction(pca_components, reduction):
    """Configurations saved before ``reduction`` existed keep their meaning."""
    config = parse_config(
        {"collection": "news", "preprocessing": {"normalize": True, "pca_components": pca_components}}
    )
    assert config.reduction.model_dump(include=set(reduction)) == reduction
    assert config.preprocessing.normalize


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"parameters": {"n_clusters": 0}}, r"'n_clusters' parameter of kmeans must be an int in the range \[1, inf\)"),
        ({"parameters": {"n_clusters": -3}}, "Got -3 instead"),
        ({"parameters": {"n_clusters": "abc"}}, "Got 'abc' instead"),
        ({"parameters": {"n_clusters": 2.5}}, "Got 2.5 instead"),
        ({"parameters": {"n_clusters": True}}, "must be a number, got True"),
        (
            {"algorithm": "dbscan", "parameters": {"eps": -1}},
            r"'eps' parameter of dbscan must be a float in the range \(0.0, inf\)",
        ),
        ({"algorithm": "hdbscan", "parameters": {"min_cluster_size": 1}}, "'min_cluster_size' parameter of hdbscan"),
        ({"algorithm": "gaussian_mixture", "parameters": {"covariance_type": "round"}}, "covariance_type"),
        ({"triggers": {"timezone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
        ({"triggers": {"schedule": "not a cron"}}, "'not a cron' is not a 5-field cron"),
        ({"triggers": {"schedule": "0 0 30 2 *"}}, "is not a 5-field cron"),  # 30 February never comes
        ({"triggers": {"schedule": "* * * * * *"}}, "is not a 5-field cron"),  # seconds: Dagster cannot run it
        ({"sample_size": 1}, "sample_size"),
    ],
)
def test_parameters_cron_and_timezone_are_validated_at_create(data, message):
    """Issue 12, items 8 and 9: refused at create, not at execute or in every sensor tick."""
    with pytest.raises(ConfigurationError, match=message):
        parse_config({"collection": "news", **data})


def test_valid_schedules_and_timezones_are_kept():
    config = parse_config({"collection": "news", "triggers": {"schedule": "nightly", "timezone": "Europe/Paris"}})
    assert config.triggers.schedule == "nightly"
    assert parse_config({"collection": "news", "triggers": {"schedule": "*/15 * * * *"}}).triggers.schedule


def test_an_unreadable_configuration_file_is_skipped_with_a_warning(lake):
    """Issue 12, item 13: one broken file never hides the others (or stops a sensor)."""
    store = ConfigStore(lake)
    good = store.create(parse_config({"collection": "news"}))
    broken = lake.storage.path(lake.cluster_config_key("default", "clust_0000000000broken"))
    broken.write_text("{not json")
    legacy = lake.storage.path(lake.cluster_config_key("default", "clust_0000000000legacy"))
    legacy.write_text(parse_config({"collection": "news"}).model_dump_json().replace('"UTC"', '"Mars/Olympus"'))
    configs, problems = store.scan("default")
    assert [c.cluster_id for c in configs] == [good.cluster_id]
    assert len(problems) == 2 and all("Fix the file or delete it" in p for p in problems)
    assert [c.cluster_id for c in store.list_all()] == [good.cluster_id]
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        store.get("default", "clust_0000000000legacy")


def test_the_dagster_instance_folder_is_not_a_namespace():
    """Issue 12, item 13: namespace 'dagster_home' would land inside the Dagster instance's folder."""
    with pytest.raises(ConfigurationError, match="reserved"):
        parse_config({"collection": "news", "namespace": "dagster_home"})


def test_parameters_are_checked_at_creation_not_again_when_read_back(lake):
    with pytest.raises(ConfigurationError, match="unknown parameter"):
        parse_config({"collection": "news", "parameters": {"k": 3}})
    # read back from the lake (written after the full check): no estimator import, no second check
    assert parse_config({"collection": "news", "parameters": {"n_clusters": 3}}, stored=True).parameters == {
        "n_clusters": 3
    }
    config = ConfigStore(lake).create(parse_config({"collection": "news", "kmeans_engine": "sklearn"}))
    assert ConfigStore(lake).get("default", config.cluster_id).kmeans_engine == "sklearn"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"features": ["a", "b"], "combine": "weighted"}, "one weight per feature: no weights for 2 features"),
        ({"features": ["a", "b"], "combine": "weighted", "weights": [1.0]}, "1 weights for 2 features"),
        ({"features": ["a", "b"], "combine": "weighted", "weights": [1.0, -1.0]}, "weights must be positive"),
        ({"features": ["a", "b"], "weights": [1.0, 2.0]}, "weights go with combine='weighted'"),
        ({"features": ["a", "b"], "combine": "independent"}, "one ExecutionResult under one run_id"),
        ({"features": ["a", "a"]}, "lists a column twice"),
        ({"features": ["a", "b"], "feature": "c"}, "disagree"),
        ({"filters": {"field": "x", "operator": "~", "value": 1}}, r"filters: unknown operator '~'"),
        ({"algorithm": "attribute_based"}, "attribute_based needs attributes"),
        ({"algorithm": "attribute_based", "parameters": {"attributes": ["a"], "max_groups": 1}}, "max_groups must be"),
        ({"algorithm": "attribute_based", "parameters": {"attributes": ["a"], "n_clusters": 3}}, "unknown parameter"),
        ({"algorithm": "attribute_based", "parameters": {"attributes": ["a"]}, "sample_size": 10}, "does not apply"),
        ({"algorithm": "attribute_based", "parameters": {"attributes": ["a"]}, "max_clusters": 3}, "does not apply"),
        ({"centroid_method": "mode"}, "centroid_method"),
        ({"fit_sample_size": 10, "sample_size": 20}, "old name of sample_size"),
    ],
)
def test_what_to_cluster_is_validated_at_create(data, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_config({"collection": "news", **data})


def test_fit_sample_size_is_read_as_sample_size_and_features_set_feature():
    """Configurations saved by issue 12 named the fit sample fit_sample_size."""
    assert parse_config({"collection": "news", "fit_sample_size": 500}, stored=True).sample_size == 500
    config = parse_config({"collection": "news", "features": ["text_vec", "image_vec"]})
    assert config.feature == "text_vec" and config.feature_names == ["text_vec", "image_vec"]
    assert parse_config(config.model_dump(mode="json"), stored=True) == config  # stored and read back


STORED_FIELDS = [
    "cluster_id", "name", "namespace", "collection", "feature", "features", "combine", "weights", "filters",
    "algorithm", "parameters", "preprocessing", "reduction", "max_clusters", "reassign_noise", "metric_sample_size",
    "plot_projection", "memory_budget_mb", "sample_size", "centroid_method", "max_fit_seconds", "hdbscan_backend",
    "kmeans_engine", "labeling", "triggers", "webhooks", "time_column", "checks", "description", "created_at",
    "version", "updated_at",
]  # fmt: skip


def test_each_stage_gets_its_own_options_and_the_stored_json_stays_flat():
    data = {
        "collection": "news",
        "algorithm": "hdbscan",
        "parameters": {"min_cluster_size": 20},
        "preprocessing": {"normalize": False},
        "reduction": {"method": "umap", "n_neighbors": 30},
        "sample_size": 500,
        "max_clusters": 4,
        "reassign_noise": True,
        "centroid_method": "medoid",
        "hdbscan_backend": "hdbscan",
        "memory_budget_mb": 512,
        "max_fit_seconds": 60,
        "metric_sample_size": 2000,
        "time_column": "published",
        "labeling": {"text_fields": ["title"], "num_keywords": 5},
    }
    config = parse_config(data)
    assert config.clustering == ClusteringOptions(
        algorithm="hdbscan",
        parameters={"min_cluster_size": 20},
        normalize=False,
        reduction=ReductionOptions(method="umap", n_neighbors=30),
        sample_size=500,
        max_clusters=4,
        reassign_noise=True,
        centroid_method="medoid",
        hdbscan_backend="hdbscan",
        memory_budget_mb=512,
        max_fit_seconds=60,
    )
    assert config.metrics == MetricsOptions(sample_size=2000)
    assert config.topics == TopicsOptions(time_column="published", text_fields=["title"], num_keywords=5)
    stored = config.model_dump(mode="json")  # the file format: flat fields, in this order
    assert list(stored) == STORED_FIELDS and stored["reduction"]["n_neighbors"] == 30
    assert {name: stored[name] for name in ("sample_size", "centroid_method", "metric_sample_size")} == {
        "sample_size": 500,
        "centroid_method": "medoid",
        "metric_sample_size": 2000,
    }
    assert parse_config(stored, stored=True) == config


def test_the_algorithm_is_one_of_the_registrys():
    names = registry.names()
    assert names[0] == "kmeans" and "bisecting_kmeans" in names and "attribute_based" in names
    with pytest.raises(ConfigurationError) as refused:
        parse_config({"collection": "news", "algorithm": "kmedoids"})
    assert str(refused.value).endswith(f"Input should be {', '.join(map(repr, names[:-1]))} or {names[-1]!r}")
