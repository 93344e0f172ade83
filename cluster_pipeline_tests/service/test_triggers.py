"""Triggers as objects over a configuration's ``triggers`` block, which the schedules and sensors run."""

import pytest

from cluster_pipeline.core.errors import AlreadyExistsError, ConfigurationError, NotFoundError
from cluster_pipeline.service import ConfigurationChanges


def test_schedule_and_event_triggers_write_the_configuration_block_and_pause_resume_delete(service, news):
    config = service.configurations.create(ConfigurationChanges({"collection": news}))
    cron = service.triggers.create(config.name, "cron", {"cron_expression": "0 3 * * *"}, "nightly")
    assert cron.status == "active" and service.configurations.get(config.name).triggers.schedule == "0 3 * * *"
    with pytest.raises(AlreadyExistsError, match="has a schedule trigger already"):
        service.triggers.create(config.name, "interval", {"interval_seconds": 900})
    event = service.triggers.create(config.name, "event", {"threshold": 50, "cooldown_seconds": 600})
    block = service.configurations.get(config.name).triggers
    assert (block.on_change, block.min_new_documents, block.cooldown_seconds) == (True, 50, 600)
    assert [t.trigger_id for t in service.triggers.list(config.name)] == [cron.trigger_id, event.trigger_id]

    assert service.triggers.update(cron.trigger_id, status="paused").status == "paused"
    assert service.configurations.get(config.name).triggers.schedule is None
    with pytest.raises(ConfigurationError, match="cron_expression"):  # a cron trigger stays a cron
        service.triggers.update(cron.trigger_id, schedule_config={"interval_seconds": 900})
    service.triggers.update(cron.trigger_id, status="active")
    assert service.configurations.get(config.name).triggers.schedule == "0 3 * * *"
    assert service.triggers.history(cron.trigger_id, 0, 10) == ([], 0)

    service.triggers.delete(event.trigger_id)
    assert service.configurations.get(config.name).triggers.on_change is False
    with pytest.raises(NotFoundError, match="not found"):
        service.triggers.get(event.trigger_id)
    with pytest.raises(ConfigurationError, match="interval_seconds"):
        service.triggers.create(config.name, "event", {"interval_seconds": 60})
