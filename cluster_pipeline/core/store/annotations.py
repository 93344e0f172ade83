"""What people add to a finished execution: cluster names of their own and a name for the run.

An ExecutionResult never changes, so these live beside it, one small JSON document per run
(``<run_id>.annotations.json``), replaced atomically whole; reading a result merges them in
(``ResultStore``). A name carried over from an earlier run (its cluster matched to this one's by the
drift matching) is kept apart from the names given to this run, so a response can say which is which.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from cluster_pipeline.core.errors import ConfigurationError, NotFoundError
from cluster_pipeline.core.store.lake import Lake

MAX_LABEL_LENGTH = 200
MAX_RUN_NAME_LENGTH = 120  # the SDK's limit


@dataclass(frozen=True)
class Annotations:
    """``label_overrides``: a cluster's name by its ``cl_N`` id; ``carried_from``: for each override
    carried over from an earlier run rather than given to this one, that run's id."""

    label_overrides: dict[str, str] = field(default_factory=dict)
    carried_from: dict[str, str] = field(default_factory=dict)
    run_name: str | None = None

    @property
    def empty(self) -> bool:
        return not self.label_overrides and self.run_name is None

    def renamed(self, labels: Mapping[str, str | None]) -> Annotations:
        """These annotations with ``labels`` given to this run (a null or blank label removes an override)."""
        overrides, carried = dict(self.label_overrides), dict(self.carried_from)
        for cluster_id, label in labels.items():
            carried.pop(cluster_id, None)
            if label is None or not label.strip():
                overrides.pop(cluster_id, None)
            else:
                overrides[cluster_id] = check_label(label)
        return Annotations(overrides, carried, self.run_name)

    def named(self, run_name: str | None) -> Annotations:
        """These annotations with the run called ``run_name`` (None or blank: no name)."""
        name = None if run_name is None or not run_name.strip() else run_name.strip()
        if name is not None and len(name) > MAX_RUN_NAME_LENGTH:
            raise ConfigurationError(f"run_name is {len(name)} characters long; use at most {MAX_RUN_NAME_LENGTH}.")
        return Annotations(self.label_overrides, self.carried_from, name)


def check_label(label: str) -> str:
    label = label.strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise ConfigurationError(f"A cluster label is {len(label)} characters long; use at most {MAX_LABEL_LENGTH}.")
    return label


def carried_over(previous_run_id: str, previous: Annotations, stable_clusters: list[dict[str, str]]) -> Annotations:
    """The names an execution inherits: each of its clusters that the drift matching paired with a
    renamed cluster of ``previous_run_id`` (``stable_clusters`` of its drift record) keeps that name."""
    overrides, carried = {}, {}
    for pair in stable_clusters:
        label = previous.label_overrides.get(pair["previous_cluster_id"])
        if label is not None:
            overrides[pair["cluster_id"]] = label
            carried[pair["cluster_id"]] = previous.carried_from.get(pair["previous_cluster_id"], previous_run_id)
    return Annotations(overrides, carried)


class AnnotationStore:
    """The annotations of a lake's executions."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def key(self, namespace: str, cluster_id: str, run_id: str) -> str:
        return self.lake.execution_key(namespace, cluster_id, run_id, "annotations.json")

    def get(self, namespace: str, cluster_id: str, run_id: str) -> Annotations:
        try:
            data = json.loads(self.lake.storage.read_bytes(self.key(namespace, cluster_id, run_id)))
        except NotFoundError:
            return Annotations()
        return Annotations(dict(data.get("label_overrides") or {}), dict(data.get("carried_from") or {}),
                           data.get("run_name"))  # fmt: skip

    def put(self, namespace: str, cluster_id: str, run_id: str, annotations: Annotations) -> None:
        """Replace the run's annotations whole, atomically."""
        text = json.dumps(asdict(annotations), indent=2, sort_keys=True)
        self.lake.storage.write_replace(self.key(namespace, cluster_id, run_id), text.encode())
