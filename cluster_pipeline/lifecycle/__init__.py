"""What Dagster cannot see of executions' runs: which runs a configuration has, which process runs
each, and how a run that ended without a result gets its failed one (under the assets, the sensors and
``cluster_pipeline.runs``)."""
