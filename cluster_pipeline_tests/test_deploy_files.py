"""The files in deploy/: what can be checked without Docker, Helm or a Kubernetes cluster.

The production dagster.yaml loads as a real DagsterInstance — PostgreSQL storage on a real server,
the Kubernetes run launcher against a dummy kubeconfig (no cluster is contacted) — so a typo in it
fails here. The compose file, the Dockerfile and the Helm values are checked against each other and
against what the code reads: the code location's module and name, the ports, the environment
variables every dagster.yaml needs, the queue's limits.
"""

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from cluster_pipeline.core.render.report import DAGSTER_URL_ENV_VAR
from cluster_pipeline.deployment import BUCKET_ENV, DEPLOYMENT_ENV

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES_INSTANCE = DEPLOY / "dagster.yaml"
COMPOSE_INSTANCE = DEPLOY / "compose" / "dagster.yaml"
DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {server: "https://127.0.0.1:9"}
users:
  - name: nobody
    user: {token: not-a-token}
contexts:
  - name: nowhere
    context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def env_vars_named(settings: Any) -> set[str]:
    """Every ``{env: NAME}`` in a Dagster YAML file."""
    if isinstance(settings, dict):
        if set(settings) == {"env"}:
            return {settings["env"]}
        return set().union(*(env_vars_named(value) for value in settings.values()))
    if isinstance(settings, list):
        return set().union(*(env_vars_named(value) for value in settings))
    return set()


def instance_from(settings: dict, home: Path) -> DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def code_location() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_kubernetes_instance_loads_with_postgres_s3_logs_and_the_k8s_launcher(postgres_url, tmp_path, monkeypatch):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import PostgresRunStorage

    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    monkeypatch.setenv(BUCKET_ENV, "clusters")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    settings = load_yaml(KUBERNETES_INSTANCE)
    # outside a cluster: the same launcher from a kubeconfig file that names no reachable server
    (tmp_path / "kubeconfig").write_text(DUMMY_KUBECONFIG)
    settings["run_launcher"]["config"].update(load_incluster_config=False, kubeconfig_file=str(tmp_path / "kubeconfig"))

    with instance_from(settings, tmp_path / "home") as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        assert launcher.job_namespace == "cluster-pipeline"
        assert launcher.instance_config_map == "cluster-pipeline-instance"
        assert launcher.env_config_maps == ["cluster-pipeline-config"]
        assert launcher.env_secrets == ["cluster-pipeline-secrets"]
        assert launcher.resources["limits"]["memory"] == "16Gi"
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.get_runs() == []  # the schema exists on the real server
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        assert coordinator.get_run_queue_config().tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)


def test_compose_and_kubernetes_instances_differ_only_in_how_runs_start():
    kubernetes, compose = load_yaml(KUBERNETES_INSTANCE), load_yaml(COMPOSE_INSTANCE)
    assert set(kubernetes) == set(compose)
    for section in set(kubernetes) - {"run_launcher", "run_coordinator"}:
        assert kubernetes[section] == compose[section], section
    assert kubernetes["run_coordinator"]["class"] == compose["run_coordinator"]["class"] == "QueuedRunCoordinator"
    k8s_queue, compose_queue = kubernetes["run_coordinator"]["config"], compose["run_coordinator"]["config"]
    assert k8s_queue["tag_concurrency_limits"] == compose_queue["tag_concurrency_limits"]
    assert compose["run_launcher"]["class"] == "DefaultRunLauncher"
    assert kubernetes["run_launcher"]["class"] == "K8sRunLauncher"


def test_compose_services_serve_the_code_location_with_the_settings_the_code_reads():
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "minio", "create-bucket", "code-server", "webserver", "daemon", "api"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)

    location = code_location()
    code_server = services["code-server"]["command"]
    assert code_server[:3] == ["dagster", "code-server", "start"]
    assert option(code_server, "--module-name") == location["module_name"]
    assert option(code_server, "--location-name") == location["code_location_name"]
    workspace = load_yaml(DEPLOY / "compose" / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert workspace == {
        "host": "code-server",
        "port": int(option(code_server, "--port")),
        "location_name": "cluster_pipeline",
    }

    dagster_services = [services[name] for name in ("code-server", "webserver", "daemon")]
    environment = dagster_services[0]["environment"]
    home = environment["DAGSTER_HOME"]
    for service in dagster_services:
        assert service["environment"] == environment  # one anchor: they share one instance and one lake
        mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in service["volumes"]}
        assert mounts[f"{home}/dagster.yaml"] == "./compose/dagster.yaml"
        assert mounts[f"{home}/workspace.yaml"] == "./compose/workspace.yaml"
    for service in (services["webserver"], services["daemon"]):
        assert option(service["command"], "--workspace") == f"{home}/workspace.yaml"
    # the HTTP API: the same instance and lake, queueing through the webserver's GraphQL
    api = services["api"]
    assert api["command"][:2] == ["cluster-pipeline", "serve"] and api["volumes"] == services["daemon"]["volumes"]
    webserver_port = option(services["webserver"]["command"], "--port")
    assert api["environment"] == {**environment, DAGSTER_URL_ENV_VAR: f"http://webserver:{webserver_port}"}
    assert api["ports"] == [f"127.0.0.1:{option(api['command'], '--port')}:{option(api['command'], '--port')}"]

    # every variable the instance reads is set, the lake is the bucket the compose creates
    assert env_vars_named(load_yaml(COMPOSE_INSTANCE)) <= set(environment)
    assert environment[DEPLOYMENT_ENV] == "s3"
    assert environment[BUCKET_ENV] == services["create-bucket"]["environment"][BUCKET_ENV]
    postgres = services["postgres"]["environment"]
    variable = r"(\$\{[^}]+\})"
    url = re.fullmatch(
        rf"postgresql\+psycopg2://{variable}:{variable}@postgres:5432/{variable}", environment["DAGSTER_POSTGRES_URL"]
    )
    assert url and url.groups() == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
    assert environment["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]


def test_dockerfile_installs_the_deployment_extras_and_serves_the_same_location():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'pip install "\.\[fast,deploy\]"', dockerfile)
    warm_up = re.search(r'RUN python -c "(from [\w.]+ import warm_numba_cache);', dockerfile)
    assert warm_up, "the image warms numba's cache at build time"
    exec(warm_up.group(1), {})  # the build's import resolves in this checkout (the warm-up itself takes minutes)
    command = yaml.safe_load(re.search(r"^CMD (\[.*?\])$", dockerfile, re.S | re.M).group(1).replace("\\\n", ""))
    compose_command = load_yaml(DEPLOY / "docker-compose.yml")["services"]["code-server"]["command"]
    for name in ("--module-name", "--location-name", "--port"):
        assert option(command, name) == option(compose_command, name)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["deploy"] == ["dagster-postgres==0.29.27", "dagster-k8s==0.29.27"]


def test_helm_values_match_the_instance_and_the_code_location():
    values = load_yaml(DEPLOY / "helm" / "values.yaml")
    instance = load_yaml(KUBERNETES_INSTANCE)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    location = code_location()
    args = deployment["codeServerArgs"]
    assert option(args, "--module-name") == location["module_name"]
    assert option(args, "--location-name") == location["code_location_name"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}

    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queue = coordinator["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == instance["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert queue["maxConcurrentRuns"] == instance["run_coordinator"]["config"]["max_concurrent_runs"]

    logs = values["computeLogManager"]
    assert logs["type"] == instance["compute_logs"]["class"]
    assert logs["config"]["s3ComputeLogManager"] == instance["compute_logs"]["config"]

    launcher = instance["run_launcher"]["config"]
    wanted = [{"name": name} for name in launcher["env_config_maps"]], [{"name": n} for n in launcher["env_secrets"]]
    for component in (deployment, values["dagsterDaemon"], values["dagsterWebserver"]):
        assert (component["envConfigMaps"], component["envSecrets"]) == wanted
    assert (
        launcher["resources"]
        == values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    )
