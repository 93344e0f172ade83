"""The deployment switch: the CLI reads and writes the lake the code location uses (moto's S3 on
loopback), and refuses settings that would split the deployment's truth."""

import json
import uuid

import pyarrow.parquet as pq
import pytest

from cluster_pipeline.cli import main
from cluster_pipeline.core.errors import ConfigurationError
from cluster_pipeline.core.store.storage import LocalStorage, S3Storage
from cluster_pipeline.definitions import build_definitions
from cluster_pipeline.deployment import environment_lake
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.s3_server import moto_s3, s3_client


@pytest.fixture
def s3_deployment(monkeypatch):
    """An S3 deployment's environment; moto's state is per process, so each test gets its own bucket."""
    bucket = f"clusters-{uuid.uuid4().hex[:12]}"
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)
        for name, value in {
            "DAGSTER_DEPLOYMENT": "s3",
            "CLUSTER_PIPELINE_S3_BUCKET": bucket,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        yield client, bucket


def test_local_is_the_default(tmp_path):
    lake = environment_lake()
    assert isinstance(lake.storage, LocalStorage) and lake.storage.root == (tmp_path / "lake").resolve()
    assert environment_lake(str(tmp_path / "other")).storage.root == (tmp_path / "other").resolve()


def test_the_cli_writes_to_the_deployments_bucket(s3_deployment, tmp_path, capsys):
    client, bucket = s3_deployment
    pq.write_table(blob_documents(30), tmp_path / "docs.parquet")
    assert main(["ingest", "news", str(tmp_path / "docs.parquet"), "--json"]) == 0
    part = json.loads(capsys.readouterr().out)["part"]
    assert client.head_object(Bucket=bucket, Key=f"lake/{part}")
    assert not (tmp_path / "lake").exists()
    lake = environment_lake()
    assert isinstance(lake.storage, S3Storage) and lake.storage.uri(part) == f"s3://{bucket}/lake/{part}"
    # the code location's resources name the same lake
    resources = build_definitions().resources
    assert resources["lake"].s3_prefix == "lake"


def test_settings_that_would_split_the_deployment_are_refused(s3_deployment, tmp_path, capsys, monkeypatch):
    client, bucket = s3_deployment
    with pytest.raises(ConfigurationError, match="drop --root"):
        environment_lake(str(tmp_path / "elsewhere"))
    # runs of an S3 deployment belong in its instance, not in a local SQLite file; nothing is written
    pq.write_table(blob_documents(30), tmp_path / "docs.parquet")
    assert main(["ingest", "news", str(tmp_path / "docs.parquet")]) == 0
    assert main(["clusters", "create", "--collection", "news"]) == 2
    assert "set DAGSTER_HOME" in capsys.readouterr().err
    assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix="lake/default/clusters/")
    monkeypatch.delenv("CLUSTER_PIPELINE_S3_BUCKET")
    assert main(["clusters", "list"]) == 2
    assert "set CLUSTER_PIPELINE_S3_BUCKET" in capsys.readouterr().err
    monkeypatch.setenv("DAGSTER_DEPLOYMENT", "kubernetes")
    assert main(["clusters", "list"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Unknown DAGSTER_DEPLOYMENT='kubernetes': use 'local' (the lake in a folder) or 's3' "
        "(the lake in $CLUSTER_PIPELINE_S3_BUCKET)."
    )
