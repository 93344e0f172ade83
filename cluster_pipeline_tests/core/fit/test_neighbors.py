import numpy as np
import pytest

from cluster_pipeline.core.fit.neighbors import knn_graph, nearest_centroids, search


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3000, 24)).astype(np.float32), rng.standard_normal((40, 24)).astype(np.float32)


def brute_force(index, queries, metric):
    if metric == "l2":
        return ((queries[:, None, :].astype(np.float64) - index[None, :, :]) ** 2).sum(-1)
    return -(queries.astype(np.float64) @ index.T.astype(np.float64))


@pytest.mark.parametrize("engine", ["faiss", "numpy"])
def test_nearest_centroids_match_brute_force(points, engine):
    X, centres = points
    labels, squared = nearest_centroids(X, centres, engine=engine)
    reference = brute_force(centres, X, "l2")
    assert labels.dtype == np.int64 and np.array_equal(labels, reference.argmin(axis=1))
    assert np.allclose(squared, reference.min(axis=1), rtol=1e-4)


@pytest.mark.parametrize("engine", ["faiss", "numpy"])
@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_search_returns_the_exact_top_k_in_order(points, engine, metric):
    X, queries = points
    scores, indices = search(X, queries, 7, metric=metric, engine=engine)
    reference = brute_force(X, queries, metric)
    assert np.array_equal(indices, np.argsort(reference, axis=1, kind="stable")[:, :7])
    expected = np.take_along_axis(reference, indices, axis=1)
    assert np.allclose(scores, expected if metric == "l2" else -expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("engine", ["faiss", "numpy"])
def test_knn_graph_never_lists_a_row_as_its_own_neighbour(points, engine):
    X = np.vstack([points[0][:500], points[0][:10]])  # the last ten rows duplicate the first ten
    scores, indices = knn_graph(X, 5, engine=engine)
    assert indices.shape == (510, 5) and not (indices == np.arange(510)[:, None]).any()
    assert (indices[:10, 0] >= 500).all() and np.allclose(scores[:10, 0], 0.0, atol=1e-5)  # its duplicate
    reference = brute_force(X, X, "l2")
    np.fill_diagonal(reference, np.inf)
    assert np.allclose(scores[10:500], np.sort(reference, axis=1)[10:500, :5], rtol=1e-4, atol=1e-4)


def test_bad_k_is_refused(points):
    with pytest.raises(ValueError, match="k must be between 1"):
        search(points[0][:5], points[1], 6)
    with pytest.raises(ValueError, match="k must be between 1 and n - 1"):
        knn_graph(points[0][:5], 5)
