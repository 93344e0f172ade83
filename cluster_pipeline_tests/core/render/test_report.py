import re

import numpy as np
import pandas as pd

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.quality.checks import QualityChecks, evaluate_checks
from cluster_pipeline.core.render.cluster_map import map_data, map_html, map_table
from cluster_pipeline.core.render.plots import Projection, sizes_png
from cluster_pipeline.core.render.report import html_report, markdown_summary
from cluster_pipeline.core.store.results import Centroid
from cluster_pipeline_tests.core.store.test_results import completed

DRIFT = {
    "previous_run_id": "run_0000000000000001",
    "shared_documents": 10,
    "adjusted_rand_index": 0.91234567,
    "stable_clusters": [{"cluster_id": "cl_0", "previous_cluster_id": "cl_1", "centroid_distance": 0.0123456}],
    "new_clusters": ["cl_1"],
    "gone_clusters": ["cl_0"],
}


def _result():
    result = completed().with_updates(
        metrics={
            "silhouette_score": 0.03774607136989689,
            "davies_bouldin_index": 3.456789,
            "calinski_harabasz_score": 123.456789,
            "description": "Weak",
        },
        parameters={"n_clusters": 2, "random_state": 0},
        num_noise=2,
        drift=DRIFT,
        dagster_run_id="8a0e5a1c-0000-4000-8000-000000000000",
    )
    return result.with_updates(centroids=[Centroid("cl_0", 6, "<script>x</script>", "s", ["k"]), result.centroids[1]])


def test_markdown_summary_reads_at_a_glance():
    result = _result()
    config = ClusterConfig(collection="reviews", name="reviews-kmeans-k2", cluster_id=result.cluster_id)
    markdown = markdown_summary(result, config, evaluate_checks(result, QualityChecks(max_noise_fraction=0.1)))
    assert markdown.startswith("### reviews-kmeans-k2 · run_a8e270953254754b · completed")
    assert "| silhouette | 0.03775 |" in markdown and "| Calinski–Harabasz | 123.5 |" in markdown
    assert '| algorithm | kmeans {"n_clusters": 2, "random_state": 0} |' in markdown
    assert "| noise | 2 (20 %) |" in markdown
    assert (
        "| vs previous | ARI 0.9123 against run_0000000000000001: 1 stable, 1 new (cl_1), 1 gone (cl_0) |" in markdown
    )
    assert "| noise_fraction | failed | 0.2 | 0.1 | share of noise points 0.2 > 0.1 |" in markdown
    assert (
        "| silhouette_threshold | skipped | 0.03775 | - | no threshold configured: set checks.min_silhouette"
        in markdown
    )
    assert "0.0377460" not in markdown  # no unrounded float anywhere


def test_html_report_has_captions_checks_the_run_link_and_drift():
    result = _result()
    png = sizes_png([6, 4], ["a", "b"], 2)
    outcomes = evaluate_checks(result, QualityChecks(max_noise_fraction=0.1))
    page = html_report(result, {"sizes": png}, outcomes=outcomes, dagster_url="https://dagster.example.org/")
    assert "&lt;script&gt;" in page and "<script>x" not in page and 'src="data:image/png;base64,' in page
    assert "<figcaption><b>Figure 1.</b> Documents per cluster" in page
    assert '<a href="https://dagster.example.org/runs/8a0e5a1c-0000-4000-8000-000000000000">' in page
    assert '<tr class="failed"><td>noise_fraction</td>' in page
    assert '<tr class="skipped"><td>ari_vs_previous</td><td>skipped</td>' in page
    assert "<td>cl_0</td><td>&lt;script&gt;x&lt;/script&gt;</td><td>cl_1</td><td>0.01235</td>" in page
    assert "New clusters: cl_1 (Shipping). Gone clusters (previous run's ids): cl_0." in page
    assert not re.search(r"""(src|href)=["']?https?://(?!dagster\.example\.org)""", page)  # nothing to fetch


def _documents(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "document_id": [f"d{i}" for i in range(n)],
            "title": [f"Title {i}" if i % 2 else None for i in range(n)],
            "text": [f"Body  of\ndocument {i} " + "word " * 60 for i in range(n)],
        }
    )


def test_map_keeps_a_bounded_stratified_sample_with_document_text():
    rng = np.random.default_rng(0)
    labels = np.where(np.arange(20_000) < 50, 2, rng.integers(-1, 2, size=20_000))  # cluster 2 is tiny
    projection = Projection(np.arange(20_000), rng.normal(size=(20_000, 2)), labels, 20_000, "pca")
    table = map_table(projection, _documents(20_000), max_points=1_000)
    assert table.num_rows == 1_000 and set(table.column("cluster_index").to_pylist()) == {-1, 0, 1, 2}
    row = table.slice(0, 1).to_pylist()[0]
    i = int(row["document_id"][1:])
    title = f"Title {i} — " if i % 2 else ""
    assert row["text"].startswith(f"{title}Body of document {i} word") and row["text"].endswith("…")
    assert max(len(t) for t in table.column("text").to_pylist()) <= 160


def test_map_keeps_metadata_columns_and_draws_them_offline():
    labels = np.array([0, 0, 1, -1])
    projection = Projection(np.arange(4), np.arange(8, dtype=float).reshape(4, 2), labels, 4, "pca")
    documents = _documents(4).assign(category=["World", "Sports", "World", None], year=[2001, 2002, 2003, 2004])
    table = map_table(projection, documents)
    assert table.column_names[5:] == ["metadata.category", "metadata.year"]
    centroids = [Centroid("cl_0", 2, "Rockets", "", []), Centroid("cl_1", 1, "Pasta", "", [])]
    data = map_data(table, centroids)
    assert [c["name"] for c in data["clusters"]] == ["cl_0 Rockets", "cl_1 Pasta"] and data["cluster"] == [0, 0, 1, -1]
    assert data["text"][1].startswith("Title 1 — Body of document 1 word word") and data["id"][1] == "d1"
    assert data["metadata"]["category"] == {
        "kind": "categorical",
        "names": ["World", "(none)", "Sports"],
        "values": [0, 2, 0, 1],
    }
    assert data["metadata"]["year"] == {"kind": "numeric", "values": [2001.0, 2002.0, 2003.0, 2004.0]}
    fragment = map_html(table, centroids)
    assert len(fragment) > 3_000_000 and "cl_1 Pasta" in fragment and "<script src=" not in fragment
    assert '<option value="category">category</option>' in fragment and 'type="search"' in fragment


def test_the_summary_shows_topic_coherence_diversity_and_splits():
    topics = {"coherence_npmi": 0.1234, "coherence_npmi_document": 0.25, "topic_diversity": 0.95}
    splits = {"max_cluster_fraction": 0.4, "found": 2, "split": {"found_0": ["cl_0", "cl_1"]}}
    result = completed().with_updates(metrics={**completed().metrics, **topics}, cluster_splits=splits)
    markdown = markdown_summary(result, None, [])
    assert "| topic words | coherence (NPMI) 0.123 (documents: 0.250), diversity 0.95 |" in markdown
    assert "| split | found_0 (most of the documents) into cl_0, cl_1 (each at most 40 %) |" in markdown
    assert "topic words" not in markdown_summary(_result(), None, [])
