import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples, silhouette_score

from cluster_pipeline.core.errors import InvalidEmbeddingsError
from cluster_pipeline.core.quality.metrics import (
    ClusterStatistics,
    MetricsOptions,
    QualityMetrics,
    cluster_codes,
    compute_metrics,
    describe_quality,
    silhouette_fast,
    silhouette_samples_fast,
    stratified_sample,
)


def _blobs(n: int = 1500, dim: int = 24, centers: int = 5, seed: int = 0, offset: float = 50.0):
    X, y = make_blobs(n_samples=n, n_features=dim, centers=centers, cluster_std=2.5, random_state=seed)
    return (X + offset).astype(np.float32), y  # an offset tests the norm expansion's cancellation


def _random_with_singleton(seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, 20)).astype(np.float32)
    y = rng.integers(0, 4, 600)
    y[13] = 7
    return X, y


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("data", [_blobs, _random_with_singleton])
def test_exact_silhouette_matches_sklearn(metric, data):
    X, y = data()
    assert silhouette_fast(X, y, metric=metric, chunk_size=256) == pytest.approx(
        silhouette_score(X, y, metric=metric), abs=1e-4
    )
    np.testing.assert_allclose(
        silhouette_samples_fast(X, y, metric=metric, chunk_size=256), silhouette_samples(X, y, metric=metric), atol=1e-4
    )


def test_singleton_scores_zero_and_other_metrics_fall_back_to_sklearn():
    X, y = _random_with_singleton()
    assert silhouette_samples_fast(X, y)[13] == 0.0
    assert silhouette_fast(X, y, metric="manhattan") == pytest.approx(silhouette_score(X, y, metric="manhattan"))


def test_compute_metrics_matches_sklearn_and_excludes_noise():
    X, y = _blobs()
    noisy = y.copy()
    noisy[::7] = -1
    keep = noisy != -1
    result = compute_metrics(X, noisy)
    assert isinstance(result, QualityMetrics)
    assert result.silhouette_score == pytest.approx(silhouette_score(X[keep], y[keep]), abs=1e-4)
    assert result.davies_bouldin_index == pytest.approx(davies_bouldin_score(X[keep], y[keep]), rel=1e-4)
    assert result.calinski_harabasz_score == pytest.approx(calinski_harabasz_score(X[keep], y[keep]), rel=1e-4)
    assert result.silhouette_sample_size == keep.sum() and not result.silhouette_sampled


def test_db_and_ch_stay_euclidean_with_cosine_silhouette():
    X, y = _blobs(seed=3)
    result = compute_metrics(X, y, metric="cosine")
    assert result is not None
    assert result.silhouette_score == pytest.approx(silhouette_score(X, y, metric="cosine"), abs=1e-4)
    assert result.davies_bouldin_index == pytest.approx(davies_bouldin_score(X, y), rel=1e-4)
    assert result.calinski_harabasz_score == pytest.approx(calinski_harabasz_score(X, y), rel=1e-4)


def test_stratified_sample_keeps_small_clusters_and_is_seeded():
    labels = np.repeat([0, 1, 2, 3], [9000, 900, 60, 20])
    sample = stratified_sample(labels, 1000, random_state=4)
    assert len(sample) == 1000 and np.all(np.diff(sample) > 0)
    per_cluster = np.bincount(labels[sample], minlength=4)
    assert per_cluster[2] >= 50 and per_cluster[3] == 20 and per_cluster[0] > per_cluster[1]
    np.testing.assert_array_equal(sample, stratified_sample(labels, 1000, random_state=4))
    assert not np.array_equal(sample, stratified_sample(labels, 1000, random_state=5))
    np.testing.assert_array_equal(stratified_sample(labels, 20_000), np.arange(len(labels)))


@pytest.mark.parametrize("labels", [np.repeat([5, -1, 7, 2], [150_000, 3000, 61, 46_939]), np.arange(200_000) % 300])
def test_stratified_sample_sorts_only_candidates_and_keeps_the_rows_a_full_sort_keeps(labels):
    """Each cluster keeps the rows of its smallest seeded keys: the same rows whether every key is
    sorted (as the sample was first drawn) or only the candidates under each cluster's threshold."""
    size, seed = 10_000, 3
    sample = stratified_sample(labels, size, random_state=seed)
    codes = np.unique(labels, return_inverse=True)[1]
    order = np.lexsort((np.random.default_rng(seed).random(len(labels)), codes))
    kept = np.bincount(codes[sample], minlength=codes.max() + 1)  # the quotas, checked by the test above
    counts = np.bincount(codes)
    rank = np.arange(len(labels)) - (np.cumsum(counts) - counts)[codes[order]]
    np.testing.assert_array_equal(sample, np.sort(order[rank < kept[codes[order]]]))


def test_stratified_sample_keeps_each_cluster_s_members_with_the_lowest_seeded_keys():
    """What sorting every row by (cluster, seeded key) and keeping each cluster's quota would keep:
    the sample sorts only the rows under a cut, and must not lose any of them to it."""
    rng = np.random.default_rng(0)
    for seed in range(20):
        labels = rng.choice([-1, 0, 1, 2, 3], 5000, p=[0.1, 0.6, 0.25, 0.04, 0.01])
        sample = stratified_sample(labels, 800, random_state=seed)
        keys = np.random.default_rng(seed).random(len(labels))
        quota = np.bincount(np.unique(labels[sample], return_inverse=True)[1])
        order = np.lexsort((keys, labels))
        rank = np.arange(len(labels)) - np.searchsorted(labels[order], labels[order])
        expected = np.sort(order[rank < quota[np.unique(labels, return_inverse=True)[1][order]]])
        np.testing.assert_array_equal(sample, expected)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, -1, 3, 7, 0, 7]),
        np.array([5, 5]),
        np.array([], dtype=np.int64),
        np.array(["b", "a", "b"]),
        np.array([10**12, 0, 10**12]),
    ],
)
def test_cluster_codes_are_what_unique_gives(labels):
    present, codes = cluster_codes(labels)
    expected_present, expected_codes = np.unique(labels, return_inverse=True)
    np.testing.assert_array_equal(present, expected_present)
    np.testing.assert_array_equal(codes, expected_codes)


def test_sampled_silhouette_is_close_to_exact():
    X, y = make_blobs(n_samples=20_000, n_features=16, centers=6, cluster_std=3.0, random_state=2)
    X = X.astype(np.float32)
    y[:120] = 6  # a small cluster the sample must keep
    exact = compute_metrics(X, y, options=MetricsOptions(sample_size=20_000))
    sampled = compute_metrics(X, y, options=MetricsOptions(sample_size=2000, random_state=1))
    assert exact is not None and sampled is not None
    assert not exact.silhouette_sampled and sampled.silhouette_sampled and sampled.silhouette_sample_size == 2000
    assert abs(sampled.silhouette_score - exact.silhouette_score) < 0.02
    assert sampled.davies_bouldin_index == exact.davies_bouldin_index  # always on every point


def test_none_when_silhouette_is_undefined():
    X, y = _blobs(n=200)
    assert compute_metrics(X, np.zeros(200, dtype=int)) is None
    assert compute_metrics(X, np.full(200, -1)) is None
    assert compute_metrics(X[:1], np.array([0])) is None
    assert compute_metrics(X[:3], np.array([0, 1, 2])) is None
    assert compute_metrics(X, np.r_[np.zeros(198, dtype=int), -1, -1]) is None


def test_invalid_embeddings_raise_typed_errors():
    X, y = _blobs(n=200)
    with pytest.raises(InvalidEmbeddingsError):
        compute_metrics(X, y[:-1])
    with pytest.raises(InvalidEmbeddingsError):
        compute_metrics(X[0], y[:1])
    X[5, 3] = np.nan
    with pytest.raises(InvalidEmbeddingsError):
        compute_metrics(X, y)


SEED_DESCRIPTIONS = {  # the seed's strings (shared/seed/execution_result_api.txt), word for word
    "Excellent clustering quality",
    "Good clustering quality",
    "Poor clustering quality (needs tuning)",
    "Metrics not available (failed execution)",
}


@pytest.mark.parametrize(
    ("silhouette", "phrase"),
    [
        (0.85, "Excellent clustering quality"),
        (0.7, "Excellent clustering quality"),
        (0.67, "Good clustering quality"),
        (0.5, "Good clustering quality"),
        (0.49, "Poor clustering quality (needs tuning)"),
        (0.04, "Poor clustering quality (needs tuning)"),
        (-0.2, "Poor clustering quality (needs tuning)"),
    ],
)
def test_description_is_the_seed_string_of_its_band(silhouette, phrase):
    assert describe_quality(silhouette) == phrase and phrase in SEED_DESCRIPTIONS


def test_to_dict_has_exactly_the_seed_fields():
    X, y = _blobs(n=300)
    result = compute_metrics(X, y)
    assert result is not None and result.description
    assert set(result.to_dict()) == {
        "silhouette_score",
        "davies_bouldin_index",
        "calinski_harabasz_score",
        "description",
    }


def test_float32_memmap_is_read_without_a_float64_copy(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 100_000)
    labels[::11] = -1
    path = tmp_path / "embeddings.f32"
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(100_000, 64))
    X[:] = rng.standard_normal(X.shape, dtype=np.float32) + labels[:, None]
    X.flush()
    readonly = np.memmap(path, dtype=np.float32, mode="r", shape=(100_000, 64))
    tracemalloc.start()
    try:
        result = compute_metrics(readonly, labels, options=MetricsOptions(sample_size=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result is not None and result.silhouette_sampled
    assert peak < readonly.nbytes  # a float64 copy would be twice the matrix; even a float32 one is avoided
    keep = labels != -1
    in_memory = np.asarray(readonly)[keep]
    assert result.davies_bouldin_index == pytest.approx(davies_bouldin_score(in_memory, labels[keep]), rel=1e-4)
    assert result.calinski_harabasz_score == pytest.approx(calinski_harabasz_score(in_memory, labels[keep]), rel=1e-4)


def test_the_fits_centroids_and_distances_give_the_same_indices():
    X, y = _blobs(seed=5)
    noisy = y.copy()
    noisy[::9] = -1
    members = noisy >= 0
    centroids = np.stack([X[noisy == c].mean(axis=0) for c in range(5)])
    distances = np.where(members, np.linalg.norm(X - centroids[np.maximum(noisy, 0)], axis=1), np.nan)
    from_stats = compute_metrics(X, noisy, centroids=centroids, distances=distances)
    two_passes = compute_metrics(X, noisy)
    assert from_stats is not None and two_passes is not None
    assert from_stats.davies_bouldin_index == pytest.approx(davies_bouldin_score(X[members], y[members]), rel=1e-5)
    assert from_stats.calinski_harabasz_score == pytest.approx(
        calinski_harabasz_score(X[members], y[members]), rel=1e-5
    )
    assert from_stats.silhouette_score == two_passes.silhouette_score


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_one_implementation_of_the_indices_from_points_or_from_distances(offset):
    """Davies–Bouldin and Calinski–Harabasz come from per-cluster statistics however they were
    gathered: from the points (in-memory), or from member means and distances (a fit, a stream)."""
    X, y = _blobs(seed=3, offset=offset)
    counts = np.bincount(y)
    by_points = ClusterStatistics.of_points(X, np.arange(len(y)), y, counts)
    means = np.stack([X[y == c].mean(axis=0, dtype=np.float64) for c in range(5)])
    distances = np.linalg.norm(X - means[y], axis=1)
    by_distances = ClusterStatistics.of_distances(means, y, distances, counts)
    expected = (davies_bouldin_score(X, y), calinski_harabasz_score(X, y))
    for statistics in (by_points, by_distances):
        assert statistics.indices() == pytest.approx(expected, rel=1e-5)


def test_the_indices_follow_scikit_learns_conventions_for_degenerate_clusters():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    statistics = ClusterStatistics.of_points(X, np.arange(4), y, np.bincount(y))
    assert statistics.indices() == (davies_bouldin_score(X, y), calinski_harabasz_score(X, y)) == (0.0, 1.0)
