"""Webhook notifications of finished executions: a signed JSON POST per URL, retried with backoff
(the README's "Webhooks" gives the receiver's side; ``verify`` is its check).

Delivery happens outside the execution (``sensors.webhooks``), after its result is committed, so a
receiver can neither block nor fail a run; each execution's delivery record says per URL whether it
was delivered. The delivery id is the run id: a receiver can drop the repeat that a crash between a
2xx and its record causes. URLs are stored as a digest and a redacted form: they often hold tokens.
Each request goes through ``core.outbound``: to a checked public address, no redirect followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cluster_pipeline.core import outbound
from cluster_pipeline.core.errors import OutboundAddressError
from cluster_pipeline.core.store.results import ExecutionResult, format_timestamp

SIGNATURE_HEADER = "X-Cluster-Pipeline-Signature"
TIMESTAMP_HEADER = "X-Cluster-Pipeline-Timestamp"
EVENT_HEADER = "X-Cluster-Pipeline-Event"
DELIVERY_HEADER = "X-Cluster-Pipeline-Delivery"
USER_AGENT = "cluster-pipeline-webhooks/1"


@dataclass(frozen=True)
class WebhookSettings:
    """How hard to try: per request, per URL across ticks."""

    timeout_seconds: float = 5.0
    max_attempts: int = 5
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 3600.0


def event_of(result: ExecutionResult) -> str:
    return f"execution.{result.status}"


def payload(result: ExecutionResult, result_uri: str | None = None) -> dict[str, Any]:
    """What a receiver learns about a finished execution."""
    return {
        "event": event_of(result),
        "run_id": result.run_id,
        "cluster_id": result.cluster_id,
        "namespace": result.namespace,
        "collection": result.collection,
        "status": result.status,
        "trigger": result.trigger,
        "num_clusters": result.num_clusters,
        "num_points": result.num_points,
        "metrics": result.metrics,
        "labels": {c.cluster_id: c.label for c in result.centroids or []},
        "error_message": result.error_message,
        "created_at": format_timestamp(result.created_at),
        "completed_at": format_timestamp(result.completed_at),
        "result_uri": result_uri,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + the hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, received: str, *, max_age_seconds: float = 300.0) -> bool:
    """The receiver's check: the signature matches and the timestamp is recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= max_age_seconds
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), received)


def redacted(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs often hold tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


@dataclass
class TargetState:
    """One URL's deliveries of one execution."""

    url: str  # redacted
    attempts: int = 0
    delivered_at: float | None = None
    next_attempt_at: float = 0.0
    last_error: str | None = None

    def due(self, settings: WebhookSettings, now: float) -> bool:
        return self.delivered_at is None and self.attempts < settings.max_attempts and self.next_attempt_at <= now

    def settled(self, settings: WebhookSettings) -> bool:
        return self.delivered_at is not None or self.attempts >= settings.max_attempts


@dataclass
class DeliveryRecord:
    """Every URL's deliveries of one execution (keyed by the URL's digest)."""

    run_id: str
    event: str
    targets: dict[str, TargetState] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DeliveryRecord:
        raw = json.loads(data)
        return cls(raw["run_id"], raw["event"], {key: TargetState(**value) for key, value in raw["targets"].items()})

    def settled(self, settings: WebhookSettings) -> bool:
        return all(target.settled(settings) for target in self.targets.values())


def deliver(
    record: DeliveryRecord,
    urls: list[str],
    result: ExecutionResult,
    secret: str,
    settings: WebhookSettings,
    *,
    result_uri: str | None = None,
    deadline: float | None = None,
) -> list[str]:
    """Make every due attempt for ``urls`` (until ``deadline``, a ``time.time()``); updates ``record``
    in place and returns one line per attempt for the log (URLs redacted)."""
    body = json.dumps(payload(result, result_uri), sort_keys=True).encode()
    lines = []
    for url in urls:
        target = record.targets.setdefault(hashlib.sha256(url.encode()).hexdigest()[:16], TargetState(redacted(url)))
        now = time.time()
        if not target.due(settings, now) or (deadline is not None and now >= deadline):
            continue
        timestamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: record.event,
            DELIVERY_HEADER: record.run_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        target.attempts += 1
        try:  # to a checked address only, no redirect followed (core.outbound); anything but 2xx raises
            outbound.post(url, body, headers, settings.timeout_seconds)
        except (OSError, ValueError, http.client.HTTPException) as error:
            wait = min(settings.backoff_seconds * 2 ** (target.attempts - 1), settings.max_backoff_seconds)
            target.next_attempt_at = time.time() + wait
            target.last_error = _describe(error)
            retry = f"retrying in {wait:.0f} s" if target.attempts < settings.max_attempts else "giving up"
            lines.append(f"{record.event} {record.run_id} to {target.url} failed ({target.last_error}); {retry}")
            continue
        target.delivered_at = time.time()
        target.last_error = None
        lines.append(f"{record.event} {record.run_id} delivered to {target.url}")
    return lines


def _describe(error: Exception) -> str:
    if isinstance(error, (outbound.OutboundResponseError, OutboundAddressError)):
        return str(error)
    return f"{type(error).__name__}: {error}"
