import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples, silhouette_score

from cluster_pipeline.core.metrics import (
    compute_metrics,
    davies_bouldin_and_calinski_harabasz,
    silhouette_fast,
    silhouette_samples_fast,
    stratified_sample,
)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [64, 333, 4096])
def test_exact_silhouette_equals_scikit_learns(metric, chunk_size):
    X, y = make_blobs(n_samples=1000, n_features=24, centers=6, cluster_std=3.0, random_state=1)
    X = X.astype(np.float32)
    ours = silhouette_samples_fast(X, y, metric=metric, chunk_size=chunk_size)
    np.testing.assert_allclose(ours, silhouette_samples(X, y, metric=metric), atol=1e-5)
    assert (
        abs(silhouette_fast(X, y, metric=metric, chunk_size=chunk_size) - silhouette_score(X, y, metric=metric)) < 1e-6
    )


def test_singletons_score_zero_as_in_scikit_learn():
    X = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
    y = np.array([0] * 14 + [1] * 15 + [2])
    np.testing.assert_allclose(silhouette_samples_fast(X, y, chunk_size=7), silhouette_samples(X, y), atol=1e-5)


def test_davies_bouldin_and_calinski_harabasz_match_scikit_learn():
    X, y = make_blobs(n_samples=3000, n_features=16, centers=5, random_state=2)
    db, ch = davies_bouldin_and_calinski_harabasz(X.astype(np.float32), y)
    assert db == pytest.approx(davies_bouldin_score(X, y), rel=1e-4)
    assert ch == pytest.approx(calinski_harabasz_score(X, y), rel=1e-4)


def test_sampled_silhouette_is_close_to_exact_and_keeps_every_cluster():
    X, y = make_blobs(n_samples=12_000, n_features=16, centers=[[0] * 16, [3] * 16, [6] * 16], random_state=3)
    y[:30] = 3  # a tiny cluster that a plain random sample would mostly miss
    rows = stratified_sample(y, 2000, random_state=0)
    assert len(np.unique(rows)) == len(rows) and (np.bincount(y[rows]) >= 30).all()
    sampled = compute_metrics(X.astype(np.float32), y, sample_size=2000)
    exact = compute_metrics(X.astype(np.float32), y, sample_size=20_000)
    assert sampled.silhouette_sampled and not exact.silhouette_sampled
    assert abs(sampled.silhouette_score - exact.silhouette_score) < 0.01
