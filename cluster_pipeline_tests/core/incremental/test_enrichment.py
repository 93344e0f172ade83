"""The enrichment table: every live document's latest cluster, on real lakes."""

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.incremental.enrichment import read_enrichment, refresh_enrichment, stored_state
from cluster_pipeline.core.incremental.new_documents import assign_new_documents
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config


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
