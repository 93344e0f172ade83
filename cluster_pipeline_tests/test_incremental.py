"""Incremental topics through a real Dagster instance: the change sensor executes a new configuration,
assigns small deltas to its clusters without refitting, and refits when a new topic arrives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import RunRequest, SensorResult, build_sensor_context, materialize

from cluster_pipeline.assets import CLUSTERING_ASSETS, new_document_assignments
from cluster_pipeline.cli import main
from cluster_pipeline.core.incremental.baseline import assignment_parts
from cluster_pipeline.core.incremental.enrichment import read_enrichment
from cluster_pipeline.core.pipeline.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.jobs import ASSIGNMENT_ASSET, ASSIGNMENT_JOB_NAME, CLUSTER_EXECUTION_JOB_NAME
from cluster_pipeline.resources import LakeResource, LLMResource, WebhookResource
from cluster_pipeline.runs import register_partition
from cluster_pipeline.sensors.collection_changes import collection_change_sensor
from cluster_pipeline.sensors.webhooks import webhook_sensor
from cluster_pipeline.settings import TRIGGER_TAG
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config
from cluster_pipeline_tests.webhook_server import webhook_receiver

README = Path(__file__).resolve().parents[1] / "README.md"
SECRET = "test-signing-secret"


def topic_documents(n: int, *, id_offset: int, dim: int = 16, seed: int = 7) -> pa.Table:
    """A topic none of ``blob_documents``' clusters holds: a tight blob in a direction of its own."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-10, 10, dim)
    vectors = (centre + rng.normal(0, 0.5, (n, dim))).astype(np.float32)
    return pa.table(
        {
            "document_id": [f"d{id_offset + i}" for i in range(n)],
            "group": ["new"] * n,
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
            "text": [f"guitar album concert item {i}" for i in range(n)],
        }
    )


class Daemon:
    """What the daemon does with a sensor's run requests, in this process: run them on the instance."""

    def __init__(self, lake, instance):
        self.lake, self.instance, self.cursor = lake, instance, None
        self.resources = {"lake": LakeResource(root=str(lake.storage.root)), "llm": LLMResource()}

    def tick(self) -> list[RunRequest]:
        with build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"lake": self.resources["lake"]}
        ) as context:
            result = collection_change_sensor(context)
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        for request in result.run_requests:
            self.launch(request)
        return result.run_requests

    def launch(self, request: RunRequest) -> None:
        selection = [ASSIGNMENT_ASSET] if request.job_name == ASSIGNMENT_JOB_NAME else None
        outcome = materialize(
            [*CLUSTERING_ASSETS, new_document_assignments],
            selection=selection or [key for a in CLUSTERING_ASSETS for key in a.keys],
            partition_key=request.partition_key,
            instance=self.instance,
            resources=self.resources,
            tags=request.tags,
        )
        assert outcome.success


def announce(lake, instance, cursor=None):
    """One tick of the webhook sensor; its cursor."""
    resources = {
        "lake": LakeResource(root=str(lake.storage.root)),
        "webhooks": WebhookResource(secret=SECRET, backoff_seconds=0),
    }
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        webhook_sensor(context)
        return context.cursor


def test_the_sensor_assigns_small_deltas_and_refits_when_a_new_topic_arrives(lake, collections, instance, tmp_path):
    collections.ingest("default", "c", blob_documents(300))
    with webhook_receiver() as receiver:
        config = create_config(
            lake, parameters={"n_clusters": 3}, triggers={"on_change": True}, webhooks=[receiver.url]
        )
        register_partition(instance, config)
        daemon, results = Daemon(lake, instance), ResultStore(lake)

        first = daemon.tick()  # no execution yet: execute
        assert [r.job_name for r in first] == [CLUSTER_EXECUTION_JOB_NAME]
        [fitted] = results.list("default", config.cluster_id)
        assert fitted.status == "completed" and fitted.trigger == "collection_change"

        collections.ingest("default", "c", blob_documents(20, id_offset=1000, seed=0))
        second = daemon.tick()  # a small delta of known topics: assigned, not refitted
        assert [r.job_name for r in second] == [ASSIGNMENT_JOB_NAME]
        assert len(results.list("default", config.cluster_id)) == 1
        [part] = assignment_parts(lake, "default", config.cluster_id, fitted.run_id)
        assert part.assigned == 20 and part.novel <= 3
        enriched = read_enrichment(lake, "default", config.cluster_id).to_pandas().set_index("document_id")
        assert len(enriched) == 320 and (enriched.loc["d1000":, "source"] == "assignment").all()
        original = blob_documents(300).to_pandas().set_index("document_id")
        # a new document lands in the cluster of the old documents of its blob
        by_group = enriched.loc[original.index, "cluster_id"].groupby(original["group"]).agg(lambda s: s.mode()[0])
        delta = blob_documents(20, id_offset=1000).to_pandas().set_index("document_id")
        assert (enriched.loc[delta.index, "cluster_id"] == delta["group"].map(by_group)).all()
        assert daemon.tick() == []  # nothing changed since

        collections.ingest("default", "c", topic_documents(60, id_offset=2000))
        third = daemon.tick()  # assigned first: the novelty is measured by the assignment
        assert [r.job_name for r in third] == [ASSIGNMENT_JOB_NAME]
        novel = assignment_parts(lake, "default", config.cluster_id, fitted.run_id)[-1]
        assert novel.assigned == 60 and novel.novel == 60
        fourth = daemon.tick()  # the drift condition: a full execution, tagged with its reason
        assert [r.job_name for r in fourth] == [CLUSTER_EXECUTION_JOB_NAME]
        assert fourth[0].tags[TRIGGER_TAG] == "novelty"
        refitted = results.list("default", config.cluster_id)[0]
        assert refitted.run_id != fitted.run_id and refitted.status == "completed"
        assert refitted.trigger == "novelty" and "of the 80 documents assigned since" in refitted.trigger_reason
        assert refitted.num_points == 380
        enriched = read_enrichment(lake, "default", config.cluster_id).to_pandas()
        assert (enriched.run_id == refitted.run_id).all() and (enriched.source == "execution").all()
        assert daemon.tick() == []  # the refit covers every document: nothing more to do

        broken = create_config(lake, feature="missing", webhooks=[receiver.url])
        outcome, failed = materialize_config(lake, broken, instance)
        assert not outcome.success and failed.status == "failed"

        cursor = announce(lake, instance)
        announce(lake, instance, cursor)  # a second tick sends nothing again
        finished = {fitted.run_id: "completed", refitted.run_id: "completed", failed.run_id: "failed"}
        assert sorted(call.headers[DELIVERY_HEADER] for call in receiver.calls) == sorted(finished)
        for call in receiver.calls:
            assert verify(SECRET, call.headers[TIMESTAMP_HEADER], call.body, call.headers[SIGNATURE_HEADER])
            assert call.payload["status"] == finished[call.payload["run_id"]]
        by_run = {call.payload["run_id"]: call.payload for call in receiver.calls}
        assert by_run[refitted.run_id]["labels"] == {c.cluster_id: c.label for c in refitted.centroids}
        assert by_run[refitted.run_id]["trigger"] == "novelty" and by_run[refitted.run_id]["metrics"]
        assert "not found" in by_run[failed.run_id]["error_message"]

    export = tmp_path / "export.csv"
    assert main(["collections", "export", "c", "--with-clusters", config.cluster_id, "--output", str(export)]) == 0
    exported = pd.read_csv(export).set_index("document_id")
    labels = {c.cluster_id: c.label for c in refitted.centroids}
    assignments = results.read_assignments("default", config.cluster_id, refitted.run_id).to_pandas()
    assert len(exported) == 380 and exported.text.notna().all()
    assert (exported.loc[assignments.document_id, "cluster_id"].to_numpy() == assignments.cluster_id).all()
    assert (exported.cluster_id.map(labels) == exported.cluster_label).all()

    # the README's DuckDB one-liner, as printed there, on this lake
    line = next(line.strip() for line in README.read_text().splitlines() if 'python -c "import duckdb' in line)
    line = line.replace(".cluster_data", str(lake.storage.root)).replace("/news/", "/c/")
    line = re.sub(r"clust_…", config.cluster_id, line).replace("python -c", f"{sys.executable} -c", 1)
    shown = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "380 rows" in shown.stdout and labels["cl_0"] in shown.stdout
