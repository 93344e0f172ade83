"""Centroid methods against brute force, fitting on a sample, and attribute groups."""

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import AlgorithmError, InsufficientDocumentsError
from cluster_pipeline.core.fit import centroids as centres_module
from cluster_pipeline.core.fit.attributes import attribute_groups
from cluster_pipeline.core.fit.centroids import cluster_centres, distances_to_centres
from cluster_pipeline.core.fit.clustering import fit_clustering


def blobs(n=3_000, k=4, d=8, seed=1):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    X = rng.normal(size=(k, d)).astype(np.float32)[truth] * 4 + 0.3 * rng.normal(size=(n, d)).astype(np.float32)
    return X.astype(np.float32), truth


def test_median_and_medoid_match_brute_force_and_noise_is_left_out():
    rng = np.random.default_rng(0)
    space = rng.normal(size=(300, 5)).astype(np.float32)
    labels = rng.integers(-1, 3, 300)
    median = cluster_centres(space, labels, "median")
    medoid = cluster_centres(space, labels, "medoid")
    for cluster in range(3):
        members = space[labels == cluster]
        assert np.allclose(median[cluster], np.median(members, axis=0))
        totals = np.linalg.norm(members[:, None, :] - members[None, :, :], axis=2).sum(axis=1)
        assert np.allclose(medoid[cluster], members[totals.argmin()])  # a real member, least total distance
    assert np.allclose(cluster_centres(space, labels, "mean")[1], space[labels == 1].mean(axis=0), atol=1e-6)
    distances = distances_to_centres(space, labels, medoid)
    assert np.isnan(distances[labels < 0]).all()
    assert np.allclose(distances[labels == 2], np.linalg.norm(space[labels == 2] - medoid[2], axis=1))


def test_a_large_clusters_medoid_comes_from_a_seeded_sample(monkeypatch):
    monkeypatch.setattr(centres_module, "MEDOID_SAMPLE", 50)
    space = np.random.default_rng(2).normal(size=(400, 3)).astype(np.float32)
    labels = np.zeros(400, dtype=np.int64)
    first, again = cluster_centres(space, labels, "medoid"), cluster_centres(space, labels, "medoid")
    assert np.array_equal(first, again) and any(np.array_equal(first[0], row) for row in space)


@pytest.mark.parametrize(
    ("algorithm", "parameters", "assigned_by"),
    [
        ("kmeans", {"n_clusters": 4}, "nearest_centroid"),
        ("gaussian_mixture", {"n_components": 4}, "nearest_centroid"),
        ("agglomerative", {"n_clusters": 4}, "nearest_member"),
    ],
)
def test_fitting_on_a_sample_assigns_everyone_and_says_how(algorithm, parameters, assigned_by):
    X, truth = blobs()
    config = parse_config(
        {"collection": "c", "algorithm": algorithm, "parameters": parameters, "sample_size": 600,
         "preprocessing": {"normalize": False}}
    )  # fmt: skip
    fitted, _ = fit_clustering(X, config.clustering)
    assert fitted.assigned_by == assigned_by and len(fitted.sample_rows) == 600
    assert (fitted.labels >= 0).all() and adjusted_rand_score(truth, fitted.labels) > 0.99
    again, _ = fit_clustering(X, config.clustering)
    assert np.array_equal(again.sample_rows, fitted.sample_rows)  # seeded


def test_a_sample_larger_than_the_documents_is_refused_and_an_equal_one_fits_all():
    X, _ = blobs(n=300)
    too_big = parse_config({"collection": "c", "parameters": {"n_clusters": 4}, "sample_size": 301})
    with pytest.raises(InsufficientDocumentsError, match="sample_size=301 is larger than the 300 documents to cluster"):
        fit_clustering(X, too_big.clustering)
    fitted, _ = fit_clustering(X, too_big.model_copy(update={"sample_size": 300}).clustering)
    assert fitted.sample_rows is None and fitted.assigned_by is None


def test_attribute_groups_make_the_clusters_missing_values_are_noise():
    table = pa.table({"category": ["a", "b", "a", None, "b", "b"], "brand": ["x", "x", "x", "y", "y", "x"]})
    groups = attribute_groups(table, ["category", "brand"], max_groups=10)
    assert groups.labels.tolist()[3] == -1 and len(groups.values) == 3
    assert {tuple(v.values()) for v in groups.values} == {("a", "x"), ("b", "x"), ("b", "y")}
    by_value = {tuple(groups.values[g].values()): g for g in range(3)}
    assert groups.labels.tolist() == [by_value["a", "x"], by_value["b", "x"], by_value["a", "x"], -1,
                                      by_value["b", "y"], by_value["b", "x"]]  # fmt: skip
    with pytest.raises(
        AlgorithmError, match="category × brand form 3 groups among the 6 documents, more than max_groups=2"
    ):
        attribute_groups(table, ["category", "brand"], max_groups=2)


def test_attribute_based_clusters_are_ordered_by_size_and_keep_their_values():
    X, truth = blobs(n=500, k=3)
    table = pa.table({"topic": [f"t{t}" for t in truth]})
    config = parse_config({"collection": "c", "algorithm": "attribute_based", "parameters": {"attributes": "topic"}})
    assert config.parameters["attributes"] == ["topic"]  # "a,b" from the command line becomes a list
    fitted, _ = fit_clustering(X, config.clustering, groups=attribute_groups(table, ["topic"], 100))
    assert adjusted_rand_score(truth, fitted.labels) == 1.0 and fitted.engine == "pyarrow"
    assert list(fitted.cluster_sizes) == sorted(np.bincount(truth), reverse=True)
    for cluster, group in enumerate(fitted.groups):
        assert {f"t{t}" for t in truth[fitted.labels == cluster]} == {group["topic"]}
