"""The HTML report's interactive map, opened in headless Chromium with no network: it draws every
cluster (named in the legend), shows a document on hover and hides a cluster from the legend."""

import time

import pytest
from dagster import DagsterInstance

from cluster_pipeline.cli import main
from cluster_pipeline_tests.browser import headless_chromium, keep_screenshot
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


@pytest.mark.slow
def test_report_map_works_offline_in_a_browser(lake, collections, tmp_path):
    collections.ingest("default", "c", blob_documents(1_500, centers=5, dim=16))
    config = create_config(lake, parameters={"n_clusters": 5})
    with DagsterInstance.ephemeral() as instance:
        _, result = materialize_config(lake, config, instance)
    report = tmp_path / "report.html"
    assert main(["executions", "report", result.run_id, "--output", str(report)]) == 0
    names = [f"{c.cluster_id} {c.label}" for c in result.centroids]

    with headless_chromium(tmp_path / "chrome", offline=True, size="1400,1800") as browser:
        browser.get(report.as_uri())
        deadline = time.time() + 30
        while time.time() < deadline and len(browser.find_elements("css selector", "#cluster-map .legendtext")) < 5:
            time.sleep(0.2)
        legend = [e.text for e in browser.find_elements("css selector", "#cluster-map .legendtext")]
        assert legend[:5] == names  # every cluster named, with its label, in the legend
        fetched = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))"
        )
        assert fetched == []  # plotly.js and the data are inlined: nothing was loaded
        map_element = browser.find_element("id", "cluster-map")
        browser.execute_script("arguments[0].scrollIntoView()", map_element)
        hover = browser.execute_script(
            "const map = document.getElementById('cluster-map');"
            "Plotly.Fx.hover(map, [{curveNumber: 0, pointNumber: 0}]);"
            "return [map.data[0].customdata[0], document.querySelector('#cluster-map .hovertext')?.textContent];"
        )
        (name, text, document_id), shown = hover
        assert name == names[0] and text and shown and text[:20] in shown and names[0] in shown
        keep_screenshot(browser, "report-map.png")
        browser.find_elements("css selector", "#cluster-map .legendtoggle")[0].click()  # hide cl_0
        time.sleep(0.5)
        assert browser.execute_script("return document.getElementById('cluster-map').data[0].visible") == "legendonly"
