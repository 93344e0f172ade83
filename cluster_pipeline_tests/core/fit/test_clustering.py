import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.errors import AlgorithmError, InsufficientDocumentsError, InvalidEmbeddingsError
from cluster_pipeline.core.fit import registry
from cluster_pipeline.core.fit.clustering import fit_clustering, order_by_size
from cluster_pipeline.core.fit.options import ClusteringOptions as Options
from cluster_pipeline.core.fit.options import ReductionOptions
from cluster_pipeline.core.fit.registry import default_min_cluster_size


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=400, n_features=64, centers=4, cluster_std=1.0, random_state=3)
    return X.astype(np.float32), y


PARAMETERS = {
    "kmeans": {"n_clusters": 4},
    "minibatch_kmeans": {"n_clusters": 4},
    "bisecting_kmeans": {"n_clusters": 4},
    "hdbscan": {"min_cluster_size": 15},
    "dbscan": {},  # scikit-learn's eps=0.5 suits UMAP's coordinates
    "agglomerative": {"n_clusters": 4},
    "gaussian_mixture": {"n_components": 4},
    "spectral": {"n_clusters": 4, "n_neighbors": 20},
    "birch": {"n_clusters": 4},
    "optics": {"min_samples": 10, "min_cluster_size": 30},
    "mean_shift": {"bandwidth": 0.5},
}


@pytest.mark.parametrize("algorithm", [name for name in registry.names() if registry.spec(name).estimator])
def test_each_algorithm_recovers_well_separated_blobs(blobs, algorithm):
    X, y = blobs
    fitted, space = fit_clustering(X, Options(algorithm=algorithm, parameters=PARAMETERS[algorithm]))
    kept = fitted.labels >= 0
    assert fitted.num_clusters == 4
    assert kept.mean() > 0.7
    assert adjusted_rand_score(y[kept], fitted.labels[kept]) > 0.95
    assert fitted.centroids.shape == (4, space.shape[1]) and space.dtype == np.float32
    assert np.isnan(fitted.distances[~kept]).all() and (fitted.distances[kept] >= 0).all()
    assert list(fitted.cluster_sizes) == sorted(fitted.cluster_sizes, reverse=True)  # cl_0 is the largest


def test_reduction_defaults_umap_for_density_pca_for_mean_shift_none_otherwise(blobs):
    X, _ = blobs
    fitted, space = fit_clustering(X, Options(algorithm="hdbscan"))
    # UMAP guides the algorithm; centroids, distances and metrics stay in the normalised 64-d space
    assert fitted.reduction["method"] == "umap" and fitted.reduction["n_components"] == 5
    assert fitted.reduction["fitted_documents"] == 400 and fitted.reduction["placed_documents"] == 0
    assert space.shape[1] == 64 and fitted.centroids.shape == (4, 64)
    assert fitted.parameters["min_cluster_size"] == default_min_cluster_size(400) == 10
    fitted, space = fit_clustering(X, Options(algorithm="mean_shift"))
    assert fitted.reduction["method"] == "pca" and space.shape[1] == 10
    fitted, space = fit_clustering(X, Options(algorithm="kmeans"))
    assert fitted.reduction == {"method": "none"}
    assert space.shape[1] == 64 and np.allclose(np.linalg.norm(space, axis=1), 1.0, atol=1e-5)
    fitted, space = fit_clustering(
        X, Options(algorithm="hdbscan", reduction=ReductionOptions(method="pca", n_components=8))
    )
    assert fitted.reduction["method"] == "pca" and space.shape[1] == 8 and fitted.num_clusters == 4


def test_umap_fitted_on_a_sample_places_the_rest(blobs):
    X, y = blobs
    options = Options(algorithm="hdbscan", reduction=ReductionOptions(method="umap", fit_sample_size=150))
    fitted, _ = fit_clustering(X, options)
    assert fitted.reduction["fitted_documents"] == 150 and fitted.reduction["placed_documents"] == 250
    kept = fitted.labels >= 0
    assert fitted.num_clusters == 4 and kept.mean() > 0.9
    assert adjusted_rand_score(y[kept], fitted.labels[kept]) > 0.95
    # the same seed gives the same clustering
    again, _ = fit_clustering(X, options)
    assert np.array_equal(again.labels, fitted.labels)


def test_min_cluster_size_grows_with_the_square_root_of_n():
    sizes = (0, 50, 400, 1000, 7600, 100_000, 10**6)
    assert [default_min_cluster_size(n) for n in sizes] == [5, 5, 10, 16, 44, 158, 500]


def test_noise_is_not_a_cluster():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.01, (50, 2)), rng.normal(5, 0.01, (50, 2)), rng.uniform(-50, 50, (20, 2))])
    fitted, _ = fit_clustering(
        X.astype(np.float32),
        Options(algorithm="hdbscan", parameters={"min_cluster_size": 10}, normalize=False),
    )
    assert fitted.num_clusters == 2 and fitted.num_noise >= 15
    assert fitted.membership is not None and fitted.membership[fitted.labels < 0].max() == 0


def test_errors_use_the_seed_wording(blobs):
    X, _ = blobs
    with pytest.raises(InsufficientDocumentsError, match="Insufficient documents for clustering: need at least 2"):
        fit_clustering(X[:1], Options())
    bad = X[:20].copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidEmbeddingsError, match="Clustering algorithm failed: NaN values in embeddings"):
        fit_clustering(bad, Options(parameters={"n_clusters": 2}))
    with pytest.raises(AlgorithmError, match="n_clusters=50 is larger than the number of documents \\(20\\)"):
        fit_clustering(X[:20], Options(parameters={"n_clusters": 50}))


def test_order_by_size_keeps_noise():
    assert order_by_size(np.array([5, 5, -1, 2, 5, 2, 9])).tolist() == [0, 0, -1, 1, 0, 1, 2]
    assert order_by_size(np.array([-1, -1])).tolist() == [-1, -1]


def test_the_first_use_of_numba_code_on_a_machine_is_a_compile_stage(tmp_path, monkeypatch):
    from cluster_pipeline.core.fit import numba_cache
    from cluster_pipeline.core.progress import STAGE, Progress

    events = []
    monkeypatch.setattr(numba_cache, "numba_cache_dir", lambda: tmp_path)  # an empty cache: nothing compiled yet
    with numba_cache.compiling(Progress([events.append], min_interval=60), "umap", "UMAP"):
        events.append("work")
    assert [getattr(e, "stage", e) for e in events] == ["compile", "work", "compile"]
    assert events[0].unit == STAGE and events[0].done == 0 and events[2].done == 1
    assert (
        events[0].note.startswith("compiling numba kernels for UMAP (once per machine")
        and str(tmp_path) in events[0].note
    )
    events.clear()
    index = tmp_path / "umap_476a548b" / "umap_.smooth_knn_dist-144.py311.nbi"  # numba's index, once compiled
    index.parent.mkdir()
    index.touch()
    with numba_cache.compiling(Progress([events.append]), "umap", "UMAP"):
        pass
    assert events == []
