"""Real text embeddings with ground truth (AG News test split: 7,600 news texts, 4 topics, MiniLM-384).

The HDBSCAN and automatic-k executions run once per module (UMAP of 7,600 documents costs ~10 s,
plus about a minute of numba compilation the first time on a machine) and are shared by the tests.
"""

from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance
from sklearn.metrics import adjusted_rand_score, v_measure_score

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore, cluster_name
from cluster_pipeline.core.topics.hierarchy import coarse_topics
from cluster_pipeline_tests.conftest import AG_NEWS
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config

pytestmark = pytest.mark.slow

# Words frequent in every AG News topic (said, new, news agencies): they must never name a cluster.
# The rule that keeps them out is general (core.labels.offline.log_odds_ranking); this is the check.
EVERYWHERE_WORDS = {"said", "new", "reuters", "ap", "afp"}


def assert_no_keyword_dominates(result: ExecutionResult) -> None:
    """No keyword among the top 3 of more than a third of the clusters."""
    top3 = Counter(word for c in result.centroids for word in c.keywords[:3])
    word, count = top3.most_common(1)[0]
    assert count <= len(result.centroids) / 3, (word, count, [c.label for c in result.centroids])


@pytest.fixture(scope="module")
def ag_lake(tmp_path_factory):
    if not AG_NEWS.exists():
        pytest.skip(f"shared data set not present: {AG_NEWS}")
    lake = Lake.local(tmp_path_factory.mktemp("ag_news") / "lake")
    table = pq.read_table(AG_NEWS)
    CollectionStore(lake).ingest("default", "ag", table)
    truth = dict(zip(table.column("document_id").to_pylist(), table.column("category").to_pylist(), strict=True))
    return lake, truth


def run(ag_lake, run_id: str, **fields) -> tuple[ExecutionResult, np.ndarray, np.ndarray]:
    """Execute a configuration on AG News; the result, the cluster index per document and the topics."""
    lake, truth = ag_lake
    config = ClusterConfig(collection="ag", **fields)
    result = execute(lake, config, run_id)
    assignments = ResultStore(lake).read_assignments("default", config.cluster_id, run_id).to_pandas()
    return result, assignments.cluster_index.to_numpy(), assignments.document_id.map(truth).to_numpy()


@pytest.fixture(scope="module")
def hdbscan_default(ag_lake):
    return run(ag_lake, "run_00000000000a9001", algorithm="hdbscan")


@pytest.fixture(scope="module")
def kmeans_auto(ag_lake):
    return run(ag_lake, "run_00000000000a9002", parameters={"n_clusters": "auto"})


def test_hdbscan_with_default_parameters_finds_the_topics(hdbscan_default):
    result, clusters, topics = hdbscan_default
    assert result.status == "completed" and result.num_points == 7600
    assert result.num_clusters >= 4
    assert result.num_noise / result.num_points <= 0.20
    assert max(c.num_members for c in result.centroids) <= 0.4 * result.num_points
    assert v_measure_score(topics, clusters) >= 0.45  # noise (-1) counts as a label of its own
    # the cluster UMAP + HDBSCAN found with 74 % of the documents was split, each child naming its parent
    splits = result.cluster_splits
    assert splits is not None and list(splits["split"]) == ["found_0"] and len(splits["split"]["found_0"]) >= 3
    children = [c.cluster_id for c in result.centroids if c.metadata.get("split_from") == "found_0"]
    assert children == splits["split"]["found_0"]
    assert result.parameters["min_cluster_size"] == 44  # sqrt(7,600) / 2
    assert result.reduction["method"] == "umap" and result.reduction["n_components"] == 5
    assert result.reduction["fitted_documents"] == 7600


def test_hdbscan_verdict_says_what_the_metrics_cover(hdbscan_default):
    result, clusters, _ = hdbscan_default
    noise = int((clusters < 0).sum())
    assert result.num_noise == noise
    assert result.coverage.startswith(f"computed on {7600 - noise:,} of 7,600 documents; ")
    assert result.metrics["description"] == "Poor clustering quality (needs tuning)"  # text: ≈0.04
    assert "Text embeddings score low on silhouette" in result.quality_note and "UMAP" in result.quality_note
    assert result.warning is None


def test_hdbscan_keywords_set_clusters_apart(hdbscan_default):
    assert_no_keyword_dominates(hdbscan_default[0])


def test_kmeans_auto_chooses_a_topic_count(kmeans_auto):
    result, clusters, topics = kmeans_auto
    assert 3 <= result.num_clusters <= 6
    assert v_measure_score(topics, clusters) >= 0.5
    record = result.auto_k
    assert record["chosen"] == result.num_clusters == result.parameters["n_clusters"]
    assert record["parameter"] == "n_clusters" and (record["k_min"], record["k_max"]) == (2, 12)
    assert list(record["scores"]) == [str(k) for k in range(2, 13)]
    assert max(record["scores"], key=record["scores"].get) == str(record["chosen"])
    assert set(result.artifacts) == {"projection", "sizes", "auto_k", "map", "hierarchy"}


def test_the_tree_of_eight_clusters_cut_into_four_finds_the_topics(ag_lake):
    """Measured: V-measure 0.56 and ARI 0.53 against the four categories, as good as k-means with k=4."""
    result, clusters, topics = run(ag_lake, "run_00000000000a9003", parameters={"n_clusters": 8})
    coarse = coarse_topics(result, 4)
    assert len(coarse) == 4 and sorted(c for t in coarse for c in t.clusters) == sorted(result.hierarchy["leaves"])
    group_of = {c: i for i, topic in enumerate(coarse) for c in topic.clusters}
    groups = np.array([group_of[cluster_name(c)] for c in clusters])
    assert v_measure_score(topics, groups) >= 0.5 and adjusted_rand_score(topics, groups) >= 0.45
    sports = coarse[Counter(groups[topics == "Sports"]).most_common(1)[0][0]]
    words = " ".join([sports.label, *sports.keywords]).lower()
    assert any(w in words for w in ("game", "season", "team", "win", "cup", "league", "coach", "sox", "victory"))
    assert len(sports.clusters) >= 2  # the sports clusters merged


def test_kmeans_recovers_the_four_topics_through_dagster(lake, collections, ag_news_path):
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
    assert result.coverage == "computed on 7,600 of 7,600 documents; 0 % noise"
    # the cluster holding most Sports articles is named with sports words
    sports = assignments[categories == "Sports"].cluster_id.mode()[0]
    centroid = next(c for c in result.centroids if c.cluster_id == sports)
    words = " ".join([centroid.label, *centroid.keywords]).lower()
    assert any(w in words for w in ("game", "season", "team", "win", "cup", "league", "coach", "sox", "victory"))
    # words frequent in every topic name no cluster
    labels = {w.lower() for c in result.centroids for w in c.label.split(" / ")}
    assert not labels & EVERYWHERE_WORDS, [c.label for c in result.centroids]
    assert_no_keyword_dominates(result)
    # topic words that occur together and are distinct (BERTopic with KMeans(4): c_npmi 0.038, diversity 0.775)
    assert result.metrics["coherence_npmi"] >= 0.04 and result.metrics["topic_diversity"] >= 0.9
    assert "IBM" in {w for c in result.centroids for w in c.keywords[:3]}  # as the texts write it, not "Ibm"
