"""The paths users run, timed end to end on AG News (7,600 MiniLM embeddings, k-means k=4):

- ``cluster-pipeline execute CLUSTER_ID``: the command's wall time, Python start-up included;
- a materialization launched the way the Dagster UI launches it: ``launchRun`` of the asset job
  (all five assets and their checks, one partition) through the GraphQL API of ``dagster dev``
  (webserver and daemon) on the repository's own instance settings (``dagster.yaml``: the run queue,
  its dequeue interval and per-partition limit; only the storage folders are the benchmark's), timed
  from the request to the run's start (``worker_start``: the queue, the launch and the run worker's
  start-up) and to its end in Dagster's run storage. The code server is warm, as in the UI; the run
  gets a fresh run-worker process, as in the UI.

Beside each, Dagster's own floor (``benchmarks.floor``): a code location of the same shape whose
step does nothing, run in process by ``python -m benchmarks.floor`` and launched like the UI from
the same ``dagster dev`` — what the two paths cost before any of the project's work.

The package's bytecode is compiled first, as an installed package's is. Both re-execute the same
configuration (so both compare with a previous run, as a user's second execution does), alternately
with the floor's, after one unmeasured warm-up execution of each.

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

from benchmarks import floor
from benchmarks.cases import AG_NEWS, DAGSTER_HOME, DATA, NAMESPACE, ROOT, median

BIN = os.path.dirname(sys.executable)
ASSETS, CHECKS = floor.KEYS, floor.CHECKS  # the execution job's five assets and checks; the floor has them too
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


def floor_cli() -> float:
    """Seconds of ``python -m benchmarks.floor``: Python, Dagster, the instance and a run that does nothing."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.floor"], cwd=ROOT, env=environment(), check=True)
    return round(time.perf_counter() - started, 4)


def workspace() -> str:
    """The benchmark's workspace: the repository's code location and the floor's, in one ``dagster dev``."""
    import yaml

    locations = [("cluster_pipeline.definitions", "cluster_pipeline"), ("benchmarks.floor", floor.LOCATION)]
    path = DAGSTER_HOME / "workspace.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"python_module": {"module_name": module, "working_directory": str(ROOT), "location_name": name}}
                    for module, name in locations
                ]
            }
        )
    )
    return str(path)


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
        [os.path.join(BIN, "dagster"), "dev", "-w", workspace(), "-h", "127.0.0.1", "-p", str(port)],
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
                if len(locations["workspaceOrError"]["locationEntries"]) == 2:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("dagster dev did not come up; see benchmarks/out/dagster_home/dagster-dev.log")
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a code server that outlives its webserver: timings are taken
            os.killpg(server.pid, signal.SIGKILL)
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


def launch_like_the_ui(
    port: int, location: str, partition_key: str, instance: Any, prefix: tuple[str, ...] = ()
) -> dict[str, float]:
    """Materialize the five assets (keys under ``prefix``) and their checks of one partition as the UI's
    button does; seconds from the request to the run's start and to its end."""
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [*prefix, key]} for key in ASSETS],
            "assetCheckSelection": [
                {"assetKey": {"path": [*prefix, "execution_result"]}, "name": name} for name in CHECKS
            ],
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
    floor_cli()  # warm-up; it also makes the floor's partition
    runs: dict[str, list[Any]] = {key: [] for key in ("cli", "cli_timings", "ui", "ui_worker_start")}
    runs.update({key: [] for key in ("floor_cli", "floor_ui", "floor_ui_worker_start")})
    os.environ["DAGSTER_HOME"] = str(DAGSTER_HOME)
    with dagster_dev() as port, DagsterInstance.get() as instance:
        wait_for_the_queue(instance)
        for _ in range(repeats):
            seconds, result = cli("execute", cluster_id)
            runs["cli"].append(seconds)
            runs["cli_timings"].append(result["timings"])
            runs["floor_cli"].append(floor_cli())
            ui = launch_like_the_ui(port, "cluster_pipeline", partition_key, instance)
            runs["ui"].append(ui["seconds"])
            runs["ui_worker_start"].append(ui["worker_start"])
            ui = launch_like_the_ui(port, floor.LOCATION, floor.PARTITION, instance, prefix=("floor",))
            runs["floor_ui"].append(ui["seconds"])
            runs["floor_ui_worker_start"].append(ui["worker_start"])
    stages = list(runs["cli_timings"][-1])
    out = {
        "cli_seconds": median(runs["cli"]),
        "ui_seconds": median(runs["ui"]),
        "ui_worker_start": median(runs["ui_worker_start"]),
        "cli_timings": {s: median([t.get(s, 0.0) for t in runs["cli_timings"]]) for s in stages},
        "floor_cli_seconds": median(runs["floor_cli"]),
        "floor_ui_seconds": median(runs["floor_ui"]),
        "floor_ui_worker_start": median(runs["floor_ui_worker_start"]),
        "repeats": {key: value for key, value in runs.items() if key != "cli_timings"},
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
