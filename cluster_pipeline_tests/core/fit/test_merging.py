"""Oversized clusters split, max_clusters (topic reduction by centroid) and reassign_noise, alone and
through fit_clustering."""

from dataclasses import replace

import numpy as np
import pytest

from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.merging import (
    member_means,
    merge_record,
    merge_similar_clusters,
    reassign_noise,
    split_oversized_clusters,
)
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline_tests.conftest import oversized_blob


def pairs_of_clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six tight clusters in three far-apart pairs, plus scattered noise rows (label -1)."""
    rng = np.random.default_rng(seed)
    directions = np.eye(3, 8) * 10
    centres = np.concatenate([directions + 0.5 * np.eye(3, 8, 3), directions - 0.5 * np.eye(3, 8, 3)])
    X = np.concatenate([c + 0.05 * rng.standard_normal((40, 8)) for c in centres] + [rng.normal(0, 6, (12, 8))])
    labels = np.concatenate([np.full(40, c) for c in range(6)] + [np.full(12, -1)])
    return X.astype(np.float32), labels


def test_member_means_leave_noise_out():
    X, labels = pairs_of_clusters()
    means = member_means(X, labels)
    assert means.shape == (6, 8)
    assert np.allclose(means[2], X[labels == 2].mean(axis=0), atol=1e-5)


def test_the_most_similar_clusters_merge_first_and_noise_stays():
    X, labels = pairs_of_clusters()
    merged = merge_similar_clusters(labels, X, 3)
    assert len(np.unique(merged[merged >= 0])) == 3 and (merged[labels < 0] == -1).all()
    for pair in range(3):  # cluster c and c + 3 lie side by side
        assert merged[labels == pair][0] == merged[labels == pair + 3][0]
    record = merge_record(labels, merged, 3)
    assert record["found"] == 6 and record["kept"] == 3 and record["max_clusters"] == 3
    assert sorted(map(tuple, record["merged"].values())) == [(0, 3), (1, 4), (2, 5)]
    assert merge_similar_clusters(labels, X, 6) is labels
    assert set(np.unique(merge_similar_clusters(labels, X, 1))) == {-1, 0}


def test_noise_goes_to_the_nearest_cluster_centroid():
    X, labels = pairs_of_clusters()
    out = reassign_noise(labels, X)
    means = member_means(X, labels)
    noise = labels < 0
    expected = np.argmin(((X[noise, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    assert (out[noise] == expected).all() and (out[~noise] == labels[~noise]).all()
    assert reassign_noise(np.full(5, -1), X[:5]).tolist() == [-1] * 5


def test_fit_clustering_merges_reassigns_and_records():
    X, truth = pairs_of_clusters()
    options = ClusteringOptions(
        algorithm="hdbscan", parameters={"min_cluster_size": 15}, normalize=False, max_clusters=3, reassign_noise=True
    )
    fitted, _ = fit_clustering(X, options)
    assert fitted.num_clusters == 3 and fitted.num_noise == 0
    assert fitted.num_reassigned == fitted.num_found_noise >= 10
    assert fitted.reassigned is not None and fitted.reassigned[truth < 0].mean() > 0.8
    record = fitted.topic_reduction
    assert record is not None and record["found"] == 6 and record["kept"] == 3
    assert sorted(record["merged"]) == ["cl_0", "cl_1", "cl_2"]
    assert all(len(found) == 2 for found in record["merged"].values())
    assert list(fitted.cluster_sizes) == sorted(fitted.cluster_sizes, reverse=True)


@pytest.mark.parametrize("changes", [{}, {"max_clusters": 10}, {"reassign_noise": True}])
def test_nothing_to_merge_or_reassign_changes_nothing(changes):
    X, _ = pairs_of_clusters()
    options = ClusteringOptions(parameters={"n_clusters": 6}, normalize=False)
    plain, _ = fit_clustering(X, options)
    fitted, _ = fit_clustering(X, replace(options, **changes))
    assert np.array_equal(fitted.labels, plain.labels)
    assert fitted.topic_reduction is None and fitted.reassigned is None


def test_a_cluster_with_most_documents_is_split_until_no_part_holds_more_than_the_share():
    X, labels = pairs_of_clusters()
    joined = np.where(labels >= 0, np.minimum(labels, 1), -1)  # clusters 1..5 as one: 200 of 252 rows
    split = split_oversized_clusters(joined, X, 0.4)
    sizes = np.bincount(split[split >= 0])
    assert sizes.max() <= 0.4 * len(X) and (split[labels < 0] == -1).all()
    for c in range(6):  # each of the six tight clusters stays whole
        assert len(np.unique(split[labels == c])) == 1
    assert np.array_equal(split_oversized_clusters(labels, X, 0.4), labels)
    halves = np.where(labels >= 0, labels % 2, -1)  # two clusters of 120 (48 %): real topics, kept
    assert np.array_equal(split_oversized_clusters(halves, X, 0.4), halves)
    same = np.zeros((50, 8), np.float32)  # identical members: no split possible, kept whole
    assert np.array_equal(split_oversized_clusters(np.zeros(50, np.int64), same, 0.4), np.zeros(50))


def test_density_clustering_splits_a_blob_and_records_each_childs_parent():
    X = oversized_blob()
    options = ClusteringOptions(algorithm="hdbscan", parameters={"min_cluster_size": 40}, normalize=False)
    fitted, _ = fit_clustering(X, options)
    assert fitted.cluster_sizes.max() <= 0.4 * len(X)
    record = fitted.splits
    assert record is not None and record["max_cluster_fraction"] == 0.4
    assert list(record["split"]) == ["found_0"] and len(record["split"]["found_0"]) >= 2
    merged, _ = fit_clustering(X, replace(options, max_clusters=2))  # max_clusters works on top of the split
    assert merged.num_clusters == 2 and merged.splits is not None and merged.topic_reduction is not None
    plain, _ = fit_clustering(X, ClusteringOptions(parameters={"n_clusters": 2}, normalize=False))
    assert plain.splits is None and plain.cluster_sizes.max() > 0.4 * len(X)
