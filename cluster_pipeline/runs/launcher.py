"""Run a configuration's partition through Dagster from outside the UI (CLI, service, demo, benchmarks).

Runs go into the instance of ``$DAGSTER_HOME`` (by default ``<data root>/dagster_home``, where the
repository's ``dagster.yaml`` points ``dagster dev``), so they show in the UI. ``execute_in_process``
runs the job now, in this process (Dagster turns Ctrl-C and SIGTERM into a failed run).
``submit_execution`` queues it through the webserver's GraphQL API when one answers at
``$CLUSTER_PIPELINE_DAGSTER_URL`` (default http://localhost:3000, where ``dagster dev`` serves; ~0.4 s),
else with ``dagster job launch``, the public route that works when only the daemon runs (5–12 s: it
starts a code server of its own). Either way the run names the code location ``cluster_pipeline``, as
``workspace.yaml``, ``pyproject.toml`` and the deployment's code server do (``CLUSTER_PIPELINE_CODE_LOCATION``
overrides it).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import ConfigurationError, ExecutionError
from cluster_pipeline.core.ids import run_id_from_dagster_run
from cluster_pipeline.core.render.report import DAGSTER_URL_ENV_VAR, DEFAULT_DAGSTER_URL
from cluster_pipeline.core.store.lake import Lake, default_root
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.deployment import current_deployment
from cluster_pipeline.jobs import CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.lifecycle.failures import failure_message, reconcile_runs, record_failed_run
from cluster_pipeline.lifecycle.processes import WorkerIdentity
from cluster_pipeline.lifecycle.records import base_of, record_facts, refuse_second_execution
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME, configuration_tags
from cluster_pipeline.runs.status import in_flight_execution
from cluster_pipeline.settings import PARTITION_TAG

CODE_LOCATION = "cluster_pipeline"
CODE_LOCATION_ENV = "CLUSTER_PIPELINE_CODE_LOCATION"
DEFINITIONS_MODULE = "cluster_pipeline.definitions"
# a queue daemon that has not written a heartbeat for this long is taken to be gone
DAEMON_HEARTBEAT_SECONDS = 120
WEBSERVER_TIMEOUT_SECONDS = 30

# Dagster's own step logs and tracebacks stay in the run's event log (the UI shows them); the
# console gets only what the CLI prints.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def dagster_home(root: Path | None = None) -> Path:
    """``$DAGSTER_HOME`` if set, else ``<data root>/dagster_home`` (created on first use)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = (root or default_root()) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():  # an explicit (default) instance: no start-up notice, no telemetry
        settings.write_text("telemetry:\n  enabled: false\n")
    return home


def open_instance(root: Path | None = None) -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    if current_deployment() != "local":  # a lake in S3 with runs in a local SQLite file would split the truth
        raise ConfigurationError(
            "DAGSTER_DEPLOYMENT=s3 needs the deployment's Dagster instance: set DAGSTER_HOME to a folder whose "
            "dagster.yaml names its PostgreSQL (see deploy/README.md)."
        )
    # the persistent instance of a folder, read from its dagster.yaml (Dagster's name for it says "temp")
    return DagsterInstance.local_temp(tempdir=str(dagster_home(root)))


def register_partition(instance: DagsterInstance, config: ClusterConfig) -> None:
    """Make the configuration a partition (Dagster adds only the keys it lacks)."""
    instance.add_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME, [config.partition_key])


def _prepare(instance: DagsterInstance, lake: Lake, config: ClusterConfig) -> None:
    """Refuse (ExecutionError) while another execution of the configuration is visibly in flight —
    after settling runs whose worker died, which must not block — and make sure the partition exists.
    Two clients racing past this are settled inside the run (``assets.run_scope``)."""
    reconcile_runs(instance, lake, config.partition_key)
    refuse_second_execution(instance, config)
    register_partition(instance, config)


def execute_in_process(config: ClusterConfig, lake: Lake, instance: DagsterInstance) -> ExecutionResult:
    """Materialize the configuration's partition now, in this process, and return its ExecutionResult: a
    failed or interrupted one its ``failed`` result; only a run that left no result at all (a bug) raises."""
    from cluster_pipeline.definitions import defs

    _prepare(instance, lake, config)
    dagster_run_id, worker = str(uuid.uuid4()), WorkerIdentity.current()
    facts = {"cluster_id": config.cluster_id, **({"worker": worker.to_text()} if worker else {})}
    record_facts(instance, dagster_run_id, CLUSTER_EXECUTION_JOB_NAME, **facts)
    outcome = defs.resolve_job_def(CLUSTER_EXECUTION_JOB_NAME).execute_in_process(
        run_config=QUIET_RUN_CONFIG,
        instance=instance,
        partition_key=config.partition_key,
        tags=configuration_tags(config),
        run_id=dagster_run_id,
        raise_on_error=False,
    )
    results, run, run_id = ResultStore(lake), outcome.dagster_run, run_id_from_dagster_run(outcome.run_id)
    if results.exists(config.namespace, config.cluster_id, run_id):
        return results.get(config.namespace, run_id, config.cluster_id)
    failed = record_failed_run(instance, lake, run, failure_message(instance, run, outcome.all_events))
    if failed is None:
        raise ExecutionError(
            f"Dagster run {outcome.run_id} ended without an ExecutionResult; its logs in the Dagster UI say why."
        )
    return failed


def submit_execution(config: ClusterConfig, lake: Lake, instance: DagsterInstance) -> ExecutionResult:
    """Put an execution of the configuration in Dagster's run queue and return its ``pending``
    ExecutionResult; the daemon starts it (the same rule holds: one execution per configuration)."""
    _prepare(instance, lake, config)
    location = os.environ.get(CODE_LOCATION_ENV) or CODE_LOCATION
    tags = {PARTITION_TAG: config.partition_key, **configuration_tags(config)}
    dagster_run_id = _submit_to_webserver(location, tags)
    if dagster_run_id is not None:
        if instance.get_run_by_id(dagster_run_id) is None:
            raise ExecutionError(
                f"The Dagster webserver at {dagster_url()} queued the execution in another Dagster instance than "
                f"this one ({instance.root_directory}): set {DAGSTER_URL_ENV_VAR} to this instance's webserver."
            )
        record_facts(instance, dagster_run_id, CLUSTER_EXECUTION_JOB_NAME, cluster_id=config.cluster_id)
        return base_of(instance, instance.get_run_by_id(dagster_run_id), config)
    return _launch_with_cli(config, lake, instance, location, tags)


def dagster_url() -> str:
    """The Dagster webserver of this instance: ``$CLUSTER_PIPELINE_DAGSTER_URL``, default http://localhost:3000."""
    return (os.environ.get(DAGSTER_URL_ENV_VAR) or DEFAULT_DAGSTER_URL).rstrip("/")


def _submit_to_webserver(location: str, tags: dict[str, str]) -> str | None:
    """Queue the execution job through the webserver's GraphQL API; its run id, or None when no webserver
    answers (then ``dagster job launch`` does it)."""
    from urllib.parse import urlsplit

    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    url = urlsplit(dagster_url())
    client = DagsterGraphQLClient(
        url.hostname or "localhost", port_number=url.port, use_https=url.scheme == "https",
        path_prefix=url.path.rstrip("/"), timeout=WEBSERVER_TIMEOUT_SECONDS,
    )  # fmt: skip
    try:
        return client.submit_job_execution(
            CLUSTER_EXECUTION_JOB_NAME, repository_location_name=location, repository_name="__repository__",
            run_config=QUIET_RUN_CONFIG, tags=tags,
        )  # fmt: skip
    except DagsterGraphQLClientError as error:
        if error.__cause__ is not None:  # no Dagster webserver answered there (refused, not GraphQL, timed out)
            return None
        raise ExecutionError(f"The Dagster webserver at {dagster_url()} did not queue the execution: {error}") from None


def _launch_with_cli(
    config: ClusterConfig, lake: Lake, instance: DagsterInstance, location: str, tags: dict[str, str]
) -> ExecutionResult:
    dagster_run_id = str(uuid.uuid4())
    record_facts(instance, dagster_run_id, CLUSTER_EXECUTION_JOB_NAME, cluster_id=config.cluster_id)
    workspace = {"load_from": [{"python_module": {"module_name": DEFINITIONS_MODULE, "location_name": location}}]}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "workspace.yaml").write_text(json.dumps(workspace))
        launched = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "launch", "-w", str(Path(folder) / "workspace.yaml")]
            + ["-j", CLUSTER_EXECUTION_JOB_NAME, "--run-id", dagster_run_id, "--tags", json.dumps(tags)]
            + ["--config-json", json.dumps(QUIET_RUN_CONFIG)],
            env={**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME") or instance.root_directory},
            capture_output=True,
            text=True,
        )
    pending = in_flight_execution(instance, lake, config.namespace, run_id_from_dagster_run(dagster_run_id))
    if launched.returncode != 0 or pending is None:
        reason = (launched.stderr.strip().splitlines() or ["it left the queue at once"])[-1]
        raise ExecutionError(f"Dagster did not queue the execution of {config.display_name}: {reason}")
    return pending


def queue_daemon_running(instance: DagsterInstance) -> bool:
    """Whether a daemon that starts queued runs has written a heartbeat to this instance lately."""
    heartbeat = instance.get_daemon_heartbeats().get("QUEUED_RUN_COORDINATOR")
    return heartbeat is not None and time.time() - heartbeat.timestamp < DAEMON_HEARTBEAT_SECONDS
