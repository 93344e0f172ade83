import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from cluster_pipeline.core.config.model import parse_config
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.quality.drift import adjusted_rand_index
from cluster_pipeline_tests.conftest import blob_documents


def test_second_execution_records_drift_against_the_first(lake, collections):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    config = ConfigStore(lake).create(parse_config({"collection": "c", "parameters": {"n_clusters": 3}}))
    first = execute(lake, config, "run_0000000000000001")
    assert first.drift is None
    collections.ingest("default", "c", blob_documents(30, centers=3, id_offset=1000))
    second = execute(lake, config, "run_0000000000000002")
    drift = second.drift
    assert drift["previous_run_id"] == first.run_id and drift["shared_documents"] == 300
    assert drift["adjusted_rand_index"] == 1.0
    assert len(drift["stable_clusters"]) == 3 and drift["new_clusters"] == [] and drift["gone_clusters"] == []


def test_changed_k_shows_new_and_gone_clusters(lake, collections):
    collections.ingest("default", "c", blob_documents(300, centers=3))
    store = ConfigStore(lake)
    config = store.create(parse_config({"collection": "c", "parameters": {"n_clusters": 3}}))
    execute(lake, config, "run_0000000000000001")
    wider = config.model_copy(update={"parameters": {"n_clusters": 5}})
    result = execute(lake, wider, "run_0000000000000002")
    drift = result.drift
    assert 0.3 < drift["adjusted_rand_index"] < 1.0
    assert len(drift["stable_clusters"]) + len(drift["new_clusters"]) == 5
    assert len(drift["new_clusters"]) >= 2
    assert np.isfinite([m["centroid_distance"] for m in drift["stable_clusters"]]).all()


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_rand_index_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-1, 6, 400)
    b = np.where(rng.random(400) < 0.7, a, rng.integers(0, 9, 400))
    assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert adjusted_rand_index(a, a) == 1.0
    for x, y in ((np.zeros(5), np.zeros(5)), (np.arange(5), np.arange(5)), (np.zeros(5), np.arange(5)), ([3], [1])):
        assert adjusted_rand_index(np.asarray(x), np.asarray(y)) == pytest.approx(adjusted_rand_score(x, y))
