import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from cluster_pipeline.core import kmeans
from cluster_pipeline.core.kmeans import fit_kmeans, kmeans_plusplus, sampled_init


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=30_000, n_features=32, centers=40, cluster_std=2.5, random_state=7)
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_kmeans_plusplus_picks_distinct_rows_and_beats_random_seeding(blobs):
    centres = kmeans_plusplus(blobs[:5000], 40, random_state=0)
    assert centres.shape == (40, 32) and centres.dtype == np.float32
    assert len(np.unique(centres, axis=0)) == 40
    assert all((blobs[:5000] == c).all(axis=1).any() for c in centres)  # centres are rows of X

    def cost(c):
        return KMeans(40, init=c, n_init=1, max_iter=1).fit(blobs[:5000]).inertia_

    random = blobs[:5000][np.random.default_rng(0).choice(5000, 40, replace=False)]
    assert cost(centres) < cost(random)


def test_sampled_init_reaches_scikit_learns_inertia(blobs, monkeypatch):
    monkeypatch.setattr(kmeans, "INIT_SAMPLE_MIN_ROWS", 3000)  # sample a tenth of the rows
    model, method = fit_kmeans(blobs, {"n_clusters": 40, "n_init": 3, "random_state": 0})
    reference = KMeans(n_clusters=40, random_state=0).fit(blobs)  # scikit-learn's default
    assert method == "kmeans+sampled_init"
    assert model.inertia_ <= 1.01 * reference.inertia_
    assert model.labels_.shape == (len(blobs),) and len(np.unique(model.labels_)) == 40


def test_sampled_init_is_seeded(blobs):
    a = sampled_init(blobs, 10, n_init=2, random_state=3, sample_size=2000)
    b = sampled_init(blobs, 10, n_init=2, random_state=3, sample_size=2000)
    assert np.array_equal(a, b)


def test_custom_init_uses_scikit_learn_as_is(blobs):
    _, method = fit_kmeans(blobs[:2000], {"n_clusters": 5, "random_state": 0})
    assert method == "kmeans+sampled_init"
    _, method = fit_kmeans(blobs, {"n_clusters": 5, "init": "random", "n_init": 1, "random_state": 0})
    assert method == "kmeans"


def test_above_the_minibatch_threshold_kmeans_runs_as_minibatch(blobs, monkeypatch):
    monkeypatch.setattr(kmeans, "MINIBATCH_ABOVE", 10_000)
    model, method = fit_kmeans(blobs, {"n_clusters": 40, "n_init": 3, "random_state": 0})
    reference = KMeans(n_clusters=40, random_state=0).fit(blobs)
    assert method == "minibatch_kmeans"
    assert model.inertia_ <= 1.05 * reference.inertia_
