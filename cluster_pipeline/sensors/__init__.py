from cluster_pipeline.sensors.collection_changes import collection_change_sensor
from cluster_pipeline.sensors.configurations import configuration_sensor, custom_schedule_sensor
from cluster_pipeline.sensors.run_lifecycle import (
    execution_canceled_sensor,
    execution_failure_sensor,
    execution_lifecycle_sensor,
)
from cluster_pipeline.sensors.webhooks import webhook_sensor

SENSORS = [
    collection_change_sensor,
    configuration_sensor,
    custom_schedule_sensor,
    execution_canceled_sensor,
    execution_failure_sensor,
    execution_lifecycle_sensor,
    webhook_sensor,
]
