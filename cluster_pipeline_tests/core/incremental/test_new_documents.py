"""Assignment of new documents, assignment parts and the enrichment table, on real lakes."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import ConfigurationError, NotFoundError
from cluster_pipeline.core.fit.clustering import fit_clustering
from cluster_pipeline.core.fit.options import ClusteringOptions
from cluster_pipeline.core.incremental.baseline import assignment_parts, read_part
from cluster_pipeline.core.incremental.enrichment import read_enrichment, refresh_enrichment, stored_state
from cluster_pipeline.core.incremental.model import AssignmentModel, ModelMissingError, assign
from cluster_pipeline.core.incremental.new_documents import assign_new_documents, unassignable
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


def test_parts_are_keyed_by_version_and_written_once(lake, collections):
    collections.ingest("default", "c", blob_documents(200))
    config = create_config(lake, parameters={"n_clusters": 3})
    result = execute(lake, config, "run_0000000000000001")
    collections.ingest("default", "c", blob_documents(10, id_offset=1000))
    pinned = collections.snapshot("default", "c")
    collections.ingest("default", "c", blob_documents(15, id_offset=2000))
    first = assign_new_documents(lake, config, pinned)  # the sensor's pinned version: only its 10 documents
    assert first.part.assigned == 10 and first.part.version == pinned.version
    assert assign_new_documents(lake, config, pinned).part is None  # already covered: nothing rewritten
    current = collections.snapshot("default", "c")
    second = assign_new_documents(lake, config, current)
    assert second.part.assigned == 15  # only what the first part did not cover
    parts = assignment_parts(lake, "default", config.cluster_id, result.run_id)
    assert [p.version for p in parts] == [pinned.version, current.version]
    table = read_part(lake, parts[1])
    assert table.column("document_id").to_pylist() == [f"d{2000 + i}" for i in range(15)]
    assert table.schema.metadata[b"run_id"] == result.run_id.encode()
    assert current.as_of(pinned.version) == pinned and current.as_of("v9-000000000000") is None


def test_the_enrichment_follows_deletions_and_never_goes_back(lake, collections):
    collections.ingest("default", "c", blob_documents(100))
    config = create_config(lake, parameters={"n_clusters": 3})
    result = execute(lake, config, "run_0000000000000001")
    old = collections.snapshot("default", "c")
    collections.ingest("default", "c", blob_documents(10, id_offset=1000))
    collections.delete_documents("default", "c", ["d3", "d1004"])
    run = assign_new_documents(lake, config, collections.snapshot("default", "c"))
    assert run.part.assigned == 9
    enriched = read_enrichment(lake, "default", config.cluster_id)
    ids = set(enriched.column("document_id").to_pylist())
    assert len(ids) == enriched.num_rows == 108 and not {"d3", "d1004"} & ids
    labels = {c.cluster_id: c.label for c in result.centroids}
    for row in enriched.to_pylist():
        assert row["cluster_label"] == labels[row["cluster_id"]] and row["run_id"] == result.run_id
    state = stored_state(lake, "default", config.cluster_id)
    assert refresh_enrichment(lake, config, old) == state  # a late writer with an older view changes nothing
    assert pq.read_table(lake.storage.path(lake.enrichment_key("default", config.cluster_id))).num_rows == 108


@pytest.mark.parametrize("filtered", [False, True])
def test_an_unchanged_collection_is_enriched_without_the_join_and_the_same(lake, collections, filtered):
    """Right after an execution (nothing assigned, added or deleted since) the table is the execution's
    assignments as they are: the same rows, order and state as the join against the live ids gives."""
    from cluster_pipeline.core.incremental.baseline import baseline
    from cluster_pipeline.core.incremental.enrichment import _enrichment_table

    collections.ingest("default", "c", blob_documents(120))
    filters = {"field": "group", "operator": "in", "value": ["g0", "g1"]} if filtered else None
    config = create_config(lake, parameters={"n_clusters": 3}, filters=filters)
    result = execute(lake, config, "run_0000000000000001")
    snapshot = collections.snapshot("default", "c")
    fast = read_enrichment(lake, "default", config.cluster_id)
    joined = _enrichment_table(lake, baseline(lake, config, snapshot), [], collections.load_document_ids(snapshot))
    assert fast.equals(joined) and fast.num_rows == result.num_points
    assert stored_state(lake, "default", config.cluster_id).num_documents == 120


def test_assigning_needs_an_execution_with_a_model(lake, collections):
    collections.ingest("default", "c", blob_documents(100))
    config = create_config(lake, parameters={"n_clusters": 3})
    with pytest.raises(NotFoundError, match="no completed execution"):
        assign_new_documents(lake, config, collections.snapshot("default", "c"))
    execute(lake, config, "run_0000000000000001")
    lake.storage.delete(lake.execution_key("default", config.cluster_id, "run_0000000000000001", "model.npz"))
    collections.ingest("default", "c", blob_documents(5, id_offset=1000))
    with pytest.raises(ModelMissingError, match="execute .* again"):
        assign_new_documents(lake, config, collections.snapshot("default", "c"))


def test_a_filtered_configuration_is_refitted_not_assigned(lake, collections):
    collections.ingest("default", "c", blob_documents(100))
    config = create_config(
        lake, parameters={"n_clusters": 2}, filters={"field": "group", "operator": "in", "value": ["g0", "g1"]}
    )
    execute(lake, config, "run_0000000000000001")
    collections.ingest("default", "c", blob_documents(5, id_offset=1000))
    assert unassignable(config) == "it clusters only the documents its filter keeps"
    with pytest.raises(ConfigurationError, match="cannot be assigned without refitting: it clusters only"):
        assign_new_documents(lake, config, collections.snapshot("default", "c"))
    assert unassignable(create_config(lake, parameters={"n_clusters": 2})) is None
    groups = parse_config({"collection": "c", "algorithm": "attribute_based", "parameters": {"attributes": ["group"]}})
    assert unassignable(groups) == "its clusters are attribute groups, not regions of the embedding space"
