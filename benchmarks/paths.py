"""The paths users run, timed end to end on AG News (7,600 MiniLM embeddings, k-means k=4):

- ``cluster-pipeline execute CLUSTER_ID``: the command's wall time, Python start-up included;
- a materialization launched the way the Dagster UI launches it: ``launchRun`` of the asset job
  (all five assets and their checks, one partition) through the GraphQL API of ``dagster dev``
  (webserver and daemon) on the repository's own instance settings (``dagster.yaml``: the run queue,
  its dequeue interval and per-partition limit; only the storage folders are the benchmark's), timed
  from the request to the run's start (``worker_start``: the queue, the launch and the run worker's
  start-up) and to its end in Dagster's run storage. The code server is warm, as in the UI; the run
  gets a fresh run-worker process, as in the UI.

The package's bytecode is compiled first, as an installed package's is. Both re-execute the same
configuration (so both compare with a previous run, as a user's second execution does), alternately,
after one unmeasured warm-up execution.

    python -m benchmarks.paths '{"repeats": 3}'     # prints RESULT {json}; run by benchmarks.run
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.cases import AG_NEWS, DAGSTER_HOME, DATA, NAMESPACE, ROOT, median

BIN = os.path.dirname(sys.executable)
ASSETS = ["collection_embeddings", "cluster_assignments", "cluster_quality", "cluster_labels", "execution_result"]
CHECKS = [
    "silhouette_threshold",
    "davies_bouldin_threshold",
    "largest_cluster_fraction",
    "noise_fraction",
    "ari_vs_previous",
]
# the instance settings' sections that name the repository's data folder: the benchmark's home keeps its own
STORAGE_SETTINGS = ("storage", "local_artifact_storage", "compute_logs")
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(DAGSTER_HOME),
        "CLUSTER_PIPELINE_ROOT": str(DATA),
        "PYTHONPATH": str(ROOT),
        "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba"),
    }


def instance_settings() -> str:
    """The repository's ``dagster.yaml`` (run queue, dequeue interval, limits, monitoring) with its
    runs stored in the benchmark's Dagster home."""
    import yaml

    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    for section in STORAGE_SETTINGS:
        settings.pop(section, None)
    return yaml.safe_dump(settings)


def cli(*arguments: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [os.path.join(BIN, "cluster-pipeline"), *arguments, "--namespace", NAMESPACE, "--json"],
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cluster-pipeline {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return round(seconds, 4), json.loads(done.stdout)


def graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


@contextmanager
def dagster_dev() -> Iterator[int]:
    """``dagster dev`` (webserver, daemon and their code server) on the repository's workspace: its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(DAGSTER_HOME / "dagster-dev.log", "w")  # noqa: SIM115 - closed below, after the server
    server = subprocess.Popen(
        [os.path.join(BIN, "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while True:
            try:
                locations = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
                if locations["workspaceOrError"]["locationEntries"]:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("dagster dev did not come up; see benchmarks/out/dagster_home/dagster-dev.log")
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def wait_for_the_queue(instance: Any, seconds: float = 300) -> None:
    """Until the daemon that starts queued runs has written its first heartbeat."""
    deadline = time.time() + seconds
    while "QUEUED_RUN_COORDINATOR" not in instance.get_daemon_heartbeats():
        if time.time() > deadline:
            raise RuntimeError(
                "the daemon of dagster dev did not start; see benchmarks/out/dagster_home/dagster-dev.log"
            )
        time.sleep(0.5)


def launch_like_the_ui(port: int, location: str, partition_key: str, instance: Any) -> dict[str, float]:
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in ASSETS],
            "assetCheckSelection": [{"assetKey": {"path": ["execution_result"]}, "name": name} for name in CHECKS],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition_key}]},
        "runConfigData": {},
    }
    requested = time.time()
    launched = graphql(port, LAUNCH, {"params": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun: {launched}")
    run_id = launched["run"]["runId"]
    deadline = time.time() + 600
    while True:
        record = instance.get_run_record_by_id(run_id)
        if record.end_time is not None:
            break
        if time.time() > deadline:
            raise RuntimeError(f"run {run_id} did not end in 10 minutes: {record.dagster_run.status.value}")
        time.sleep(0.05)
    if record.dagster_run.status.value != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {record.dagster_run.status.value}")
    return {
        "seconds": round(record.end_time - requested, 4),
        "worker_start": round(record.start_time - requested, 4),
    }


def main() -> None:
    from dagster import DagsterInstance

    from benchmarks.data import read_ag_news

    repeats = int(json.loads(sys.argv[1]).get("repeats", 3)) if len(sys.argv) > 1 else 3
    DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    (DAGSTER_HOME / "dagster.yaml").write_text(instance_settings())
    read_ag_news(AG_NEWS, DATA, namespace=NAMESPACE)
    # the package's bytecode, as an installed package has it: without it every command and run worker
    # compiles the package's sources again (~0.2 s here) where PYTHONDONTWRITEBYTECODE is set
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "cluster_pipeline")], check=True)
    _, config = cli("clusters", "create", "--collection", "ag_news", "--param", "n_clusters=4")
    cluster_id = config["cluster_id"]
    partition_key = f"{NAMESPACE}.{config['name']}"
    cli("execute", cluster_id)  # warm-up, not measured: page cache, first result
    runs: dict[str, list[Any]] = {"cli": [], "cli_timings": [], "ui": [], "ui_worker_start": []}
    os.environ["DAGSTER_HOME"] = str(DAGSTER_HOME)
    with dagster_dev() as port, DagsterInstance.get() as instance:
        wait_for_the_queue(instance)
        location = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
        location_name = location["workspaceOrError"]["locationEntries"][0]["name"]
        for _ in range(repeats):
            seconds, result = cli("execute", cluster_id)
            runs["cli"].append(seconds)
            runs["cli_timings"].append(result["timings"])
            ui = launch_like_the_ui(port, location_name, partition_key, instance)
            runs["ui"].append(ui["seconds"])
            runs["ui_worker_start"].append(ui["worker_start"])
    stages = list(runs["cli_timings"][-1])
    out = {
        "cli_seconds": median(runs["cli"]),
        "ui_seconds": median(runs["ui"]),
        "ui_worker_start": median(runs["ui_worker_start"]),
        "cli_timings": {s: median([t.get(s, 0.0) for t in runs["cli_timings"]]) for s in stages},
        "repeats": {"cli": runs["cli"], "ui": runs["ui"]},
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
