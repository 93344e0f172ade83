"""A webhook receiver on loopback for the tests: records every POST (headers, raw body) and answers
with scripted statuses (each request takes the next one, then 200)."""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cluster_pipeline.core.outbound import ALLOWED_HOSTS_ENV


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[Call] = []
        self.statuses = deque(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls.append(Call(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.popleft() if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    """A receiver on 127.0.0.1, which the operator's allowlist admits while it runs (``core.outbound``
    refuses private addresses otherwise)."""
    receiver = WebhookReceiver(statuses)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    allowed = os.environ.get(ALLOWED_HOSTS_ENV)
    os.environ[ALLOWED_HOSTS_ENV] = "127.0.0.1"
    try:
        yield receiver
    finally:
        if allowed is None:
            os.environ.pop(ALLOWED_HOSTS_ENV, None)
        else:
            os.environ[ALLOWED_HOSTS_ENV] = allowed
        receiver.server.shutdown()
        receiver.server.server_close()
