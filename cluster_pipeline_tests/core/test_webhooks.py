"""Webhook payloads and signatures (the receiver side's check included)."""

import hashlib
import hmac
import time
from datetime import UTC, datetime

from cluster_pipeline.core.results import Centroid, ExecutionResult
from cluster_pipeline.core.webhooks import payload, redacted, signature, verify


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    body = b'{"run_id": "run_0000000000000001"}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("secret", "1700000000", body) == f"sha256={expected}"
    now = str(int(time.time()))
    assert verify("secret", now, body, signature("secret", now, body))
    assert not verify("secret", now, body + b" ", signature("secret", now, body))
    assert not verify("secret", "1700000000", body, signature("secret", "1700000000", body))  # too old: a replay


def test_the_payload_names_the_execution_its_metrics_and_labels():
    result = ExecutionResult(
        run_id="run_0000000000000001",
        cluster_id="clust_0000000001",
        status="completed",
        num_clusters=1,
        num_points=10,
        created_at=datetime(2025, 11, 13, 13, 20, 40, 122000, tzinfo=UTC),
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
