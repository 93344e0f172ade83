"""``cluster-pipeline``: ingest collections, define configurations, execute them, read results.

Thin glue over the application service, on Click. Errors are one line on stderr (``error: …``; under
``--json`` a JSON object) with exit status 2; a failed execution prints its result, its error and where
the full logs are, with exit status 1.
"""

from cluster_pipeline.cli import api, clusters, collections, executions  # noqa: F401 - importing them registers the commands
from cluster_pipeline.cli.app import cli, main
from cluster_pipeline.cli.output import describe_result

__all__ = ["cli", "describe_result", "main"]
