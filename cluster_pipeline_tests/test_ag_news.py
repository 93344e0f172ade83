"""A full execution through Dagster on real text embeddings with ground truth (AG News, 7,600 docs)."""

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance
from sklearn.metrics import adjusted_rand_score, v_measure_score

from cluster_pipeline.core.results import ResultStore
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config


@pytest.mark.slow
def test_kmeans_recovers_the_four_topics(lake, collections, ag_news_path):
    table = pq.read_table(ag_news_path)
    collections.ingest("default", "c", table)
    config = create_config(lake, parameters={"n_clusters": 4})
    with DagsterInstance.ephemeral() as instance:
        outcome, result = materialize_config(lake, config, instance)
    assert outcome.success and result.status == "completed"
    assert result.num_points == 7600 and result.num_clusters == 4
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, result.run_id).to_pandas()
    truth = dict(zip(table.column("document_id").to_pylist(), table.column("category").to_pylist(), strict=True))
    categories = assignments.document_id.map(truth)
    assert v_measure_score(categories, assignments.cluster_index) >= 0.55
    assert adjusted_rand_score(categories, assignments.cluster_index) >= 0.5
    assert result.metrics["silhouette_score"] > 0.0 and result.silhouette_sample_size == 7600
    # the cluster holding most Sports articles is named with sports words
    sports = assignments[categories == "Sports"].cluster_id.mode()[0]
    centroid = next(c for c in result.centroids if c.cluster_id == sports)
    words = " ".join([centroid.label, *centroid.keywords]).lower()
    assert any(w in words for w in ("game", "season", "team", "win", "cup", "league", "coach", "sox", "victory"))
