"""The HTML report's interactive map, opened in headless Chromium with no network: every cluster
named in the legend and on the map, a document on hover, a cluster hidden from the legend, the
search ringing the matching documents, and the colour switched to a metadata column."""

import time

import pyarrow as pa
import pytest
from dagster import DagsterInstance

from cluster_pipeline.cli import main
from cluster_pipeline_tests.browser import headless_chromium, keep_screenshot
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


def _map(browser, script):
    return browser.execute_script(f"const map = document.getElementById('cluster-map'); {script}")


@pytest.mark.slow
def test_report_map_works_offline_in_a_browser(lake, collections, tmp_path):
    documents = blob_documents(1_500, centers=5, dim=16)
    categories = ["World", "Sports", "Business", "Sci/Tech"]
    documents = documents.append_column("category", pa.array([categories[i % 4] for i in range(1_500)]))
    collections.ingest("default", "c", documents)
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
        on_map = [e.text for e in browser.find_elements("css selector", "#cluster-map .annotation-text")]
        assert sorted(on_map) == sorted(c.label for c in result.centroids)  # each cluster named on the map
        browser.execute_script("arguments[0].scrollIntoView()", browser.find_element("id", "cluster-map"))
        hover = _map(
            browser,
            "Plotly.Fx.hover(map, {xval: map.data[0].x[0], yval: map.data[0].y[0]}, 'xy');"
            "return [map.data[0].text[0], document.querySelector('#cluster-map .hovertext')?.textContent];",
        )
        text, shown = hover
        assert text and shown and text[:20] in shown and names[0] in shown

        word = result.centroids[0].keywords[0]
        search = browser.find_element("id", "cluster-map-search")
        search.send_keys(word)
        time.sleep(0.5)
        matches = _map(browser, "return map.data[map.data.length - 1];")
        expected = sum(word in t for t in documents.column("text").to_pylist())
        assert matches["name"] == "search matches" and len(matches["x"]) == expected > 0
        assert browser.find_element("id", "cluster-map-matches").text == f"{expected:,} matching documents"
        keep_screenshot(browser, "report-map.png")

        search.clear()
        browser.find_element("css selector", "#cluster-map-colour option[value='category']").click()
        time.sleep(0.5)
        traces = _map(browser, "return map.data.map(t => [t.name, t.x.length]);")
        assert sorted(name for name, _ in traces[:-1]) == sorted(categories)
        assert sum(count for _, count in traces[:-1]) == 1_500  # every point, coloured by its category
        keep_screenshot(browser, "report-map-category.png")
        browser.find_elements("css selector", "#cluster-map .legendtoggle")[0].click()  # hide a category
        time.sleep(0.5)
        assert _map(browser, "return map.data[0].visible;") == "legendonly"
