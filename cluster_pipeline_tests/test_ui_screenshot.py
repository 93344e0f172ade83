"""The product's face: `dagster dev` on a temporary home, one execution, the asset page in headless
Chromium with the summary (and its projection plot) open. The screenshot is kept at
artifacts/ui-screenshot.png (path printed) for CI to keep."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cluster_pipeline_tests.s3_server import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTIFACT = REPO / "artifacts" / "ui-screenshot.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


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
def test_asset_page_shows_the_projection_plot(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as expected
    from selenium.webdriver.support.ui import WebDriverWait

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CLUSTER_PIPELINE_ROOT": str(tmp_path / "lake"),
        "PYTHONPATH": str(REPO),
    }
    demo = subprocess.run(
        [sys.executable, "-m", "cluster_pipeline.cli", "demo", "--json", "--documents", "1500"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    partition = "default." + __import__("json").loads(demo.stdout)["cluster_id"]

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
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1600,1400",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    browser = None
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", 180)
        browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        browser.get(f"http://127.0.0.1:{port}/assets/execution_result?view=events&partition={partition}")
        wait = WebDriverWait(browser, 90)
        show = wait.until(expected.element_to_be_clickable((By.XPATH, "//*[contains(text(), 'Show Markdown')]")))
        browser.execute_script("arguments[0].click();", show)
        plot = wait.until(expected.visibility_of_element_located((By.CSS_SELECTOR, "img[alt='projection']")))
        wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", plot) > 500)
        dismiss_community_dialog(browser, By)
        ARTIFACT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACT))
        assert plot.size["width"] > 300 and plot.size["height"] > 200
    finally:
        if browser is not None:
            browser.quit()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    assert ARTIFACT.stat().st_size > 50_000
    print(f"\nUI screenshot: {ARTIFACT}")
