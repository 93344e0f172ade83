"""n_clusters='auto': the silhouette sweep on a seeded sample, its record and its picture."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.auto_k import AUTO_K_SAMPLE_SIZE, choose_k
from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.quality.metrics import silhouette_fast
from cluster_pipeline.core.render.plots import auto_k_png


@pytest.fixture(scope="module")
def five_blobs():
    X, y = make_blobs(n_samples=1500, n_features=24, centers=5, cluster_std=1.0, random_state=7)
    return X.astype(np.float32), y


@pytest.mark.parametrize("algorithm", [name for name in registry.names() if registry.spec(name).auto_k])
def test_every_auto_k_algorithm_finds_five_blobs(five_blobs, algorithm):
    X, y = five_blobs
    parameter = registry.spec(algorithm).k_parameter
    extra = {"n_neighbors": 20} if algorithm == "spectral" else {}
    options = ClusteringOptions(algorithm=algorithm, parameters={parameter: "auto", "k_max": 8, **extra})
    fitted, _ = fit_clustering(X, options)
    assert fitted.auto_k is not None and fitted.auto_k.chosen == 5 and fitted.auto_k.parameter == parameter
    assert fitted.num_clusters == 5 and fitted.parameters[parameter] == 5
    assert "k_max" not in fitted.parameters  # the range is the sweep's, not the estimator's
    assert adjusted_rand_score(y, fitted.labels) > 0.95
    record = fitted.auto_k.to_dict()
    assert record["chosen"] == 5 and list(record["scores"]) == [str(k) for k in range(2, 9)]
    assert max(record["scores"], key=record["scores"].get) == "5"


def test_the_curve_is_the_silhouette_of_kmeans_on_the_sample(five_blobs):
    from cluster_pipeline.core.fit.kmeans import fit_kmeans

    X, _ = five_blobs
    result = choose_k(X, "n_clusters", {"k_min": 3, "k_max": 6, "random_state": 0})
    assert (result.k_min, result.k_max, result.sample_size) == (3, 6, len(X))
    for k, score in result.scores.items():
        labels = fit_kmeans(X, {"n_clusters": k, "n_init": 3, "random_state": 0}).labels
        assert score == pytest.approx(silhouette_fast(X, labels), abs=1e-9)
    assert auto_k_png(result).startswith(b"\x89PNG")


def test_large_collections_are_swept_on_a_seeded_sample_and_k_stays_below_it():
    X, _ = make_blobs(n_samples=AUTO_K_SAMPLE_SIZE + 3000, n_features=8, centers=3, random_state=1)
    first = choose_k(X.astype(np.float32), "n_clusters", {"k_max": 4})
    assert first.sample_size == AUTO_K_SAMPLE_SIZE and first.chosen == 3
    assert choose_k(X.astype(np.float32), "n_clusters", {"k_max": 4}).scores == first.scores
    # at least 50 sampled points per cluster for the largest k
    assert choose_k(X.astype(np.float32), "n_clusters", {"k_min": 80, "k_max": 80}).sample_size == 4000
    tiny = choose_k(X[:4].astype(np.float32), "n_clusters", {})
    assert max(tiny.scores) <= 3 and tiny.k_max == 3
