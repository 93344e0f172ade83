"""The resource guard: quadratic fits are estimated before they start and refused when they cannot
finish (issue 12, item 15); ``sample_size`` is the way out."""

import numpy as np
import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import ResourceLimitError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.resource_guard import available_memory


def estimate(algorithm, parameters, space):
    return registry.spec(algorithm).estimate(parameters, space)


def blobs(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, d)).astype(np.float32) * 4
    return centers[rng.integers(0, 4, n)] + rng.normal(size=(n, d)).astype(np.float32)


def test_agglomerative_over_the_memory_budget_is_refused_with_the_estimate_and_the_ways_out():
    config = parse_config({"collection": "c", "algorithm": "agglomerative", "memory_budget_mb": 128})
    with pytest.raises(ResourceLimitError) as refused:
        fit_clustering(blobs(8_000, 8), config.clustering)
    message = str(refused.value)
    assert "agglomerative on 8,000 documents" in message and "grows with the square" in message
    assert "memory_budget_mb is 128" in message and "set sample_size" in message and "kmeans" in message
    found = estimate("agglomerative", {}, blobs(8_000, 8))
    assert found is not None and 400 * 2**20 < found.memory_bytes < 700 * 2**20  # measured: 8.5 B per pair


def test_a_fit_larger_than_the_machine_is_refused_before_any_allocation():
    free = available_memory()
    assert free is not None
    n = int((free / 8.5) ** 0.5 * 1.5)  # needs about twice the memory this machine has
    config = parse_config({"collection": "c", "algorithm": "agglomerative"})
    with pytest.raises(ResourceLimitError, match="available"):
        fit_clustering(blobs(n, 2), config.clustering)


def test_a_time_budget_refuses_slow_algorithms():
    config = parse_config({"collection": "c", "algorithm": "optics", "max_fit_seconds": 5})
    with pytest.raises(ResourceLimitError, match="max_fit_seconds is 5"):
        fit_clustering(blobs(6_000, 8), config.clustering)


def test_linear_algorithms_are_not_estimated_and_dbscan_is_estimated_from_its_eps():
    X = blobs(2_000, 8)
    assert estimate("kmeans", {}, X) is None and estimate("birch", {}, X) is None
    narrow, wide = estimate("dbscan", {"eps": 0.01}, X), estimate("dbscan", {"eps": 1e6}, X)
    assert narrow.memory_bytes < wide.memory_bytes / 100


def test_sample_size_fits_a_sample_and_labels_every_document():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 8)).astype(np.float32) * 4
    truth = rng.integers(0, 4, 6_000)
    X = centers[truth] + 0.3 * rng.normal(size=(6_000, 8)).astype(np.float32)
    config = parse_config(
        {"collection": "c", "algorithm": "agglomerative", "parameters": {"n_clusters": 4}, "sample_size": 1_500,
         "memory_budget_mb": 128}
    )  # fmt: skip
    fitted, _ = fit_clustering(X, config.clustering)
    assert fitted.extras["fit_method"] == "agglomerative+sample(1500)"
    assert len(fitted.labels) == 6_000 and fitted.num_clusters == 4 and (fitted.labels >= 0).all()
    assert adjusted_rand_score(truth, fitted.labels) > 0.99  # the sample's clusters, extended to everyone
