"""The map's layout: in the clustering's own space, and still from one execution to the next."""

import numpy as np
import pyarrow as pa

from cluster_pipeline.core.render.layout import align_to_previous, lay_out, similarity_transform
from cluster_pipeline.core.render.plots import Projection


def test_the_similarity_transform_recovers_scale_rotation_reflection_and_shift():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, -1])
    target = 3.0 * source @ rotation + np.array([5.0, -2.0])
    scale, found, shift = similarity_transform(source, target)
    assert np.isclose(scale, 3.0) and np.allclose(found, rotation) and np.allclose(shift, [5.0, -2.0])


def test_a_new_layout_is_aligned_to_the_previous_map_on_shared_documents():
    rng = np.random.default_rng(1)
    old_xy = rng.normal(size=(200, 2))
    previous = pa.table({"document_id": [f"d{i}" for i in range(200)], "x": old_xy[:, 0], "y": old_xy[:, 1]})
    # the refit: the same documents and 20 new ones, flipped, turned, shrunk and moved
    new_xy = np.vstack([-0.5 * old_xy[:, ::-1] + 7.0, rng.normal(size=(20, 2))])
    ids = np.array([f"d{i}" for i in range(220)])
    projection = Projection(np.arange(220), new_xy, np.zeros(220, dtype=int), 220, "pca")
    aligned, record = align_to_previous(projection, ids, previous, "run_0000000000000001")
    assert np.allclose(aligned.xy[:200], old_xy, atol=1e-9)
    assert record == {"method": "pca", "layout_stability": "aligned", "aligned_to": "run_0000000000000001",
                      "shared_documents": 200, "misfit": 0.0}  # fmt: skip
    fresh, record = align_to_previous(projection, ids, None, None)
    assert fresh is projection and record == {"method": "pca", "layout_stability": "fresh"}


def test_the_layout_of_a_umap_clustering_comes_from_its_own_neighbour_graph():
    """Four groups UMAP tells apart; PCA of the embeddings would squeeze three of them together."""
    from cluster_pipeline.core.fit.options import ReductionOptions
    from cluster_pipeline.core.fit.reduction import umap_coordinates

    rng = np.random.default_rng(2)
    centres = np.zeros((4, 32), dtype=np.float32)
    centres[0, 0], centres[1, 1], centres[2, 2], centres[3, 3] = 10.0, 1.0, 1.0, 1.0
    labels = np.repeat(np.arange(4), 100)
    space = (centres[labels] + rng.normal(scale=0.02, size=(400, 32))).astype(np.float32)
    reduced = umap_coordinates(space, ReductionOptions(n_components=5, fit_sample_size=300))
    projection = lay_out(space, labels, graph=reduced.graph, method="pca", max_points=350)
    assert projection.method == "umap" and len(projection.rows) == 350 and projection.xy.shape == (350, 2)
    centre = np.array([projection.xy[projection.labels == k].mean(axis=0) for k in range(4)])
    spread = max(projection.xy[projection.labels == k].std(axis=0).max() for k in range(4))
    gaps = [np.linalg.norm(centre[a] - centre[b]) for a in range(4) for b in range(a + 1, 4)]
    assert min(gaps) > 3 * spread  # every group apart, each one tight
