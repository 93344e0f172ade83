"""The production topology on one box, every part real: PostgreSQL as the instance's storage
(deploy/compose/dagster.yaml, verbatim), the code server as its own process over gRPC, the daemon
(sensors, queue, DefaultRunLauncher: one process per run, started by the code server), the
webserver, and the lake and the compute logs in S3 (moto's server).

One topology serves both tests (it takes a while to start on two cores): a first execution from a
CLI ingest, and twenty configurations at once through the queue.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.core.store.storage import S3Storage, read_parquet
from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.lifecycle.records import worker_of
from cluster_pipeline.settings import PARTITION_TAG
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.s3_server import free_port, moto_s3, s3_client
from cluster_pipeline_tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "cluster_pipeline"
MAX_CONCURRENT_RUNS = yaml.safe_load((REPO / "deploy" / "compose" / "dagster.yaml").read_text())["run_coordinator"][
    "config"
]["max_concurrent_runs"]


@dataclass
class Topology:
    env: dict[str, str]
    home: Path
    logs: Path
    lake: Lake
    client: Any  # boto3 S3 client of the bucket
    webserver: str
    server_pids: set[int]

    def cli(self, *args: str) -> dict:
        done = subprocess.run(
            [str(BIN / "cluster-pipeline"), *args, "--json"], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def instance(self, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
        """The deployment's instance, seen from this process (its dagster.yaml reads the environment)."""
        for name in ("DAGSTER_POSTGRES_URL", "CLUSTER_PIPELINE_S3_BUCKET", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.setenv(name, self.env[name])
        return DagsterInstance.local_temp(tempdir=str(self.home))

    def server_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        return wait_until(check, what, timeout, interval=1.0, detail=lambda: f"\n{self.server_logs()}")

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.webserver}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen(
            command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (the code server's run processes included), then SIGKILL after 5 s
    (the webserver may not exit on SIGTERM; waiting longer only slows teardown)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def serving(check: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited:\n{log.read_text()[-4000:]}")
        try:
            return check()
        except OSError:
            return False

    wait_until(ready, f"{process.args[0]} serving", timeout, 0.5, detail=lambda: f":\n{log.read_text()[-4000:]}")


def grpc_ready(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("ready")
    except Exception:  # noqa: BLE001 - any failure means "not serving yet"
        return False
    return True


def http_ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


@pytest.fixture(scope="module")
def topology(postgres, tmp_path_factory) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    home, logs = root / "dagster_home", root / "logs"
    home.mkdir()
    logs.mkdir()
    shutil.copy(REPO / "deploy" / "compose" / "dagster.yaml", home / "dagster.yaml")
    code_port, web_port = free_port(), free_port()
    workspace = {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": code_port, "location_name": LOCATION}}]}
    (home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    database = postgres.create_database("topology")
    bucket = f"topology-{uuid.uuid4().hex[:12]}"  # moto's state is per process: a bucket no other test uses
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DAGSTER_", "CLUSTER_PIPELINE_", "OPENAI_", "AWS_"))
        }
        env.update(
            DAGSTER_HOME=str(home),
            DAGSTER_POSTGRES_URL=postgres.url(database),
            DAGSTER_DEPLOYMENT="s3",
            CLUSTER_PIPELINE_S3_BUCKET=bucket,
            AWS_ENDPOINT_URL_S3=endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            CLUSTER_PIPELINE_SENSOR_INTERVAL="2",
            NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba")),
        )
        processes = []
        try:
            code_server = start(
                [
                    str(BIN / "dagster"),
                    "code-server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(code_port),
                    "--module-name",
                    "cluster_pipeline.definitions",
                    "--location-name",
                    LOCATION,
                ],
                env,
                home,
                logs / "code-server.log",
            )
            processes.append(code_server)
            serving(lambda: grpc_ready(code_port), code_server, logs / "code-server.log")
            daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, home, logs / "daemon.log")
            processes.append(daemon)
            webserver = start(
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", "workspace.yaml"],
                env,
                home,
                logs / "webserver.log",
            )
            processes.append(webserver)
            url = f"http://127.0.0.1:{web_port}"
            serving(lambda: http_ready(f"{url}/server_info"), webserver, logs / "webserver.log")
            lake = Lake(S3Storage(client, bucket, "lake"))
            yield Topology(env, home, logs, lake, client, url, {process.pid for process in processes})
        finally:
            for process in reversed(processes):
                stop(process)


def result_keys(topology: Topology) -> list[str]:
    """Every configuration's result files (not their assignments or map files), as the store lists them."""
    results = ResultStore(topology.lake)
    clusters = topology.lake.storage.list_children("default/executions/")
    return [key for cluster_id in clusters for key in results.result_keys("default", cluster_id)]


@pytest.mark.slow
def test_documents_ingested_with_the_cli_are_clustered_by_the_deployment(topology, tmp_path, monkeypatch):
    pq.write_table(blob_documents(200, centers=3), tmp_path / "docs.parquet")
    ingested = topology.cli("ingest", "news", str(tmp_path / "docs.parquet"))
    assert ingested["ingested"] == 200
    created = topology.cli("clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--on-change")
    cluster_id = created["cluster_id"]
    # the CLI wrote to the bucket, not to a local folder
    assert topology.lake.storage.exists(f"default/clusters/{cluster_id}.json")

    results = ResultStore(topology.lake)
    (result,) = topology.wait_for(
        "the change sensor's execution", lambda: results.list("default", cluster_id), timeout=180
    )
    assert result.status == "completed" and result.num_points == 200 and result.num_clusters == 3
    assert topology.cli("executions", "show", result.run_id)["status"] == "completed"

    instance = topology.instance(monkeypatch)
    run = instance.get_run_by_id(result.dagster_run_id)
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.tags[PARTITION_TAG] == f"default.{created['name']}"
    assert run.tags["dagster/sensor_name"] == "collection_change_sensor"
    events = {event.dagster_event.event_type for event in instance.all_logs(run.run_id) if event.dagster_event}
    assert {DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING, DagsterEventType.RUN_SUCCESS} <= events
    identity = worker_of(instance, run)  # named by the run itself, as the lifecycle reconciler needs
    assert identity is not None and identity.pid not in {os.getpid(), *topology.server_pids}  # a process of its own

    bucket = topology.env["CLUSTER_PIPELINE_S3_BUCKET"]
    keys = {item["Key"] for item in topology.client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"lake/default/executions/{cluster_id}/{result.run_id}.parquet" in keys
    assert any(key.startswith(f"dagster/compute_logs/storage/{run.run_id}/") for key in keys)

    # the UI sees it: the webserver answers from the same PostgreSQL
    runs = topology.graphql("{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
    assert {"runId": run.run_id, "status": "SUCCESS"} in runs


@pytest.mark.slow
def test_twenty_configurations_at_once_through_the_queue(topology, monkeypatch):
    configs = ConfigStore(topology.lake)
    collections = CollectionStore(topology.lake)
    # twenty configurations: nineteen of one collection, one of another that changes again while it waits
    busy = [configs.create(parse_config(config_fields("load-a", k))) for k in (2, 3, 4) * 6 + (2,)]
    twice = [configs.create(parse_config(config_fields("load-b", 3)))]
    already = set(result_keys(topology))
    collections.ingest("default", "load-a", blob_documents(60, centers=4, seed=3))
    collections.ingest("default", "load-b", blob_documents(60, centers=3, seed=4))
    instance = topology.instance(monkeypatch)
    configs_by_partition = {config.partition_key: config for config in busy + twice}

    def load_runs() -> list:
        records = instance.get_run_records(RunsFilter(job_name=CLUSTER_EXECUTION_JOB_NAME))
        return [r for r in records if r.dagster_run.tags.get(PARTITION_TAG) in configs_by_partition]

    topology.wait_for("twenty runs in the queue", lambda: len(load_runs()) >= 20, timeout=120)
    collections.ingest("default", "load-b", blob_documents(20, centers=3, seed=5, id_offset=10_000))
    expected = len(busy) + 2 * len(twice)
    topology.wait_for(
        f"{expected} completed results",
        lambda: (
            len(set(result_keys(topology)) - already) >= expected
            and all(r.dagster_run.is_finished for r in load_runs())
        ),
        timeout=540,
    )

    records = load_runs()
    assert len(records) == expected, [r.dagster_run.tags.get(PARTITION_TAG) for r in records]
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records)
    runs_by_partition: dict[str, list] = {}
    for record in records:
        runs_by_partition.setdefault(record.dagster_run.tags[PARTITION_TAG], []).append(record)
    assert {key: len(runs) for key, runs in runs_by_partition.items()} == {
        config.partition_key: 2 if config in twice else 1 for config in busy + twice
    }
    # never two runs of one configuration at once, never more than the queue's limit in all
    for partition, runs in runs_by_partition.items():
        spans = sorted((r.start_time, r.end_time) for r in runs)
        for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
            assert next_start >= end, (partition, spans)
    moments = sorted({r.start_time for r in records})
    assert max(sum(r.start_time <= t < r.end_time for r in records) for t in moments) <= MAX_CONCURRENT_RUNS
    # they went through the queue together: at one moment more runs waited than the limit lets run
    created = [r.create_timestamp.timestamp() for r in records]
    waiting = max(sum(c <= t < r.start_time for c, r in zip(created, records, strict=True)) for t in created)
    assert waiting > MAX_CONCURRENT_RUNS, waiting

    # one readable result per run, none lost, none duplicated
    results = ResultStore(topology.lake)
    new_keys = set(result_keys(topology)) - already
    written = [results.read_key(key) for key in new_keys]
    assert sorted(r.dagster_run_id for r in written) == sorted(r.dagster_run.run_id for r in records)
    for result in written:
        assert result.status == "completed" and result.cluster_id in {c.cluster_id for c in busy + twice}
        table = read_parquet(topology.lake.storage, results.result_key(result), columns=["run_id"])
        assert table.column("run_id")[0].as_py() == result.run_id


def config_fields(collection: str, n_clusters: int) -> dict:
    """A configuration executed on every change (not assigned to: the queue's runs are what is tested)."""
    triggers = {"on_change": True, "assign_new_documents": False}
    return {"collection": collection, "parameters": {"n_clusters": n_clusters}, "triggers": triggers}
