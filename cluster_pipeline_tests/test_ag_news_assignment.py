"""Assigning without refitting, on real text embeddings (AG News, MiniLM-384): fit k-means (k=4,
seeded) on the first 80 % of the articles, assign the last 20 %, and compare with a full refit."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.optimize import linear_sum_assignment

from cluster_pipeline.core.incremental.new_documents import assign_new_documents
from cluster_pipeline.core.pipeline.execution import execute
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.core.store.storage import read_parquet
from cluster_pipeline_tests.dagster_helpers import create_config

pytestmark = pytest.mark.slow


def matched_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of documents in the same cluster once each cluster of ``a`` is paired with one of ``b``
    (the pairing that agrees most: Hungarian on the contingency table)."""
    contingency = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(contingency, (a, b), 1)
    rows, columns = linear_sum_assignment(-contingency)
    return float(contingency[rows, columns].sum() / len(a))


def test_assigning_the_last_fifth_agrees_with_a_full_refit(lake, collections, ag_news_path):
    table = pq.read_table(ag_news_path)
    cut = int(table.num_rows * 0.8)
    collections.ingest("default", "c", table.slice(0, cut))
    config = create_config(lake, parameters={"n_clusters": 4})
    fitted = execute(lake, config, "run_00000000000a0001")
    assert fitted.status == "completed" and fitted.num_points == cut

    collections.ingest("default", "c", table.slice(cut))
    run = assign_new_documents(lake, config, collections.snapshot("default", "c"))
    assert run.method == "nearest_centroid" and run.num_assigned == table.num_rows - cut
    assert len(ResultStore(lake).list("default", config.cluster_id)) == 1  # nothing was refitted
    assigned = read_parquet(lake.storage, run.part.key).to_pandas().set_index("document_id")

    refit = execute(lake, config, "run_00000000000a0002")
    full = ResultStore(lake).read_assignments("default", config.cluster_id, refit.run_id).to_pandas()
    full = full.set_index("document_id").loc[assigned.index]
    agreement = matched_agreement(assigned.cluster_index.to_numpy(), full.cluster_index.to_numpy())
    assert agreement >= 0.90, agreement
    # the new articles are from the same four topics: about 5 % lie beyond their cluster's 95th percentile
    assert 0.01 <= assigned.novelty.mean() <= 0.15
