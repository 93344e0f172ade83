import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from cluster_pipeline.core.fit import kmeans
from cluster_pipeline.core.fit.kmeans import (
    choose_engine,
    fit_kmeans,
    lloyd_passes,
    matrix_blocks,
    sampled_init,
    seedings,
)
from cluster_pipeline.core.fit.neighbors import load_faiss
from cluster_pipeline.core.progress import Progress


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=30_000, n_features=32, centers=40, cluster_std=2.5, random_state=7)
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


SEEDS = range(5)


@pytest.fixture(scope="module")
def sklearn_inertia(blobs):
    """scikit-learn's default KMeans, the median over seeds: on 40 overlapping blobs one seed's local
    optimum differs from another's by several percent, for scikit-learn as for us."""
    return np.median([KMeans(n_clusters=40, random_state=seed).fit(blobs).inertia_ for seed in SEEDS])


def test_kmeans_plusplus_seedings_pick_distinct_rows_and_beat_random_seeding(blobs):
    one, other = seedings(blobs[:2000], 40, 2, np.random.default_rng(0))
    assert one.shape == (40, 32) and one.dtype == np.float32 and not np.array_equal(one, other)
    assert len(np.unique(one, axis=0)) == 40
    assert all((blobs[:2000] == c).all(axis=1).any() for c in one)  # centres are rows of X

    def cost(c):
        return KMeans(40, init=c, n_init=1, max_iter=1).fit(blobs[:2000]).inertia_

    random = blobs[:2000][np.random.default_rng(0).choice(2000, 40, replace=False)]
    assert cost(one) < cost(random)


def test_faiss_engine_reaches_scikit_learns_inertia(blobs, sklearn_inertia):
    assert kmeans.sample_size(len(blobs), 40) == 5000  # the starts see a sixth of the rows
    fits = [fit_kmeans(blobs, {"n_clusters": 40, "n_init": 3, "random_state": s}, engine="faiss") for s in SEEDS]
    fit = fits[0]
    assert (fit.method, fit.engine) == ("faiss+sampled_init", "faiss")
    assert np.median([f.inertia for f in fits]) <= 1.005 * sklearn_inertia
    assert fit.labels.shape == (len(blobs),) and fit.labels.dtype == np.int64 and len(np.unique(fit.labels)) == 40
    # the reported inertia is the assignment's own
    assert fit.inertia == pytest.approx(float(((blobs - fit.centers[fit.labels]) ** 2).sum()), rel=1e-4)


def test_passes_over_every_row_read_any_blocks_and_move_the_centres_to_their_members_means(blobs):
    """The passes after the sampled training take their rows from any source of blocks (a matrix in
    memory, a collection streamed from its files): the same rows give the same clustering."""
    start = blobs[:: len(blobs) // 40][:40].copy()

    def small_blocks():
        return ((first, blobs[first : first + 777]) for first in range(0, len(blobs), 777))

    found, passes = lloyd_passes(matrix_blocks(blobs), start, len(blobs), Progress.silent(), max_passes=2)
    again, _ = lloyd_passes(small_blocks, start, len(blobs), Progress.silent(), max_passes=2)
    assert passes == 2 and np.array_equal(found.labels, again.labels)
    np.testing.assert_allclose(found.means, again.means, rtol=1e-5, atol=1e-6)
    members_means = np.stack([blobs[found.labels == c].mean(axis=0) for c in range(40)])
    np.testing.assert_allclose(found.means, members_means, rtol=1e-4, atol=1e-5)
    assert found.inertia == pytest.approx(float(((blobs - found.means[found.labels]) ** 2).sum()), rel=1e-4)
    assert found.inertia <= found.objective


def test_faiss_engine_is_deterministic_whatever_the_threads(blobs):
    faiss = load_faiss()
    parameters = {"n_clusters": 40, "n_init": 2, "random_state": 3}
    threads = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = fit_kmeans(blobs, parameters, engine="faiss")
        faiss.omp_set_num_threads(max(threads, 2))
        many = fit_kmeans(blobs, parameters, engine="faiss")
    finally:
        faiss.omp_set_num_threads(threads)
    again = fit_kmeans(blobs, parameters, engine="faiss")
    assert np.array_equal(one.labels, many.labels) and np.array_equal(many.labels, again.labels)
    assert np.array_equal(one.centers, again.centers)
    other_seed = fit_kmeans(blobs, {**parameters, "random_state": 4}, engine="faiss")
    assert not np.array_equal(other_seed.centers, again.centers)


def test_scikit_learn_engine_with_sampled_init(blobs, sklearn_inertia):
    fits = [fit_kmeans(blobs, {"n_clusters": 40, "n_init": 3, "random_state": s}, engine="sklearn") for s in SEEDS]
    assert (fits[0].method, fits[0].engine) == ("kmeans+sampled_init", "scikit-learn")
    assert np.median([f.inertia for f in fits]) <= 1.01 * sklearn_inertia


def test_sampled_init_is_seeded(blobs):
    for engine in ("faiss", "sklearn"):
        a = sampled_init(blobs, 10, n_init=2, random_state=3, size=2000, engine=engine)
        b = sampled_init(blobs, 10, n_init=2, random_state=3, size=2000, engine=engine)
        assert a.shape == (10, 32) and np.array_equal(a, b)


def test_engine_choice():
    assert choose_engine("auto", {"n_clusters": 5}) == "faiss"  # installed with the project
    assert choose_engine("sklearn", {"n_clusters": 5}) == "sklearn"
    assert choose_engine("auto", {"init": "random"}) == "sklearn"  # faiss runs k-means++ starts only


def test_without_faiss_auto_falls_back_to_scikit_learn(blobs, monkeypatch):
    monkeypatch.setattr(kmeans, "faiss_installed", lambda: False)
    fit = fit_kmeans(blobs[:2000], {"n_clusters": 5, "random_state": 0})
    assert fit.engine == "scikit-learn" and fit.method == "kmeans+sampled_init"


def test_custom_init_uses_scikit_learn_as_is(blobs):
    fit = fit_kmeans(blobs, {"n_clusters": 5, "init": "random", "n_init": 1, "random_state": 0})
    assert (fit.method, fit.engine) == ("kmeans", "scikit-learn")


def test_scikit_learn_engine_above_the_minibatch_threshold_runs_minibatch(blobs, sklearn_inertia, monkeypatch):
    monkeypatch.setattr(kmeans, "MINIBATCH_ABOVE", 10_000)
    fit = fit_kmeans(blobs, {"n_clusters": 40, "n_init": 3, "random_state": 0}, engine="sklearn")
    assert fit.method == "minibatch_kmeans"
    assert fit.inertia <= 1.05 * sklearn_inertia
