"""The assignment model: how each kind of clustering places new documents."""

import numpy as np
import pytest

from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.incremental.model import AssignmentModel, assign
from cluster_pipeline.core.incremental.new_documents import assign_new_documents
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config


def embeddings(table) -> np.ndarray:
    return table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)


def test_a_gaussian_mixture_assigns_by_its_own_predict():
    table = blob_documents(300)
    X = embeddings(table)
    options = ClusteringOptions(algorithm="gaussian_mixture", parameters={"n_components": 3})
    fitted, _ = fit_clustering(X, options)
    from cluster_pipeline.core.incremental.model import model_from_fit

    model = AssignmentModel.from_bytes(model_from_fit("run_0000000000000001", fitted).to_bytes())
    assert model.method == "gaussian_mixture" and model.gmm is not None
    again = assign(model, X)  # the mixture's prediction of its own training documents is its fit
    assert (again.labels == fitted.labels).all()
    assert again.membership is not None and np.allclose(again.membership, fitted.membership, atol=1e-4)
    assert again.novelty.mean() == pytest.approx(0.05, abs=0.03)  # the 95th percentile, by construction


def test_density_clusterings_assign_by_nearest_centroid(lake, collections):
    collections.ingest("default", "c", blob_documents(300))
    config = create_config(lake, algorithm="hdbscan", parameters={"min_cluster_size": 20})
    execute(lake, config, "run_0000000000000001")
    collections.ingest("default", "c", blob_documents(30, id_offset=1000))
    run = assign_new_documents(lake, config, collections.snapshot("default", "c"))
    assert run.method == "nearest_centroid" and (run.assigned.labels >= 0).all()
