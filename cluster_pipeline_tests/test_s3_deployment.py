"""The same assets with the lake in S3 (moto's server on loopback); nothing goes through an IO manager."""

import io
import os

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from dagster_aws.s3 import S3Resource

from cluster_pipeline.assets import CLUSTERING_ASSETS
from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.core.store.storage import S3Storage
from cluster_pipeline.resources import LakeResource, LLMResource
from cluster_pipeline.runs import register_partition
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.s3_server import moto_s3, s3_client


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="clusters")
        yield endpoint, client


def test_execution_with_an_s3_lake(s3, tmp_path):
    endpoint, client = s3
    lake = Lake(S3Storage(client, "clusters", "lake"))
    CollectionStore(lake).ingest("default", "c", blob_documents(200, centers=4))
    config = ConfigStore(lake).create(parse_config({"collection": "c", "parameters": {"n_clusters": 4}}))
    s3_resource = S3Resource(endpoint_url=endpoint, region_name="us-east-1")
    with DagsterInstance.ephemeral() as instance:
        register_partition(instance, config)
        outcome = materialize(
            CLUSTERING_ASSETS,
            partition_key=config.partition_key,
            instance=instance,
            resources={
                "lake": LakeResource(s3=s3_resource, s3_bucket="clusters", s3_prefix="lake"),
                "llm": LLMResource(),
            },
        )
    assert outcome.success
    run_id = run_id_from_dagster_run(outcome.run_id)
    result = ResultStore(lake).get("default", run_id)
    assert result.status == "completed" and result.num_clusters == 4
    assert (
        result.artifacts["projection"]
        == f"s3://clusters/lake/default/executions/{config.cluster_id}/{run_id}.projection.png"
    )
    keys = {item["Key"] for item in client.list_objects_v2(Bucket="clusters")["Contents"]}
    assert f"lake/default/executions/{config.cluster_id}/{run_id}.parquet" in keys
    assert all(key.startswith("lake/") for key in keys)  # the run pickled nothing: its data is the result
    assert not any(os.path.exists(tmp_path / "lake" / k) for k in keys)  # nothing landed on local disk
    body = client.get_object(Bucket="clusters", Key=f"lake/default/executions/{config.cluster_id}/{run_id}.parquet")
    frame = pd.read_parquet(io.BytesIO(body["Body"].read()))
    assert frame.loc[0, "run_id"] == run_id
