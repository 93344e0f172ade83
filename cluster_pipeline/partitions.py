"""One dynamic partition per cluster configuration, keyed ``<namespace>.<name>``, and the run tags
that say which configuration a run executes. Creating a configuration registers its partition, so it
appears in the UI and can be executed without a code change. A key added by hand in the UI names no
configuration: its run fails at once saying how configurations are created, and the key is removed.
"""

import dagster as dg

from cluster_pipeline.core.config.model import ClusterConfig

CLUSTER_CONFIGS_PARTITIONS_NAME = "cluster_configs"

cluster_configs_partitions = dg.DynamicPartitionsDefinition(name=CLUSTER_CONFIGS_PARTITIONS_NAME)

TAG_PREFIX = "cluster_pipeline/"


def configuration_tags(config: ClusterConfig) -> dict[str, str]:
    """Tags naming the configuration a run executes, so the UI's runs list filters by any of them
    (``cluster_pipeline/name: agnews-kmeans-k4``, ``cluster_pipeline/algorithm: hdbscan``, …); the
    ``clust_…`` id is the partition's and the result's, and the run's facts (``lifecycle.records``)."""
    values = {
        "namespace": config.namespace,
        "collection": config.collection,
        "algorithm": config.algorithm,
        "name": config.display_name,
    }
    return {TAG_PREFIX + tag: value for tag, value in values.items()}
