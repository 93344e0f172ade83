"""`cluster-pipeline serve` on loopback in its own process, for tests that drive the HTTP API."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster_pipeline_tests.daemon_helpers import stop_process_group
from cluster_pipeline_tests.s3_server import free_port


@contextmanager
def api_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The API served from ``env``'s data root and Dagster home; yields its base URL."""
    port = free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cluster_pipeline.cli", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/openapi.json", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the API did not start in 60 s"
                time.sleep(0.2)
        yield url
    finally:
        stop_process_group(server, timeout=20)
