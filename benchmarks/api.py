"""How fast does the HTTP API answer with a long history? Writes N ExecutionResults (default 1,000) of one
configuration to a temporary lake, serves it with ``cluster-pipeline serve`` on loopback, then has C
concurrent clients (default 8) each send R requests (default 50) of three kinds: get one execution by
run, list a filtered, sorted page of 20 with its total and stats, and poll the latest execution. Prints
requests a second and the p50 / p95 latency of each. The rate limit is raised out of the way: this
measures the API, not its limiter.

    python -m benchmarks.api [--executions 1000] [--clients 8] [--requests 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from benchmarks.history_listing import CLUSTER_ID, write_history
from cluster_pipeline.core.store.api_keys import ApiKeyStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import ResultStore

NAMESPACE = "default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(root: Path, home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLUSTER_PIPELINE_ROOT": str(root), "DAGSTER_HOME": str(home),
           "CLUSTER_PIPELINE_API_RATE_LIMIT": "1000000"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "cluster_pipeline.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).raise_for_status()
            return server
        except requests.RequestException:
            if server.poll() is not None:
                raise SystemExit("cluster-pipeline serve exited before answering") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("cluster-pipeline serve did not answer in 120 s")


def measure(
    send: Callable[[requests.Session], requests.Response], clients: int, each: int
) -> tuple[float, list[float]]:
    """Requests a second over all clients, and every request's latency in seconds."""

    def client() -> list[float]:
        latencies = []
        with requests.Session() as session:
            for _ in range(each):
                started = time.perf_counter()
                response = send(session)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"{response.status_code}: {response.text[:300]}")
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for done in pool.map(lambda _: client(), range(clients)) for t in done]
    return len(latencies) / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="requests per client and kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root, home = Path(folder) / "lake", Path(folder) / "dagster_home"
        root.mkdir()
        home.mkdir()
        lake = Lake.local(str(root))
        write_history(ResultStore(lake), args.executions)
        key, _ = ApiKeyStore(lake.storage).create({NAMESPACE: "read"})
        port = free_port()
        server = serve(root, home, port)
        try:
            base = f"http://127.0.0.1:{port}/v1/clusters/{CLUSTER_ID}/executions"
            headers = {"Authorization": f"Bearer {key}", "X-Namespace": NAMESPACE}
            page = {"filters": {"AND": [{"field": "status", "operator": "eq", "value": "completed"}]},
                    "sort": {"field": "created_at", "direction": "desc"}}  # fmt: skip
            cases: dict[str, Callable[[requests.Session], requests.Response]] = {
                "get one execution by run": lambda s: s.get(f"{base}/run_{7:016x}", headers=headers, timeout=600),
                "list: filter, sort, page of 20, total, stats": lambda s: s.post(
                    f"{base}/list?limit=20&include_total=true", json=page, headers=headers, timeout=600
                ),
                "poll the latest execution": lambda s: s.get(base, headers=headers, timeout=600),
            }
            print(f"{args.executions} executions in history, {args.clients} concurrent clients")
            print(f"{'request':<46} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
            for name, send in cases.items():
                measure(send, 1, 3)  # warm: the first request of a kind reads what later ones find cached
                rate, latencies = measure(send, args.clients, args.requests)
                cuts = statistics.quantiles(latencies, n=20)  # 5 %, 10 %, …, 95 %
                print(f"{name:<46} {rate:>8.1f} {1000 * cuts[9]:>8.1f} {1000 * cuts[18]:>8.1f}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
