"""Configurations through the service: changes applied in order, create / update / delete with the
Dagster partition, refusals that change nothing."""

import pytest
from dagster import DagsterRunStatus, RunsFilter

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError, ConflictError, NotFoundError
from cluster_pipeline.partitions import CLUSTER_CONFIGS_PARTITIONS_NAME
from cluster_pipeline.service import ConfigurationChanges


def test_changes_apply_fields_then_algorithm_then_settings_then_removals():
    stored = {"algorithm": "kmeans", "parameters": {"n_clusters": 3}, "reduction": {"method": "auto", "n_neighbors": 9}}
    changes = ConfigurationChanges(
        fields={"description": "from a file"},
        algorithm="birch",  # another algorithm: kmeans' parameters are dropped
        settings=[("parameters.threshold", 0.3), ("parameters.n_clusters", 4), ("reduction.method", "pca")],
        unset_parameters=["n_clusters"],
    )
    assert changes.applied_to(stored, "c") == {
        "algorithm": "birch",
        "parameters": {"threshold": 0.3},
        "reduction": {"method": "pca", "n_neighbors": 9},
        "description": "from a file",
    }
    assert stored["parameters"] == {"n_clusters": 3} and stored["reduction"]["method"] == "auto"  # not modified
    same = ConfigurationChanges(algorithm="kmeans", settings=[("triggers.schedule", None)])
    assert same.applied_to(stored, "c")["parameters"] == {"n_clusters": 3}
    with pytest.raises(ConfigurationError, match="Cannot unset parameter 'k': c has no such parameter"):
        ConfigurationChanges(unset_parameters=["k"]).applied_to(stored, "c")


def test_create_names_validates_and_registers_the_partition(service, news):
    config = service.configurations.create(
        ConfigurationChanges({"collection": news}, settings=[("parameters.n_clusters", 3)])
    )
    assert (config.name, config.namespace, config.version) == ("news-kmeans-k3", "default", 1)
    assert service.scope.instance().has_dynamic_partition(CLUSTER_CONFIGS_PARTITIONS_NAME, "default.news-kmeans-k3")
    assert service.configurations.get("news-kmeans-k3") == config == service.configurations.get(config.cluster_id)
    for changes, message in [
        (ConfigurationChanges(), "A configuration needs a collection"),
        (
            ConfigurationChanges({"collection": news}, settings=[("feature", "clip")]),
            "Feature extractor 'clip' not found",
        ),
        (ConfigurationChanges({"collection": news}, settings=[("parameters.n_clusters", 0)]), "'n_clusters' parameter"),
        (ConfigurationChanges({"collection": "missing"}), "Collection 'missing' not found"),
    ]:
        with pytest.raises(ClusterPipelineError, match=message):
            service.configurations.create(changes)
    assert service.configurations.list() == [config]


def test_update_makes_versions_and_is_refused_while_an_execution_is_in_flight(service, news):
    config = service.configurations.create(ConfigurationChanges({"collection": news}))
    revision = service.configurations.update(config.name, ConfigurationChanges(settings=[("parameters.n_clusters", 4)]))
    assert revision.new_version and revision.changed == ["parameters"] and revision.config.version == 2
    kept = service.configurations.update(config.name, ConfigurationChanges(settings=[("description", "news")]))
    assert not kept.new_version and kept.config.version == 2
    pending = service.executions.submit(config.name)
    with pytest.raises(ConflictError, match=f"while its execution {pending.run_id} is pending"):
        service.configurations.update(config.name, ConfigurationChanges(settings=[("parameters.n_clusters", 5)]))
    with pytest.raises(ConflictError):
        service.configurations.delete(config.name)
    assert service.configurations.get(config.name).version == 2


def test_delete_removes_the_partition_and_keeps_or_removes_the_history(service, news):
    kept = service.configurations.create(ConfigurationChanges({"collection": news, "name": "kept"}))
    removed = service.configurations.create(ConfigurationChanges({"collection": news, "name": "removed"}))
    for config in (kept, removed):
        assert service.executions.execute(config.name).status == "completed"
    deletion = service.configurations.delete("kept")
    assert (deletion.config.cluster_id, deletion.history_kept, deletion.executions) == (kept.cluster_id, True, 1)
    assert service.executions.latest(kept.cluster_id).cluster_id == kept.cluster_id  # read by its id
    deletion = service.configurations.delete("removed", keep_history=False)
    assert (deletion.history_kept, deletion.executions) == (False, 1)
    with pytest.raises(NotFoundError):
        service.executions.latest(removed.cluster_id)
    instance = service.scope.instance()
    assert instance.get_dynamic_partitions(CLUSTER_CONFIGS_PARTITIONS_NAME) == []
    assert {r.status for r in instance.get_runs(RunsFilter())} == {DagsterRunStatus.SUCCESS}
    assert service.configurations.create(ConfigurationChanges({"collection": news, "name": "kept"})).name == "kept"


def test_an_unreadable_configuration_is_skipped_with_a_warning(service, news, lake, warnings):
    config = service.configurations.create(ConfigurationChanges({"collection": news}))
    lake.storage.write_new(lake.cluster_config_key("default", "clust_0000000000broken"), b"{")
    assert service.configurations.list() == [config]
    assert len(warnings) == 1 and "clust_0000000000broken" in warnings[0]
