"""Assignment of new documents and its parts, on real lakes."""

import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import ConfigurationError, NotFoundError
from cluster_pipeline.core.incremental.baseline import assignment_parts
from cluster_pipeline.core.incremental.model import ModelMissingError
from cluster_pipeline.core.incremental.new_documents import assign_new_documents, unassignable
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.store.storage import read_parquet
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config


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
    table = read_parquet(lake.storage, parts[1].key)
    assert table.column("document_id").to_pylist() == [f"d{2000 + i}" for i in range(15)]
    assert table.schema.metadata[b"run_id"] == result.run_id.encode()
    assert current.as_of(pinned.version) == pinned and current.as_of("v9-000000000000") is None


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
