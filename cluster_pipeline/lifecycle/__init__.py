"""Executions as Dagster runs, seen from inside the Dagster layer: which runs a configuration has
(``records``), which process runs each (``processes``), and how a run that ended without a result
gets its failed one (``failures``). The assets, the sensors and ``cluster_pipeline.runs`` (the
service's surface, above the Dagster definitions) all build on it.
"""
