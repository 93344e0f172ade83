"""Executions of the service's namespace. Every call that reads a configuration's executions settles
its runs first (a run whose worker died is recorded as failed), so the lifecycle guarantee holds without
a daemon. The history of a configuration deleted with its history kept stays readable by its id.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from cluster_pipeline.core.errors import ConfigurationError, NotFinishedError, NotFoundError
from cluster_pipeline.core.ids import is_cluster_id
from cluster_pipeline.core.store.annotations import AnnotationStore
from cluster_pipeline.core.store.filters import parse_filter
from cluster_pipeline.core.store.history import HistoryQuery, list_history
from cluster_pipeline.core.store.results import ExecutionResult, ResultStore
from cluster_pipeline.service.configurations import Configurations
from cluster_pipeline.service.scope import Scope
from cluster_pipeline.settings import PARTITION_TAG

if TYPE_CHECKING:
    from cluster_pipeline.core.topics.hierarchy import Topic


@dataclass(frozen=True)
class ExecutionPage:
    """A page of one configuration's executions (``configuration``: the name it is shown by). With
    ``include_total``, ``total`` and ``stats`` (by status, mean silhouette) describe every match."""

    configuration: str
    results: list[ExecutionResult]
    next_cursor: str | None
    total: int | None = None
    stats: dict[str, Any] | None = None


class Executions:
    def __init__(self, scope: Scope, configurations: Configurations) -> None:
        self.scope = scope
        self.configurations = configurations
        self.results = ResultStore(scope.lake)

    def execute(self, reference: str) -> ExecutionResult:
        """Run the configuration's Dagster job now, in this process; its result, completed or failed."""
        from cluster_pipeline.runs import execute_in_process

        config = self.configurations.get(reference)
        return execute_in_process(config, self.scope.lake, self.scope.instance())

    def submit(self, reference: str) -> ExecutionResult:
        """Queue an execution in Dagster and return it ``pending``; the daemon starts it (a warning says
        so when no daemon has been seen lately)."""
        from cluster_pipeline.runs import queue_daemon_running, submit_execution

        config = self.configurations.get(reference)
        instance = self.scope.instance()
        pending = submit_execution(config, self.scope.lake, instance)
        if not queue_daemon_running(instance):
            self.scope.warn(
                "no Dagster daemon has started queued runs here lately: the execution stays pending until one "
                "runs (`dagster dev`, or `dagster-daemon run`, on this instance)"
            )
        return pending

    def list(
        self, reference: str, query: HistoryQuery, *, filter: Any = None, include_total: bool = False
    ) -> ExecutionPage:
        """A page of a configuration's executions, in-flight ones included. ``filter``: a JSON filter tree
        over the listing's fields (``core.store.filters``), ANDed with ``query``'s own bounds."""
        if filter is not None:
            query = replace(query, filter=parse_filter(filter))
        cluster_id, shown, in_flight = self._history(reference)
        page = list_history(
            self.results, self.scope.namespace, cluster_id, query, extra=in_flight, include_total=include_total,
            on_skip=self.scope.warn,
        )  # fmt: skip
        return ExecutionPage(shown, page.results, page.next_cursor, page.total, page.stats)

    def latest(self, reference: str, statuses: Sequence[str] = ()) -> ExecutionResult:
        """The newest execution of a configuration (of ``statuses``, if given); NotFoundError if none."""
        cluster_id, shown, in_flight = self._history(reference)
        page = partial(list_history, self.results, self.scope.namespace, cluster_id, extra=in_flight)
        found = page(HistoryQuery(statuses=list(statuses) or None, limit=1)).results
        if found:
            return found[0]
        if statuses:
            total = page(HistoryQuery(limit=1), include_total=True).total
            raise NotFoundError(
                f"No {' or '.join(statuses)} executions of {shown} ({total} in other statuses; "
                "list them with `cluster-pipeline executions list`)."
            )
        raise NotFoundError(f"No executions of {shown} yet; start one with `cluster-pipeline execute`.")

    def get(self, run_id: str) -> ExecutionResult:
        """One execution, pending and processing ones too."""
        from cluster_pipeline.runs import find_run, in_flight_execution, reconcile_runs

        namespace = self.scope.namespace
        try:
            return self.results.get(namespace, run_id)
        except NotFoundError:
            instance = self.scope.instance()
        reconcile_runs(instance, self.scope.lake, find_run(instance, namespace, run_id).tags[PARTITION_TAG])
        in_flight = in_flight_execution(instance, self.scope.lake, namespace, run_id)
        return in_flight or self.results.get(namespace, run_id)  # recorded just now, or NotFoundError

    def wait(self, run_id: str, timeout: float | None = None) -> ExecutionResult:
        """The execution once it is completed or failed; after ``timeout`` seconds, as it is then
        (pending or processing)."""
        from cluster_pipeline.runs import wait_for_execution

        return wait_for_execution(self.scope.instance(), self.scope.lake, self.scope.namespace, run_id, timeout)

    def cancel(self, run_id: str) -> ExecutionResult:
        """Stop a pending or processing execution; it ends canceled."""
        from cluster_pipeline.runs import cancel_execution

        return cancel_execution(self.scope.instance(), self.scope.lake, self.scope.namespace, run_id)

    def rename_clusters(self, run_id: str, labels: dict[str, str | None]) -> ExecutionResult:
        """Give clusters of a completed execution names of one's own (``cl_N`` → label; null removes an
        override), stored beside its immutable result; the next execution's matching clusters inherit them."""
        result = self.results.get(self.scope.namespace, run_id)
        known = {c.cluster_id for c in result.centroids or []}
        unknown = sorted(set(labels) - known)
        if unknown:
            raise ConfigurationError(
                f"Execution {run_id} has no cluster {unknown[0]!r} (it has {', '.join(sorted(known)) or 'none'})."
            )
        return self._annotate(result, lambda a: a.renamed(labels))

    def name_run(self, run_id: str, run_name: str | None) -> ExecutionResult:
        """Call a finished execution ``run_name`` (None: no name)."""
        return self._annotate(self.results.get(self.scope.namespace, run_id), lambda a: a.named(run_name))

    def _annotate(self, result: ExecutionResult, change: Any) -> ExecutionResult:
        from cluster_pipeline.runs import record_annotations

        store = AnnotationStore(self.scope.lake)
        annotations = change(store.get(result.namespace, result.cluster_id, result.run_id))
        store.put(result.namespace, result.cluster_id, result.run_id, annotations)
        annotated = self.results.get(result.namespace, result.run_id, result.cluster_id)
        record_annotations(self.scope.instance(), annotated)
        return annotated

    def location(self, result: ExecutionResult) -> str | None:
        """Where a finished execution's result file is (None while it is in flight)."""
        return None if result.status in ("pending", "processing") else self.results.uri(result)

    def report(self, run_id: str, dagster_url: str | None = None) -> str:
        """The self-contained HTML report of a finished execution; a part that cannot be read (a picture
        deleted, the configuration gone) is left out with a warning."""
        from cluster_pipeline.core.render.report import build_report

        result = self._finished(run_id, "its report")
        page, problems = build_report(self.scope.lake, result, dagster_url=dagster_url)
        for problem in problems:
            self.scope.warn(problem)
        return page

    def hierarchy(self, run_id: str) -> dict[str, Any]:
        """The execution's topic tree: its merges, closest first."""
        return self._with_hierarchy(run_id).hierarchy or {}

    def topics(self, run_id: str, groups: int) -> builtins.list[Topic]:
        """The execution's clusters merged along its tree into ``groups`` topics, with merged labels."""
        from cluster_pipeline.core.topics.hierarchy import coarse_topics

        return coarse_topics(self._with_hierarchy(run_id), groups)

    def _finished(self, run_id: str, what: str) -> ExecutionResult:
        """The execution's result; NotFinishedError, saying so, while it is pending or processing."""
        try:
            return self.results.get(self.scope.namespace, run_id)
        except NotFoundError:
            result = self.get(run_id)
        if result.status in ("pending", "processing"):
            raise NotFinishedError(
                f"Execution {run_id} is {result.status}: {what} comes when it has finished; wait for it with "
                f"`cluster-pipeline executions wait {run_id}`."
            )
        return result

    def _with_hierarchy(self, run_id: str) -> ExecutionResult:
        result = self._finished(run_id, "its topic hierarchy")
        if not result.hierarchy:
            raise NotFoundError(f"Execution {run_id} has no topic hierarchy (it has fewer than 2 clusters, or failed).")
        return result

    def _history(self, reference: str) -> tuple[str, str, builtins.list[ExecutionResult]]:
        """The ``clust_…`` id, the name to show and the settled in-flight executions of a configuration;
        for one deleted with its history kept (named by its id), nothing in flight."""
        from cluster_pipeline.runs import in_flight_executions, reconcile_runs

        try:
            config = self.configurations.get(reference)
        except NotFoundError:
            if is_cluster_id(reference) and self.results.result_keys(self.scope.namespace, reference):
                return reference, reference, []
            raise
        reconcile_runs(self.scope.instance(), self.scope.lake, config.partition_key)
        return config.cluster_id, config.display_name, in_flight_executions(self.scope.instance(), config)
