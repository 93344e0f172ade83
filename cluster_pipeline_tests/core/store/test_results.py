"""The ExecutionResult against the seed's contract, field by field."""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster_pipeline.core.errors import AlreadyExistsError, InvalidIdentifierError, NotFoundError
from cluster_pipeline.core.store.results import (
    RESULT_SCHEMA,
    Centroid,
    ExecutionResult,
    ResultStore,
    arrow_fields,
    column,
    decode_row,
    encode_row,
    format_timestamp,
)
from cluster_pipeline_tests.conftest import SHARED_DATASETS

SEED = SHARED_DATASETS.parent / "seed" / "execution_result_api.txt"
SEED_FIELDS = [
    "run_id",
    "cluster_id",
    "status",
    "num_clusters",
    "num_points",
    "created_at",
    "metrics",
    "centroids",
    "completed_at",
    "error_message",
]
CREATED = datetime(2025, 11, 13, 13, 20, 40, 122000, tzinfo=UTC)


def completed() -> ExecutionResult:
    return ExecutionResult(
        run_id="run_a8e270953254754b",
        cluster_id="clust_ae3e28a429",
        status="completed",
        num_clusters=2,
        num_points=10,
        created_at=CREATED,
        metrics={
            "silhouette_score": 0.85,
            "davies_bouldin_index": 0.42,
            "calinski_harabasz_score": 1234.56,
            "description": "Excellent clustering quality",
            "coherence_npmi": 0.12,
            "coherence_npmi_document": 0.25,
            "topic_diversity": 1.0,
        },
        centroids=[
            Centroid("cl_0", 6, "Product Reviews", "Six reviews.", ["review", "product", "stars"]),
            Centroid("cl_1", 4, "Shipping", "Four complaints.", ["delivery", "late", "box"]),
        ],
        completed_at=datetime(2025, 11, 13, 13, 25, 40, 122000, tzinfo=UTC),
        collection="reviews",
        algorithm="kmeans",
    )


def test_json_form_has_the_seed_fields_in_order_and_formats():
    data = completed().to_json_dict()
    assert list(data)[: len(SEED_FIELDS)] == SEED_FIELDS
    assert data["created_at"] == "2025-11-13T13:20:40.122000Z"
    assert data["completed_at"] == "2025-11-13T13:25:40.122000Z"
    assert re.fullmatch(r"run_[0-9a-f]{16}", data["run_id"]) and data["cluster_id"].startswith("clust_")
    assert set(data["metrics"]) == {
        "silhouette_score",
        "davies_bouldin_index",
        "calinski_harabasz_score",
        "description",
        "coherence_npmi",
        "coherence_npmi_document",
        "topic_diversity",
    }
    assert [list(c)[:5] for c in data["centroids"]] == [
        ["cluster_id", "num_members", "label", "summary", "keywords"]
    ] * 2
    assert data["error_message"] is None
    json.dumps(data)  # serialisable as is


def test_seed_examples_are_the_formats_we_write():
    if not SEED.exists():
        pytest.skip("seed not present")
    text = SEED.read_text()
    for example in re.findall(r'"(\d{4}-\d\d-\d\dT[\d:.]+Z)"', text):
        parsed = datetime.strptime(example, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert format_timestamp(parsed) == example
    for field in SEED_FIELDS:
        assert field in text


def test_parquet_roundtrip_and_plain_readers(lake):
    store = ResultStore(lake)
    result = completed()
    uri = store.write(result)
    assert uri.endswith("default/executions/clust_ae3e28a429/run_a8e270953254754b.parquet")
    assert store.get("default", result.run_id) == result
    frame = pd.read_parquet(uri)
    assert list(frame.columns[: len(SEED_FIELDS)]) == SEED_FIELDS and len(frame) == 1
    assert frame.loc[0, "status"] == "completed" and frame.loc[0, "num_clusters"] == 2
    assert str(frame["created_at"].dtype).startswith("datetime64") and "UTC" in str(frame["created_at"].dtype)
    table = pq.read_table(uri)
    assert table.column("centroids")[0].as_py()[0]["keywords"] == ["review", "product", "stars"]


def test_results_are_immutable(lake):
    store = ResultStore(lake)
    store.write(completed())
    with pytest.raises(AlreadyExistsError, match="immutable"):
        store.write(completed().with_updates(num_clusters=3))
    assert store.get("default", "run_a8e270953254754b").num_clusters == 2


def test_failed_result_shape(lake):
    failed = ExecutionResult(
        run_id="run_0000000000000001",
        cluster_id="clust_ae3e28a429",
        status="failed",
        num_clusters=0,
        num_points=1,
        created_at=CREATED,
        completed_at=CREATED,
        error_message="Insufficient documents for clustering: need at least 2 documents",
    )
    ResultStore(lake).write(failed)
    data = ResultStore(lake).get("default", failed.run_id).to_json_dict()
    assert data["metrics"] is None and data["centroids"] is None and data["completed_at"]
    assert data["error_message"].startswith("Insufficient documents")


def test_lookup_is_scoped_by_namespace(lake):
    ResultStore(lake).write(completed())
    with pytest.raises(NotFoundError):
        ResultStore(lake).get("other", "run_a8e270953254754b")
    with pytest.raises(InvalidIdentifierError):
        ResultStore(lake).get("default", "run_../../x")


def test_invalid_fields_are_refused():
    with pytest.raises(InvalidIdentifierError):
        completed().with_updates(run_id="run_xyz")
    with pytest.raises(ValueError, match="status must be one of"):
        completed().with_updates(status="done")


def every_field_set() -> ExecutionResult:
    """A result with a value in every field, nested JSON included (key order kept where it is not sorted)."""
    return completed().with_updates(
        centroids=[Centroid("cl_0", 6, "A", "s", ["k"], "llm", ["d1"], {"b": 1, "a": [1, 2]})],
        namespace="team-a",
        feature="embedding",
        parameters={"n_clusters": 2, "init": "k-means++"},
        num_noise=1,
        silhouette_sample_size=10,
        collection_version="v2-0123456789ab",
        dagster_run_id="4f1c",
        timings={"fit": 1.5},
        llm_labeling_errors=[{"cluster_id": "cl_1", "error": "timeout"}],
        llm_usage={"prompt_tokens": 10},
        drift={"previous_run_id": "run_0000000000000001", "ari": 0.9},
        artifacts={"projection": "file:///p.png"},
        engine="sklearn",
        reduction={"method": "pca", "components": 10},
        auto_k={"chosen": 2},
        topic_reduction={"from": 5, "to": 2},
        num_noise_reassigned=1,
        coverage="full",
        quality_note="fine",
        warning="small",
        configuration={"algorithm": "kmeans"},
        configuration_version=3,
        selection={"matched": 10},
        trigger="manual",
        trigger_reason="asked",
        hierarchy={"z": {"children": []}, "a": 1},
        topics_over_time={"column": "date", "bins": 3},
        mode="full",
        source_documents=12,
        vectors_retrieved=10,
        vectors_clustered=9,
        error_traceback="Traceback (most recent call last): ...",
    )


def test_every_field_round_trips_through_the_file_and_json(lake):
    store = ResultStore(lake)
    result = every_field_set()
    store.write(result)
    read = store.get("team-a", result.run_id)
    assert read == result
    assert list(read.hierarchy) == ["z", "a"]  # unsorted JSON keeps its order
    data = read.to_json_dict()
    annotations = ["label_overrides", "run_name"]  # not columns: merged from the annotations file when read
    assert data == result.to_json_dict() and list(data) == [f.name for f in RESULT_SCHEMA] + annotations
    assert json.loads(json.dumps(data)) == data
    stored = pq.read_table(store.uri(result))
    assert stored.schema.equals(RESULT_SCHEMA)
    assert json.loads(stored.column("parameters")[0].as_py()) == result.parameters  # extras are JSON text


def test_a_file_written_before_the_newer_columns_still_reads(lake):
    """Results written by earlier versions lack the columns added since: they read with the defaults."""
    store = ResultStore(lake)
    result = every_field_set()
    newer = ["engine", "reduction", "num_noise_reassigned", "configuration", "selection", "hierarchy"]
    old = result.to_table().drop_columns(newer)
    lake.storage.write_parquet_new(store.result_key(result), old)
    read = store.get("team-a", result.run_id)
    assert read.engine is None and read.reduction is None and read.num_noise_reassigned == 0
    assert read.with_updates(**{name: getattr(result, name) for name in newer}) == result


def test_a_field_is_declared_once():
    """One ``column`` line gives the Arrow field, the row value and the decoded value."""

    @dataclass(frozen=True)
    class Reviewed(ExecutionResult):
        reviewer: str | None = column(pa.string(), None)

    assert arrow_fields(Reviewed)[-1] == pa.field("reviewer", pa.string())
    reviewed = Reviewed(**{**completed().__dict__, "reviewer": "ana"})
    row = encode_row(reviewed)
    assert row["reviewer"] == "ana" and decode_row(Reviewed, row) == reviewed
    assert decode_row(Reviewed, encode_row(completed())).reviewer is None
