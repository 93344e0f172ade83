"""Webhook payloads, signatures (the receiver side's check included) and retries with backoff, against
a loopback HTTP receiver."""

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from cluster_pipeline.core.pipeline.webhooks import (
    DeliveryRecord,
    WebhookSettings,
    deliver,
    payload,
    redacted,
    signature,
    verify,
)
from cluster_pipeline.core.store.results import Centroid, ExecutionResult
from cluster_pipeline_tests.webhook_server import webhook_receiver


def finished(**fields: Any) -> ExecutionResult:
    """A finished execution of one configuration (``fields`` override)."""
    base: dict[str, Any] = {
        "run_id": "run_0000000000000001",
        "cluster_id": "clust_0000000001",
        "num_clusters": 0,
        "num_points": 10,
        "created_at": datetime(2025, 11, 13, 13, 20, 40, 122000, tzinfo=UTC),
    }
    return ExecutionResult(**{**base, **fields})


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    body = b'{"run_id": "run_0000000000000001"}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("secret", "1700000000", body) == f"sha256={expected}"
    now = str(int(time.time()))
    assert verify("secret", now, body, signature("secret", now, body))
    assert not verify("secret", now, body + b" ", signature("secret", now, body))
    assert not verify("secret", "1700000000", body, signature("secret", "1700000000", body))  # too old: a replay


def test_the_payload_names_the_execution_its_metrics_and_labels():
    result = finished(
        status="completed",
        num_clusters=1,
        centroids=[Centroid("cl_0", 10, "Rocket / Orbit", "…", ["rocket"])],
        trigger="novelty",
    )
    data = payload(result, "s3://bucket/x.parquet")
    assert data["event"] == "execution.completed" and data["labels"] == {"cl_0": "Rocket / Orbit"}
    assert data["created_at"] == "2025-11-13T13:20:40.122000Z" and data["trigger"] == "novelty"


def test_urls_are_stored_redacted():
    assert (
        redacted("https://hooks.example.com:8443/services/T000/B000/SECRET?x=1") == "https://hooks.example.com:8443/…"
    )


def test_a_failed_delivery_is_retried_with_backoff_until_it_lands_or_gives_up():
    result = finished(status="failed", error_message="Feature 'missing' not found.")
    settings = WebhookSettings(timeout_seconds=5, max_attempts=3, backoff_seconds=0.4, max_backoff_seconds=0.7)
    with webhook_receiver([500, 503]) as receiver:
        record = DeliveryRecord(result.run_id, "execution.failed")
        [line] = deliver(record, [receiver.url], result, "secret", settings)
        assert "failed (HTTP 500)" in line and "retrying" in line
        [target] = record.targets.values()
        assert target.attempts == 1 and 0 < target.next_attempt_at - time.time() <= 0.4
        assert deliver(record, [receiver.url], result, "secret", settings) == []  # not due yet: no call
        time.sleep(0.45)
        deliver(record, [receiver.url], result, "secret", settings)  # 503; the wait doubles, capped at 0.7 s
        assert target.attempts == 2 and 0.4 < target.next_attempt_at - time.time() <= 0.7
        time.sleep(0.75)
        [line] = deliver(record, [receiver.url], result, "secret", settings)
        assert "delivered" in line and target.delivered_at is not None and record.settled(settings)
        assert deliver(record, [receiver.url], result, "secret", settings) == []  # never twice
        assert len(receiver.calls) == 3 and len({call.body for call in receiver.calls}) == 1

    with webhook_receiver([500, 500]) as receiver:
        record = DeliveryRecord(result.run_id, "execution.failed")
        quick = WebhookSettings(timeout_seconds=5, max_attempts=2, backoff_seconds=0)
        deliver(record, [receiver.url], result, "secret", quick)
        [line] = deliver(record, [receiver.url], result, "secret", quick)
        assert line.endswith("giving up") and record.settled(quick) and len(receiver.calls) == 2
        assert next(iter(record.targets.values())).delivered_at is None
