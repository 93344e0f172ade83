"""The webhook sensor against a real HTTP server on loopback: signed, once per URL, retried with
backoff, bounded when the receiver is dead, silent without a secret."""

import json
import time

import pytest
from dagster import build_sensor_context

from cluster_pipeline.core.outbound import ALLOWED_HOSTS_ENV
from cluster_pipeline.core.pipeline import webhooks as webhooks_module
from cluster_pipeline.core.pipeline.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from cluster_pipeline.resources import LakeResource, WebhookResource
from cluster_pipeline.sensors import webhooks as sensor_module
from cluster_pipeline.sensors.webhooks import webhook_sensor
from cluster_pipeline_tests.conftest import blob_documents
from cluster_pipeline_tests.dagster_helpers import create_config, materialize_config
from cluster_pipeline_tests.s3_server import free_port
from cluster_pipeline_tests.webhook_server import webhook_receiver

SECRET = "webhook-secret"


def tick(lake, instance, cursor=None, **settings):
    resources = {"lake": LakeResource(root=str(lake.storage.root)), "webhooks": WebhookResource(**settings)}
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = webhook_sensor(context)
        return context.cursor, result


class Clock:
    """The wall clock the sensor and the deliveries read (``time.time``), moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sensor_module, "time", clock)
    monkeypatch.setattr(webhooks_module, "time", clock)
    return clock


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(lake, collections, instance, clock):
    collections.ingest("default", "c", blob_documents(60))
    with webhook_receiver(statuses=[500, 503]) as receiver:
        config = create_config(lake, parameters={"n_clusters": 3}, webhooks=[receiver.url + "?token=abc"])
        _, result = materialize_config(lake, config, instance)
        cursor, _ = tick(lake, instance, secret=SECRET, backoff_seconds=30)
        clock.now += 29
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=30)  # backing off: no attempt
        assert len(receiver.calls) == 1
        clock.now += 2
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=30)  # second attempt: 503
        assert len(receiver.calls) == 2
        clock.now += 59
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=30)  # the wait doubled: not yet
        assert len(receiver.calls) == 2
        clock.now += 2
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=30)
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=30)
    assert len(receiver.calls) == 3  # delivered once, then never again
    assert {c.headers[DELIVERY_HEADER] for c in receiver.calls} == {result.run_id}
    last = receiver.calls[-1]
    assert last.headers[EVENT_HEADER] == "execution.completed" and last.path == "/hook?token=abc"
    assert verify(SECRET, last.headers[TIMESTAMP_HEADER], last.body, last.headers[SIGNATURE_HEADER])
    assert not verify("another secret", last.headers[TIMESTAMP_HEADER], last.body, last.headers[SIGNATURE_HEADER])
    record = json.loads(lake.storage.read_bytes(lake.webhook_delivery_key("default", config.cluster_id, result.run_id)))
    [target] = record["targets"].values()
    assert target["attempts"] == 3 and target["delivered_at"] and "token" not in json.dumps(record)
    assert json.loads(cursor)["pending"] == {}


def test_a_dead_receiver_costs_bounded_time_and_is_given_up(lake, collections, instance, monkeypatch):
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "127.0.0.1")
    collections.ingest("default", "c", blob_documents(60))
    config = create_config(lake, parameters={"n_clusters": 3}, webhooks=[f"http://127.0.0.1:{free_port()}/hook"])
    materialize_config(lake, config, instance)
    cursor = None
    for _ in range(3):
        started = time.monotonic()
        cursor, _ = tick(lake, instance, cursor, secret=SECRET, backoff_seconds=0, max_attempts=3, timeout_seconds=1)
        assert time.monotonic() - started < 5
    assert json.loads(cursor)["pending"] == {}  # three attempts, then given up


def test_nothing_is_sent_without_a_secret_and_the_sensor_says_why(lake, collections, instance):
    collections.ingest("default", "c", blob_documents(60))
    with webhook_receiver() as receiver:
        config = create_config(lake, parameters={"n_clusters": 3}, webhooks=[receiver.url])
        materialize_config(lake, config, instance)
        _, result = tick(lake, instance)
    assert receiver.calls == [] and "CLUSTER_PIPELINE_WEBHOOK_SECRET" in result.skip_message


def test_the_secret_and_shared_urls_come_through_envvar(monkeypatch):
    from dagster import EnvVar

    from cluster_pipeline.definitions import webhook_resource

    monkeypatch.setenv("CLUSTER_PIPELINE_WEBHOOK_SECRET", "from-the-environment")
    monkeypatch.setenv("CLUSTER_PIPELINE_WEBHOOK_URLS", "http://a.example/h, http://b.example/h")
    resource = webhook_resource()
    assert resource.secret == EnvVar("CLUSTER_PIPELINE_WEBHOOK_SECRET")
    assert "from-the-environment" not in repr(resource)
