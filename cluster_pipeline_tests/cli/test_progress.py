"""An execution's progress as a person sees it: `cluster-pipeline execute` in a real 80-column terminal
(tmux), the screen read back with wrapped lines joined, so a line wider than the terminal shows."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_pipeline.cli import main
from cluster_pipeline_tests.browser import ARTIFACTS, REPO
from cluster_pipeline_tests.conftest import blob_documents

STAGES = ("load", "fit", "auto_k", "metrics", "labels", "coherence", "drift", "topics", "pictures", "write")


@pytest.mark.slow
def test_an_execution_at_80_columns_names_every_stage_on_lines_that_fit(tmp_path, capsys):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    import pyarrow.parquet as pq

    pq.write_table(blob_documents(400, centers=4, dim=16), tmp_path / "docs.parquet")
    assert main(["ingest", "news", str(tmp_path / "docs.parquet")]) == 0
    assert main(["clusters", "create", "--collection", "news", "--param", "n_clusters=auto", "--name", "auto"]) == 0
    capsys.readouterr()
    session, done = f"progress-{os.getpid()}", tmp_path / "done"
    command = (
        f"cd {tmp_path} && PYTHONPATH={REPO} {sys.executable} -m cluster_pipeline.cli execute auto; "
        f"echo $? > {done}; sleep 600"
    )
    environment = [
        f"{name}={os.environ[name]}" for name in ("CLUSTER_PIPELINE_ROOT", "NUMBA_CACHE_DIR") if name in os.environ
    ]
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "60", "env", *environment, "TERM=xterm-256color",
         "bash", "-c", command],
        check=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while not done.exists() and time.time() < deadline:
            time.sleep(0.5)
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-t", session], capture_output=True, text=True, check=True
        ).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "progress-80-columns.txt").write_text(screen)
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert done.read_text().strip() == "0", screen
    assert max(len(line) for line in lines) <= 80, screen  # -J joins what the terminal wrapped
    stage_lines = [line.split()[1] for line in lines if line.startswith("✓ ")]
    assert stage_lines == list(STAGES), screen  # every stage once, in order, finished; no debris between
    assert any(line.startswith("✓ auto_k") and "chose k=4" in line for line in lines), screen
    assert "report: cluster-pipeline executions report run_" in screen


def test_progress_is_quiet_when_not_a_terminal(tmp_path, capsys):
    """Piped or under --json, an execution prints its result and nothing else."""
    import pyarrow.parquet as pq

    pq.write_table(blob_documents(60, centers=3, dim=8), tmp_path / "docs.parquet")
    assert main(["ingest", "news", str(tmp_path / "docs.parquet")]) == 0
    assert main(["clusters", "create", "--collection", "news", "--param", "n_clusters=3", "--name", "three"]) == 0
    capsys.readouterr()
    assert main(["execute", "three"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("run_") and Path(tmp_path).exists()
