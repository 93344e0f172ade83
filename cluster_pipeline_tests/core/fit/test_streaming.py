from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import ConfigurationError, InvalidEmbeddingsError
from cluster_pipeline.core.fit.clustering import Preparation
from cluster_pipeline.core.fit.options import ClusteringOptions, ReductionOptions
from cluster_pipeline.core.fit.streaming import StreamSource, fit_streaming, needs_streaming
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.progress import Progress
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline_tests.conftest import blob_documents


@pytest.fixture
def big_collection(collections):
    for i in range(3):  # three parts, so batches cross part boundaries; one month each
        part = blob_documents(20_000, centers=5, dim=128, seed=0, id_offset=i * 20_000)
        published = pa.array([date(2024, 1 + i, 1 + row % 28) for row in range(part.num_rows)], pa.date32())
        collections.ingest("default", "big", part.append_column("published", published))
    return collections.snapshot("default", "big")


def config(**extra):
    return ClusterConfig(collection="big", parameters={"n_clusters": 5}, memory_budget_mb=64, **extra)


def options(**extra):
    return ClusteringOptions(parameters={"n_clusters": 5}, memory_budget_mb=64, **extra)


def source(collections, snapshot):
    return StreamSource(collections, snapshot, ("embedding",))


def test_budget_decides_streaming(big_collection):
    n = big_collection.num_documents
    assert needs_streaming(options(), n, 128)  # 60k × 128 × 4 B = 29 MiB, × 2.5 > 64 MiB
    assert not needs_streaming(ClusteringOptions(memory_budget_mb=100), n, 128)
    assert not needs_streaming(ClusteringOptions(), n, 128)
    assert not needs_streaming(options(), n // 3, 128)  # a filter keeping a third fits in memory


def test_without_a_budget_what_does_not_fit_the_memory_available_streams(big_collection):
    n = big_collection.num_documents  # 29 MiB of vectors: about 73 MiB at the in-memory peak
    assert needs_streaming(ClusteringOptions(), n, 128, available=64 * 2**20)
    assert not needs_streaming(ClusteringOptions(), n, 128, available=128 * 2**20)
    # a configuration a streamed k-means cannot run stays in memory, as it did before
    assert not needs_streaming(ClusteringOptions(), n, 128, available=64 * 2**20, streamable=False)


def test_streaming_kmeans_assigns_every_document_exactly_once(lake, collections, big_collection):
    events = []
    progress = Progress([events.append], min_interval=0)
    streamed = fit_streaming(source(collections, big_collection), options(), progress=progress)
    fitted = streamed.fitted
    assert fitted.labels.shape == (60_000,) and (fitted.labels >= 0).all()
    assert fitted.num_clusters == 5 and fitted.cluster_sizes.sum() == 60_000
    assert fitted.extras["fit_method"] == "streaming_kmeans+sampled_training"  # no pass of partial_fit
    assert fitted.engine == "faiss"  # the training's engine, as an in-memory fit reports it
    assert list(fitted.cluster_sizes) == sorted(fitted.cluster_sizes, reverse=True)
    groups = np.concatenate(
        [
            pq.read_table(collections.storage.parquet_source(p.key), columns=["group"])
            .column(0)
            .to_numpy(zero_copy_only=False)
            for p in big_collection.parts
        ]
    )
    assert adjusted_rand_score(groups, fitted.labels) > 0.99
    assert streamed.metrics is not None and streamed.metrics.silhouette_sampled
    # the indices are scikit-learn's on every (prepared) vector, from the passes' statistics alone
    vectors = Preparation(normalize=True).apply(collections.scan(big_collection).matrix("embedding"))
    assert streamed.metrics.davies_bouldin_index == pytest.approx(
        davies_bouldin_score(vectors, fitted.labels), rel=1e-4
    )
    assert streamed.metrics.calinski_harabasz_score == pytest.approx(
        calinski_harabasz_score(vectors, fitted.labels), rel=1e-4
    )
    assert streamed.metrics.silhouette_sample_size == len(streamed.sample_rows) == 10_000
    assert {e.stage for e in events} >= {"sample", "fit", "assign", "score"}

    result = execute(lake, config().model_copy(update={"cluster_id": "clust_streamtest01"}), "run_0123456789abcdef")
    assert result.status == "completed" and result.num_points == 60_000
    assignments = pq.read_table(
        lake.storage.path(ResultStore(lake).assignments_key("default", "clust_streamtest01", result.run_id))
    )
    ids = assignments.column("document_id").to_pylist()
    assert len(ids) == len(set(ids)) == 60_000
    assert set(ids) == {f"d{i}" for i in range(60_000)}
    assert result.metrics is not None and sum(c.num_members for c in result.centroids) == 60_000
    # the topic tree and the topics over time cover every document, not only the labels' sample
    assert result.hierarchy["nodes"][-1]["num_members"] == 60_000 and len(result.hierarchy["leaves"]) == 5
    over_time = result.topics_over_time
    assert (over_time["granularity"], over_time["buckets"], over_time["documents_with_time"]) == ("day", 88, 60_000)
    assert pq.read_table(over_time["table"]).column("count").to_numpy().sum() == 60_000


def test_streaming_chooses_k_on_its_sample_and_refuses_umap(collections):
    collections.ingest("default", "small", blob_documents(3000, centers=5, dim=32, seed=2))
    snapshot = collections.snapshot("default", "small")
    auto = ClusteringOptions(parameters={"n_clusters": "auto", "k_max": 8}, memory_budget_mb=64)
    fitted = fit_streaming(source(collections, snapshot), auto).fitted
    assert fitted.auto_k is not None and fitted.auto_k.chosen == 5 and fitted.num_clusters == 5
    assert fitted.parameters["n_clusters"] == 5 and "k_max" not in fitted.parameters
    umap = ClusteringOptions(reduction=ReductionOptions(method="umap"), memory_budget_mb=64)
    with pytest.raises(ConfigurationError, match="cannot run UMAP or max_clusters"):
        fit_streaming(source(collections, snapshot), umap)
    with pytest.raises(ConfigurationError, match="cannot apply filters, several features, sample_size"):
        several = StreamSource(collections, snapshot, ("embedding", "image"), filtered=True)
        fit_streaming(several, ClusteringOptions(sample_size=100, memory_budget_mb=64))
    with pytest.raises(ConfigurationError, match="for hdbscan: only kmeans and minibatch_kmeans stream"):
        fit_streaming(source(collections, snapshot), ClusteringOptions(algorithm="hdbscan", memory_budget_mb=64))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_streamed_fit_refuses_a_row_that_is_not_finite_naming_it(collections, bad):
    for i in range(2):
        collections.ingest("default", "big", blob_documents(20_000, centers=5, dim=128, seed=0, id_offset=i * 20_000))
    part = blob_documents(20_000, centers=5, dim=128, seed=0, id_offset=40_000)
    X = part.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 128).copy()
    X[1234, 7] = bad  # row 41,234 of the collection, in a part another tool wrote (ingest refuses NaN)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 128)
    part = part.set_column(part.schema.get_field_index("embedding"), "embedding", embedding)
    collections.storage.write_parquet_new("default/collections/big/parts/part-000003-20000-abcd.parquet", part)
    snapshot = collections.snapshot("default", "big")
    with pytest.raises(InvalidEmbeddingsError, match=r"NaN values in embeddings \(.*row 41234\)"):
        fit_streaming(source(collections, snapshot), options())
