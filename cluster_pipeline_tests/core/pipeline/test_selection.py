"""What an execution clusters: filtered documents (with deletions and parts that lack a column), and
several features combined into one space."""

import numpy as np
import pyarrow as pa
import pytest

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.errors import FeatureNotFoundError, FilterError, InsufficientDocumentsError
from cluster_pipeline.core.pipeline.selection import check_against_collection, load_matrix, select_documents
from cluster_pipeline_tests.conftest import blob_documents


def two_features(n: int = 200, seed: int = 0) -> pa.Table:
    table = blob_documents(n, centers=4, dim=16, seed=seed)
    image = np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32) * 7  # another scale, another size
    return table.append_column("image", pa.FixedSizeListArray.from_arrays(pa.array(image.ravel()), 6))


def config(**fields):
    return parse_config({"collection": "c", **fields})


def test_a_filter_selects_rows_across_parts_deletions_and_missing_columns(collections):
    collections.ingest("default", "c", blob_documents(100, centers=3))
    later = blob_documents(50, centers=3, seed=1, id_offset=100).drop_columns(["group"])  # this part has no group
    collections.ingest("default", "c", later)
    collections.delete_documents("default", "c", ["d0", "d1"])
    snapshot = collections.snapshot("default", "c")
    groups = collections.scan(snapshot).table(["group"]).column("group").to_pylist()
    assert len(groups) == 148 and groups[-50:] == [None] * 50

    keep = config(filters={"field": "group", "operator": "in", "value": ["g0", "g2"]})
    selection = select_documents(collections, snapshot, keep)
    expected = [i for i, g in enumerate(groups) if g in ("g0", "g2")]
    assert selection.rows.tolist() == expected and selection.matched == len(expected)
    assert selection.record() == {
        "collection_documents": 148,
        "filter": keep.filters,
        "matched": len(expected),
        "fitted": len(expected),
        "assigned_by": None,
    }
    full = collections.scan(snapshot).matrix("embedding")
    assert np.array_equal(load_matrix(collections, snapshot, keep, selection), full[expected])
    ids = collections.load_documents(snapshot, rows=selection.rows)["document_id"].tolist()
    assert ids == [collections.load_documents(snapshot)["document_id"][i] for i in expected]

    none = config(filters={"field": "group", "operator": "is_null"})
    assert select_documents(collections, snapshot, none).matched == 50  # documents of the part without the column
    everyone = config(filters={"NOT": {"field": "group", "operator": "=", "value": "nope"}})
    assert select_documents(collections, snapshot, everyone).rows is None  # all match: no copy


def test_filters_that_keep_too_few_or_do_not_fit_the_collection(collections):
    collections.ingest("default", "c", blob_documents(30, centers=3))
    snapshot = collections.snapshot("default", "c")
    nothing = config(filters={"field": "group", "operator": "=", "value": "g9"})
    with pytest.raises(InsufficientDocumentsError, match=r"No documents match the configuration's filter \(0 of 30"):
        select_documents(collections, snapshot, nothing)
    one = config(filters={"field": "document_id", "operator": "=", "value": "d3"})
    with pytest.raises(InsufficientDocumentsError, match="Only 1 document matches"):
        select_documents(collections, snapshot, one)
    with pytest.raises(FilterError, match="unknown field 'grup'"):
        check_against_collection(collections, snapshot, config(filters={"field": "grup", "operator": "is_null"}))
    with pytest.raises(FilterError, match="'group' holds text values"):
        check_against_collection(collections, snapshot, config(filters={"field": "group", "operator": ">", "value": 1}))
    with pytest.raises(FeatureNotFoundError, match="Feature extractor 'image' not found"):
        check_against_collection(collections, snapshot, config(features=["embedding", "image"]))


@pytest.mark.parametrize("weights", [None, [3.0, 1.0]])
def test_combined_features_dot_product_is_the_weighted_mean_of_cosines(collections, weights):
    collections.ingest("default", "c", two_features())
    snapshot = collections.snapshot("default", "c")
    combine = {"combine": "weighted", "weights": weights} if weights else {}
    chosen = config(features=["embedding", "image"], **combine)
    selection = select_documents(collections, snapshot, chosen)
    X = load_matrix(collections, snapshot, chosen, selection)
    assert X.shape == (200, 22) and X.dtype == np.float32 and X.flags.c_contiguous
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)

    def cosines(feature):
        M = collections.scan(snapshot).matrix(feature)
        M = M / np.linalg.norm(M, axis=1, keepdims=True)
        return M @ M.T

    share = np.array(weights or [1.0, 1.0]) / sum(weights or [1.0, 1.0])
    expected = share[0] * cosines("embedding") + share[1] * cosines("image")
    assert np.allclose(X @ X.T, expected, atol=1e-5)
    assert chosen.feature == "embedding" and chosen.feature_label == "embedding+image"
