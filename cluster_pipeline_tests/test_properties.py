"""Property-based: random sequences of ingest, delete, create, execute, kill and cancel across two
namespaces keep the store's promises (issue 12).

After every step: every ExecutionResult on disk parses and matches the contract; none ever changes
once written; a completed one's assignments cover exactly the documents of the collection version
it clustered; nothing is left pending or processing; and the step changed nothing in the other
namespace. Executions run through the real launcher and Dagster instance; "kill" is a run whose
worker process really died, settled as the next CLI command settles it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from dagster import DagsterRunStatus
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cluster_pipeline.core.config.model import ClusterConfig, parse_config
from cluster_pipeline.core.config.store import ConfigStore
from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore
from cluster_pipeline.definitions import defs
from cluster_pipeline.lifecycle.processes import WorkerIdentity
from cluster_pipeline.lifecycle.records import IN_FLIGHT, record_facts
from cluster_pipeline.runs import (
    cancel_execution,
    execute_in_process,
    open_instance,
    reconcile_runs,
    register_partition,
)
from cluster_pipeline.settings import PARTITION_TAG

NAMESPACES = ("alpha", "beta")
namespaces = st.sampled_from(NAMESPACES)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def dead_worker() -> WorkerIdentity:
    child = subprocess.Popen(["sleep", "60"])
    identity = WorkerIdentity.of(child.pid)
    child.kill()
    child.wait()
    assert identity is not None
    return identity


class StoreAndLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="cluster-pipeline-properties-"))
        self.previous_root = os.environ.get("CLUSTER_PIPELINE_ROOT")
        os.environ["CLUSTER_PIPELINE_ROOT"] = str(self.root)
        self.lake = Lake.local(self.root)
        self.instance = open_instance()
        self.collections = CollectionStore(self.lake)
        self.configs: dict[str, list[ClusterConfig]] = {ns: [] for ns in NAMESPACES}
        self.live: dict[str, set[str]] = {ns: set() for ns in NAMESPACES}
        self.documents_at: dict[tuple[str, str], set[str]] = {}  # (namespace, version) -> live ids
        self.written: dict[Path, str] = {}
        self.next_id = 0
        self.rng = np.random.default_rng(0)
        self.acted_in: str | None = None
        self.other_before: dict[str, str] = {}

    def teardown(self) -> None:
        self.instance.dispose()
        if self.previous_root is None:
            os.environ.pop("CLUSTER_PIPELINE_ROOT", None)
        else:
            os.environ["CLUSTER_PIPELINE_ROOT"] = self.previous_root
        shutil.rmtree(self.root, ignore_errors=True)

    def _acting_in(self, namespace: str) -> None:
        """Remember the other namespace's files, to check afterwards that this step left them alone."""
        self.acted_in = namespace
        other = next(ns for ns in NAMESPACES if ns != namespace)
        self.other_before = tree_digest(self.root / other)

    def _remember_version(self, namespace: str) -> None:
        snapshot = self.collections.snapshot(namespace, "docs")
        self.documents_at[(namespace, snapshot.version)] = set(self.live[namespace])

    @initialize()
    def two_collections_with_a_configuration_each(self) -> None:
        for namespace in NAMESPACES:
            self.ingest(namespace, 10)
            self.create(namespace, 3)

    @rule(namespace=namespaces, count=st.integers(1, 12))
    def ingest(self, namespace: str, count: int) -> None:
        self._acting_in(namespace)
        ids = [f"doc-{self.next_id + i}" for i in range(count)]
        self.next_id += count
        centers = np.array([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]], dtype=np.float32)
        vectors = centers[self.rng.integers(0, 3, count)] + self.rng.normal(size=(count, 4)).astype(np.float32)
        table = pa.table(
            {
                "document_id": ids,
                "text": [f"topic words {i}" for i in ids],
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 4),
            }
        )
        self.collections.ingest(namespace, "docs", table)
        self.live[namespace].update(ids)
        self._remember_version(namespace)

    @precondition(lambda self: any(len(ids) > 3 for ids in self.live.values()))
    @rule(namespace=namespaces, count=st.integers(1, 3))
    def delete(self, namespace: str, count: int) -> None:
        if len(self.live[namespace]) <= count:
            return
        self._acting_in(namespace)
        doomed = sorted(self.live[namespace])[:count]
        self.collections.delete_documents(namespace, "docs", doomed)
        self.live[namespace].difference_update(doomed)
        self._remember_version(namespace)

    @precondition(lambda self: any(self.live.values()))
    @rule(namespace=namespaces, k=st.integers(2, 3))
    def create(self, namespace: str, k: int) -> None:
        if not self.live[namespace]:
            return
        self._acting_in(namespace)
        config = ConfigStore(self.lake).create(
            parse_config({"namespace": namespace, "collection": "docs", "parameters": {"n_clusters": k, "n_init": 1}})
        )
        register_partition(self.instance, config)
        self.configs[namespace].append(config)

    def _config(self, namespace: str, index: int) -> ClusterConfig | None:
        configs = self.configs[namespace]
        return configs[index % len(configs)] if configs else None

    @precondition(lambda self: any(self.configs.values()))
    @rule(namespace=namespaces, index=st.integers(0, 5))
    def execute(self, namespace: str, index: int) -> None:
        config = self._config(namespace, index)
        if config is None:
            return
        self._acting_in(namespace)
        result = execute_in_process(config, self.lake, self.instance)
        assert result.status in ("completed", "failed")

    @precondition(lambda self: any(self.configs.values()))
    @rule(namespace=namespaces, index=st.integers(0, 5))
    def kill(self, namespace: str, index: int) -> None:
        """A run whose worker was SIGKILLed: the next command touching the configuration settles it."""
        config = self._config(namespace, index)
        if config is None:
            return
        self._acting_in(namespace)
        run = self.instance.create_run_for_job(
            job_def=defs.resolve_job_def("cluster_execution"),
            tags={PARTITION_TAG: config.partition_key},
            status=DagsterRunStatus.STARTED,
        )
        record_facts(self.instance, run.run_id, run.job_name, worker=dead_worker().to_text())
        reconcile_runs(self.instance, self.lake, config.partition_key)
        assert self.instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE

    @precondition(lambda self: any(self.configs.values()))
    @rule(namespace=namespaces, index=st.integers(0, 5))
    def cancel(self, namespace: str, index: int) -> None:
        config = self._config(namespace, index)
        if config is None:
            return
        self._acting_in(namespace)
        run = self.instance.create_run_for_job(
            job_def=defs.resolve_job_def("cluster_execution"),
            tags={PARTITION_TAG: config.partition_key},
            status=DagsterRunStatus.NOT_STARTED,
        )
        result = cancel_execution(self.instance, self.lake, namespace, "run_" + run.run_id.replace("-", "")[:16])
        assert result.status == "canceled" and "cancelled" in (result.error_message or "")

    @invariant()
    def results_keep_their_promises(self) -> None:
        results = ResultStore(self.lake)
        for namespace in NAMESPACES:
            for config in self.configs[namespace]:
                for key in results.result_keys(namespace, config.cluster_id):
                    path = self.lake.storage.path(key)
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    assert self.written.setdefault(path, digest) == digest, f"{path} changed after it was written"
                    result = results.read_key(key)  # parses, and matches the contract's schema
                    assert (result.namespace, result.cluster_id) == (namespace, config.cluster_id)
                    assert result.completed_at is not None and result.completed_at >= result.created_at
                    if result.status in ("failed", "canceled"):
                        assert result.error_message and result.centroids is None
                        continue
                    assert result.status == "completed" and result.error_message is None
                    assert len(result.centroids or []) == result.num_clusters
                    assert sum(c.num_members for c in result.centroids or []) + result.num_noise == result.num_points
                    assignments = results.read_assignments(namespace, config.cluster_id, result.run_id)
                    clustered = set(assignments.column("document_id").to_pylist())
                    assert clustered == self.documents_at[(namespace, result.collection_version)]
                    assert len(clustered) == assignments.num_rows == result.num_points

    @invariant()
    def nothing_stays_in_flight(self) -> None:
        for namespace in NAMESPACES:
            for config in self.configs[namespace]:
                runs = self.instance.get_runs()
                assert not [
                    r for r in runs if r.tags.get(PARTITION_TAG) == config.partition_key and r.status in IN_FLIGHT
                ]

    @invariant()
    def the_other_namespace_is_untouched(self) -> None:
        if self.acted_in is not None:
            other = next(ns for ns in NAMESPACES if ns != self.acted_in)
            assert tree_digest(self.root / other) == self.other_before


StoreAndLifecycle.TestCase.settings = settings(
    max_examples=3,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_store_and_lifecycle = StoreAndLifecycle.TestCase
