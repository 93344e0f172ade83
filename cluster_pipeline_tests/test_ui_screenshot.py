"""The product's face: `dagster dev` on a temporary home after the demo, in headless Chromium.

The partition list shows readable configuration names (kept at artifacts/ui-partitions.png); a run
launched as the UI's "Materialize" button does (GraphQL, one asset of the five selected) becomes
the latest materialization of all five; the execution's projection opens from its own metadata
entry (artifacts/ui-screenshot.png)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cluster_pipeline_tests.browser import ARTIFACTS, REPO, headless_chromium, keep_screenshot
from cluster_pipeline_tests.daemon_helpers import cli, stop_process_group
from cluster_pipeline_tests.s3_server import free_port

BIN = Path(sys.executable).parent
ASSETS = ("collection_embeddings", "cluster_assignments", "cluster_labels", "cluster_quality", "execution_result")
CHECKS = (
    "silhouette_threshold",
    "davies_bouldin_threshold",
    "largest_cluster_fraction",
    "noise_fraction",
    "ari_vs_previous",
)
# what the asset page's "Materialize" button sends for one asset of a partition
LAUNCH = """mutation Launch($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def launch_from_the_ui(port: int, asset: str, partition: str) -> str:
    selector = {
        "repositoryLocationName": "cluster_pipeline",
        "repositoryName": "__repository__",
        "pipelineName": "__ASSET_JOB",
        "assetSelection": [{"path": [asset]}],
        "assetCheckSelection": [{"assetKey": {"path": [asset]}, "name": name} for name in CHECKS],  # its checks
    }
    params = {
        "selector": selector,
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def check_statuses(port: int, run_id: str) -> dict[str, str | None]:
    """Each of execution_result's checks: its status in run ``run_id``."""
    found = {}
    for name in CHECKS:
        query = f"""{{ assetCheckExecutions(assetKey: {{path: ["execution_result"]}}, checkName: "{name}", limit: 5)
          {{ runId status }} }}"""
        executions = graphql(port, query)["assetCheckExecutions"]
        found[name] = next((e["status"] for e in executions if e["runId"] == run_id), None)
    return found


def latest_materializations(port: int, partition: str) -> dict[str, str | None]:
    """Each of the five assets' latest materialization of ``partition``: its run id."""
    found = {}
    for asset in ASSETS:
        query = f"""{{ assetOrError(assetKey: {{path: ["{asset}"]}}) {{ ... on Asset {{
          assetMaterializations(partitions: ["{partition}"], limit: 1) {{ runId }} }} }} }}"""
        events = graphql(port, query)["assetOrError"]["assetMaterializations"]
        found[asset] = events[0]["runId"] if events else None
    return found


def wait_for_http(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def dismiss_community_dialog(browser, by, seconds: float = 6.0) -> None:
    """Dagster shows a 'Join the community' dialog on a browser's first visit; skip it once it appears."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for skip in browser.find_elements(by.XPATH, "//button[normalize-space()='Skip']"):
            browser.execute_script("arguments[0].click();", skip)
            time.sleep(0.5)
            return
        time.sleep(0.25)


@pytest.mark.slow
def test_partitions_have_readable_names_and_the_projection_shows(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CLUSTER_PIPELINE_ROOT": str(tmp_path / "lake"),
        "PYTHONPATH": str(REPO),
    }
    demo = cli(env, "demo", "--documents", "1500", timeout=300)
    second = cli(env, "clusters", "create", "--collection", "demo-news", "--param", "n_clusters=3")
    shown = cli(env, "clusters", "show", demo["cluster_id"])
    partition = f"default.{shown['name']}"
    assert (partition, second["name"]) == ("default.demo-news-kmeans-k6", "demo-news-kmeans-k3")

    port = free_port()
    with open(tmp_path / "dagster-dev.log", "w") as log:
        server = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", 180)
        before = latest_materializations(port, partition)
        run_id = launch_from_the_ui(port, "execution_result", partition)
        deadline, status = time.time() + 240, None
        while time.time() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
            time.sleep(1)
            run = graphql(port, f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}')["runOrError"]
            status = run.get("status")
        assert status == "SUCCESS", (status, (tmp_path / "dagster-dev.log").read_text()[-3000:])
        assert len(set(before.values())) == 1 and None not in before.values()  # the demo's run, all five
        assert latest_materializations(port, partition) == dict.fromkeys(ASSETS, run_id)  # all five: the new run
        assert check_statuses(port, run_id) == {  # every check: evaluated, or skipped without a threshold
            "largest_cluster_fraction": "SUCCEEDED",
            "noise_fraction": "SUCCEEDED",
            "silhouette_threshold": "SKIPPED",
            "davies_bouldin_threshold": "SKIPPED",
            "ari_vs_previous": "SKIPPED",
        }
        with headless_chromium(tmp_path / "chrome") as browser:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support import expected_conditions as expected
            from selenium.webdriver.support.ui import WebDriverWait

            wait = WebDriverWait(browser, 90)
            browser.get(f"http://127.0.0.1:{port}/assets/execution_result?view=partitions")
            for name in (partition, f"default.{second['name']}"):
                wait.until(expected.presence_of_element_located((By.XPATH, f"//*[contains(text(), '{name}')]")))
            dismiss_community_dialog(browser, By)
            keep_screenshot(browser, "ui-partitions.png")
            assert "clust_" not in browser.find_element(By.TAG_NAME, "body").text

            browser.get(f"http://127.0.0.1:{port}/assets/execution_result?view=events&partition={partition}")
            show = wait.until(
                expected.element_to_be_clickable(
                    (By.XPATH, "//tr[td[normalize-space()='projection']]//*[contains(text(), 'Show Markdown')]")
                )
            )
            browser.execute_script("arguments[0].click();", show)
            plot = wait.until(expected.visibility_of_element_located((By.CSS_SELECTOR, "img[alt='projection']")))
            wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", plot) >= 1000)
            dismiss_community_dialog(browser, By)
            keep_screenshot(browser, "ui-screenshot.png")
            assert plot.size["width"] > 300 and plot.size["height"] > 200
    finally:
        stop_process_group(server)
    assert (ARTIFACTS / "ui-screenshot.png").stat().st_size > 50_000
