"""The algorithm registry: one spec per algorithm, asked by every other module."""

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.fit.reduction import plan_reduction

PACKAGE = Path(registry.__file__).resolve().parents[2]
ESTIMATED = [name for name in registry.names() if registry.spec(name).estimator is not None]


def test_names_are_the_specs_in_order_and_an_unknown_name_lists_them():
    assert registry.names() == [spec.name for spec in registry.SPECS]
    assert len(set(registry.names())) == len(registry.names())
    with pytest.raises(ValueError, match="unknown algorithm 'kmedoids'; one of kmeans, minibatch_kmeans"):
        registry.spec("kmedoids")


@pytest.mark.parametrize("name", ESTIMATED)
def test_every_spec_speaks_its_estimators_language(name):
    spec = registry.spec(name)
    parameters = set(spec.estimator_class()().get_params())
    assert set(spec.defaults) <= parameters
    assert spec.k_parameter is None or spec.k_parameter in parameters
    assert spec.label is None or spec.label[0] in parameters
    spec.validate(ClusteringOptions(algorithm=name))  # its defaults pass its own checks


def test_the_auto_reduction_follows_density():
    def auto(name: str, dimensions: int = 384) -> str:
        return plan_reduction(ClusteringOptions().reduction, registry.spec(name).default_reduction, dimensions).method

    assert {name for name in registry.names() if auto(name) == "umap"} == {"hdbscan", "dbscan", "optics"}
    assert auto("mean_shift") == "pca" and auto("kmeans") == "none" and auto("hdbscan", 50) == "none"


def test_what_the_specs_say_of_each_family():
    centred = {name for name in registry.names() if registry.spec(name).has_centres}
    assert centred == {"kmeans", "minibatch_kmeans", "bisecting_kmeans", "gaussian_mixture", "birch", "mean_shift"}
    assert [name for name in registry.names() if registry.spec(name).streams] == ["kmeans", "minibatch_kmeans"]
    assert [name for name in registry.names() if not registry.spec(name).sampled] == ["attribute_based"]
    groups = registry.spec("attribute_based")
    assert groups.grouping_columns({"attributes": ["a", "b"]}) == ["a", "b"]
    assert registry.spec("kmeans").grouping_columns({}) is None


def test_bisecting_kmeans_is_one_entry_fitted_sampled_and_chosen_automatically():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 4, 1200)
    X = (rng.normal(size=(4, 16)) * 5)[truth] + rng.normal(size=(1200, 16))
    config = parse_config({"collection": "c", "algorithm": "bisecting_kmeans", "sample_size": 400})
    assert config.estimator_parameters() == {"n_clusters": 8, "n_init": 3, "random_state": 0}
    options = parse_config(
        {"collection": "c", "algorithm": "bisecting_kmeans", "parameters": {"n_clusters": "auto", "k_max": 6},
         "sample_size": 400}
    ).clustering  # fmt: skip
    fitted, _ = fit_clustering(X.astype(np.float32), options)
    assert fitted.auto_k is not None and fitted.auto_k.chosen == 4 and fitted.num_clusters == 4
    assert fitted.assigned_by == "nearest_centroid" and fitted.extras["fit_method"] == "bisecting_kmeans+sample(400)"
    assert adjusted_rand_score(truth, fitted.labels) > 0.99


def test_only_the_registry_names_an_algorithm():
    """Adding an algorithm is one registry entry: no other module names one, or tests a name."""
    modules = {path.relative_to(PACKAGE).as_posix(): path.read_text() for path in PACKAGE.rglob("*.py")}
    assert [name for name, text in modules.items() if "bisecting" in text] == ["core/fit/registry.py"]
    name_tests = re.compile(r"algorithm\s*(==|!=|not in|in)\s*[\"'(A-Z]")
    assert [name for name, text in modules.items() if name_tests.search(text)] == []
