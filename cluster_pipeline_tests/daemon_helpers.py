"""A real `dagster-daemon` for end-to-end tests: its own Dagster home, started and stopped cleanly;
and the CLI as a user runs it, in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> Any:
    """``cluster-pipeline ARGS --json`` in a new process with ``env``; its JSON output."""
    done = subprocess.run(
        [sys.executable, "-m", "cluster_pipeline.cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def isolated_dagster_home(tmp_path: Path, **run_coordinator: Any) -> Path:
    """A Dagster home with the repository's instance settings (queue, limits), its runs kept here;
    ``run_coordinator`` overrides the queue's settings."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text())
    for key in ("storage", "local_artifact_storage", "compute_logs"):
        settings.pop(key, None)
    settings["run_coordinator"]["config"].update(run_coordinator)
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return home


@contextmanager
def running_daemon(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the repository's workspace, in its own process group (its code server
    and run workers go down with it)."""
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield daemon
    finally:
        stop_process_group(daemon)


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to a server started in its own session (it and its children), SIGKILL if it is still up
    after ``timeout`` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
