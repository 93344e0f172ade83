"""Choosing what to cluster, through the Dagster job on real Parquet: filters, a fitted sample, several
features, centroid methods and attribute groups — each with its bad inputs, each result storing the
configuration it ran with."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.cli import main
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config

IN_GROUPS = {"field": "group", "operator": "in", "value": ["g0", "g1"]}


@pytest.fixture
def documents(collections):
    table = blob_documents(300, centers=3)
    image = np.random.default_rng(5).normal(size=(300, 6)).astype(np.float32)
    table = table.append_column("image", pa.FixedSizeListArray.from_arrays(pa.array(image.ravel()), 6))
    collections.ingest("default", "c", table)
    return table


def run(lake, instance, **fields):
    config = create_config(lake, **fields)
    outcome, result = materialize_config(lake, config, instance)
    assert result is not None, "every execution leaves an ExecutionResult"
    return config, outcome, result


def assignments(lake, result):
    return ResultStore(lake).read_assignments(result.namespace, result.cluster_id, result.run_id)


def test_a_filter_clusters_only_the_matching_documents(lake, instance, documents):
    config, outcome, result = run(lake, instance, parameters={"n_clusters": 2}, filters=IN_GROUPS)
    assert outcome.success and result.status == "completed" and result.num_clusters == 2
    in_groups = pc.is_in(documents.column("group"), pa.array(["g0", "g1"]))
    expected_ids = set(documents.filter(in_groups).column("document_id").to_pylist())
    assert result.num_points == len(expected_ids) == 200
    assert result.selection == {
        "collection_documents": 300, "filter": IN_GROUPS, "matched": 200, "fitted": 200, "assigned_by": None
    }  # fmt: skip
    assert set(assignments(lake, result).column("document_id").to_pylist()) == expected_ids
    assert result.configuration == config.model_dump(mode="json") and result.configuration_version == 1
    keywords = {tuple(sorted(c.keywords[:3])) for c in result.centroids}
    assert ("goal", "league", "striker") not in keywords  # g2's topic was filtered out


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"field": "group", "operator": "=", "value": "g7"}, "No documents match the configuration's filter (0 of 300"),
        ({"field": "grup", "operator": "=", "value": "g0"}, "unknown field 'grup' (did you mean 'group'?)"),
        ({"field": "group", "operator": ">", "value": 3}, "'group' holds text values, so gt needs a string"),
    ],
)
def test_bad_filters_fail_the_execution_with_their_message(lake, instance, documents, filters, message):
    config, outcome, result = run(lake, instance, filters=filters)
    assert not outcome.success and result.status == "failed" and message in result.error_message
    assert result.configuration["filters"] == config.filters and result.metrics is None


def test_the_cli_refuses_a_filter_the_collection_cannot_serve(capsys, documents):
    bad = json.dumps({"field": "grup", "operator": "=", "value": "g0"})
    assert main(["clusters", "create", "--collection", "c", "--filter", bad]) == 2
    assert "unknown field 'grup' (did you mean 'group'?)" in capsys.readouterr().err
    assert main(["clusters", "create", "--collection", "c", "--filter", "{nope"]) == 2
    assert "--filter is not valid JSON" in capsys.readouterr().err
    assert main(["clusters", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("algorithm", "parameters", "assigned_by"),
    [("kmeans", {"n_clusters": 3}, "nearest_centroid"), ("agglomerative", {"n_clusters": 3}, "nearest_member")],
)
def test_sample_size_fits_a_sample_and_assigns_everyone(lake, instance, documents, algorithm, parameters, assigned_by):
    _, outcome, result = run(lake, instance, algorithm=algorithm, parameters=parameters, sample_size=90)
    assert outcome.success and result.num_points == 300 and result.num_clusters == 3
    assert result.selection["fitted"] == 90 and result.selection["assigned_by"] == assigned_by
    table = assignments(lake, result)
    assert table.num_rows == 300 and table.column("in_sample").to_pylist().count(True) == 90
    truth = dict(zip(documents.column("document_id").to_pylist(), documents.column("group").to_pylist(), strict=True))
    found = table.column("cluster_index").to_pylist()
    assert adjusted_rand_score([truth[d] for d in table.column("document_id").to_pylist()], found) == 1.0


def test_a_sample_larger_than_the_documents_fails_clearly(lake, instance, documents):
    _, outcome, result = run(lake, instance, sample_size=250, filters=IN_GROUPS)
    assert not outcome.success and result.status == "failed"
    assert result.error_message == (
        "sample_size=250 is larger than the 200 documents to cluster (after the filter); lower sample_size to "
        "at most 200, or remove it to fit on every document."
    )
    assert result.num_points == 200  # the failed result still says what it would have clustered


@pytest.mark.parametrize("combine", [{}, {"combine": "weighted", "weights": [3.0, 1.0]}])
def test_several_features_are_clustered_as_one_space(lake, instance, documents, combine):
    _, outcome, result = run(lake, instance, features=["embedding", "image"], parameters={"n_clusters": 3}, **combine)
    assert outcome.success and result.feature == "embedding+image" and result.num_clusters == 3
    assert result.configuration["features"] == ["embedding", "image"]
    groups = documents.column("group").to_pylist()
    agreement = adjusted_rand_score(groups, assignments(lake, result).column("cluster_index").to_pylist())
    assert agreement > (0.99 if combine else 0.5)  # the image noise weighs a quarter when weighted 3:1


def test_bad_features_fail_clearly(lake, instance, documents, capsys):
    _, outcome, result = run(lake, instance, features=["embedding", "clip"])
    assert not outcome.success and "Feature extractor 'clip' not found in collection 'c'" in result.error_message
    argv = ["clusters", "create", "--collection", "c", "--feature", "embedding", "--feature", "image"]
    assert main([*argv, "--combine", "weighted", "--weights", "1"]) == 2
    assert "combine='weighted' needs one weight per feature: 1 weights for 2 features" in capsys.readouterr().err
    assert main([*argv, "--combine", "independent"]) == 2  # not offered
    assert "'independent' is not one of 'concatenate', 'weighted'" in capsys.readouterr().err
    assert main([*argv, "--set", "combine=independent"]) == 2  # given anyway: told why
    assert "Create one configuration per feature instead" in capsys.readouterr().err
    # a stored configuration edited by hand so that its weights no longer match fails its Dagster run, saying why
    config = create_config(lake, features=["embedding", "image"], combine="weighted", weights=[1.0, 2.0])
    path = lake.storage.path(lake.cluster_config_key("default", config.cluster_id))
    path.write_text(path.read_text().replace('"weights": [\n    1.0,\n    2.0\n  ]', '"weights": [1.0]'))
    outcome, result = materialize_config(lake, config, instance)
    failure = outcome.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert not outcome.success and "1 weights for 2 features" in failure


@pytest.mark.parametrize("method", ["median", "medoid"])
def test_centroid_methods_set_distances_and_representatives(lake, instance, documents, method):
    _, outcome, result = run(lake, instance, parameters={"n_clusters": 3}, centroid_method=method)
    assert outcome.success and result.metrics["davies_bouldin_index"] > 0
    table = assignments(lake, result).to_pandas()
    X = np.stack(documents.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    position = {d: i for i, d in enumerate(documents.column("document_id").to_pylist())}
    for centroid in result.centroids:
        members = table[table.cluster_id == centroid.cluster_id]
        rows = X[[position[d] for d in members.document_id]]
        centre = np.median(rows, axis=0) if method == "median" else rows[members.distance.to_numpy().argmin()]
        assert np.allclose(members.distance, np.linalg.norm(rows - centre, axis=1), atol=1e-5)
        if method == "medoid":  # the medoid is a document: at distance 0, and the first representative
            assert members.distance.min() < 1e-5
            assert centroid.representative_document_ids[0] == members.document_id.iloc[members.distance.argmin()]


def test_attribute_groups_are_the_clusters(lake, instance, collections):
    table = blob_documents(300, centers=3)
    group = table.column("group").to_pylist()
    group[:10] = [None] * 10  # documents without a group are noise
    table = table.set_column(table.schema.get_field_index("group"), "group", pa.array(group))
    collections.ingest("default", "c", table)
    _, outcome, result = run(lake, instance, algorithm="attribute_based", parameters={"attributes": ["group"]})
    assert outcome.success and result.num_clusters == 3 and result.num_noise == 10 and result.engine == "pyarrow"
    assert result.metrics["silhouette_score"] > 0.5  # the groups are the blobs
    words = {"g0": "rocket", "g1": "pasta", "g2": "goal"}
    by_cluster = {c.metadata["attributes"]["group"]: c for c in result.centroids}
    assert sorted(by_cluster) == ["g0", "g1", "g2"]
    for name, centroid in by_cluster.items():
        assert centroid.num_members == group.count(name)
        assert words[name] in centroid.keywords[:3]  # labelled as for any clustering


def test_too_many_attribute_groups_or_unknown_columns_fail_clearly(lake, instance, documents, capsys):
    capped = {"attributes": ["group", "document_id"], "max_groups": 50}
    _, outcome, result = run(lake, instance, algorithm="attribute_based", parameters=capped)
    assert not outcome.success and result.error_message == (
        "attribute_based: group × document_id form 300 groups among the 300 documents, more than max_groups=50. "
        "Group by fewer or coarser columns, filter the documents, or raise max_groups (at most 10,000)."
    )
    _, outcome, result = run(lake, instance, algorithm="attribute_based", parameters={"attributes": ["brand"]})
    assert not outcome.success and "'brand' is not a metadata column of the collection 'c'" in result.error_message
    assert main(["clusters", "create", "--collection", "c", "--algorithm", "attribute_based"]) == 2
    assert "attribute_based needs attributes" in capsys.readouterr().err


@pytest.mark.slow
def test_ag_news_by_category_and_filtered(lake, instance, collections, ag_news_path):
    """Real text: the four categories as clusters, and k-means on two of them."""
    collections.ingest("default", "c", pq.read_table(ag_news_path))
    _, outcome, result = run(lake, instance, algorithm="attribute_based", parameters={"attributes": "category"})
    assert outcome.success and [c.num_members for c in result.centroids] == [1900] * 4
    keywords = {c.metadata["attributes"]["category"]: {k.lower() for k in c.keywords} for c in result.centroids}
    assert {"iraq", "baghdad"} & keywords["World"] and {"cup", "season", "league"} & keywords["Sports"]
    two = {"field": "category", "operator": "in", "value": ["World", "Sports"]}
    _, outcome, result = run(lake, instance, parameters={"n_clusters": 2}, filters=two)
    assert outcome.success and result.num_points == 3800
    table = assignments(lake, result)
    categories = dict(
        zip(*(pq.read_table(ag_news_path, columns=["document_id", "category"]).to_pydict().values()), strict=True)
    )
    truth = [categories[d] for d in table.column("document_id").to_pylist()]
    assert set(truth) == {"World", "Sports"}
    assert adjusted_rand_score(truth, table.column("cluster_index").to_pylist()) > 0.8
