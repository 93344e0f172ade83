"""The reduction stage: what ``auto`` means, UMAP's seeded fit and how it places the documents it
was not fitted on (the fit through ``fit_clustering`` is in ``test_clustering.py``)."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.errors import AlgorithmError
from cluster_pipeline.core.fit.options import ReductionOptions
from cluster_pipeline.core.fit.reduction import place_from_neighbours, plan_reduction, umap_coordinates


@pytest.mark.parametrize(
    ("method", "default", "dimensions", "planned"),
    [
        ("auto", "umap", 384, ("umap", 5)),
        ("auto", "umap", 50, ("none", None)),  # low-dimensional vectors are clustered as they are
        ("auto", "pca", 384, ("pca", 10)),
        ("auto", "none", 384, ("none", None)),
        ("pca", "umap", 8, ("none", None)),  # PCA to 10 of 8 dimensions keeps them all: nothing to do
        ("umap", "none", 16, ("umap", 5)),  # asked for: whatever the algorithm's default
        ("none", "umap", 384, ("none", None)),
    ],
)
def test_auto_is_the_algorithms_default_above_fifty_dimensions(method, default, dimensions, planned):
    plan = plan_reduction(ReductionOptions(method=method), default, dimensions)
    assert (plan.method, plan.n_components) == planned


def unit_blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=n, n_features=32, centers=4, cluster_std=1.0, random_state=seed)
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def test_umap_is_seeded_and_keeps_the_groups_apart():
    X, y = unit_blobs()
    first = umap_coordinates(X, ReductionOptions(n_components=2, random_state=3))
    again = umap_coordinates(X, ReductionOptions(n_components=2, random_state=3))
    assert first.coordinates.shape == (600, 2) and first.coordinates.dtype == np.float32
    np.testing.assert_array_equal(first.coordinates, again.coordinates)
    nearest = np.argmin(((first.coordinates[:, None] - first.coordinates[None]) ** 2).sum(-1) + np.eye(600) * 1e9, 1)
    assert (y[nearest] == y).mean() > 0.99  # neighbours in UMAP's space belong to the same blob
    assert first.record["fitted_documents"] == 600 and first.record["placed_documents"] == 0


def test_documents_outside_the_fitted_sample_are_placed_among_their_neighbours():
    X, y = unit_blobs(900)
    reduced = umap_coordinates(X, ReductionOptions(n_components=2, fit_sample_size=300))
    assert reduced.record["fitted_documents"] == 300 and reduced.record["placed_documents"] == 600
    centres = np.stack([reduced.coordinates[y == label].mean(axis=0) for label in range(4)])
    closest = np.argmin(((reduced.coordinates[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert adjusted_rand_score(y, closest) > 0.95


def test_a_document_identical_to_a_sampled_one_lands_on_it():
    X, _ = unit_blobs(200)
    coordinates = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    placed = place_from_neighbours(X, coordinates, X[:5], n_neighbors=1)
    np.testing.assert_allclose(placed, coordinates[:5], atol=1e-6)


def test_too_few_documents_for_umap_say_what_to_do():
    with pytest.raises(AlgorithmError, match="needs more than 6 documents.*reduction.method to 'none'"):
        umap_coordinates(np.eye(4, 8, dtype=np.float32))
