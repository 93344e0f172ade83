"""One dynamic partition per cluster configuration, keyed ``<namespace>.<cluster_id>``.

Creating a configuration (CLI or sensor) registers its partition, so new configurations appear in
the UI and can be executed without a code change.
"""

from dagster import DynamicPartitionsDefinition

CLUSTER_CONFIGS_PARTITIONS_NAME = "cluster_configs"

cluster_configs_partitions = DynamicPartitionsDefinition(name=CLUSTER_CONFIGS_PARTITIONS_NAME)
