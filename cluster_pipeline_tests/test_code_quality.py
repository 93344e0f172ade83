"""Lint (ruff) and types (mypy on the plain core) are part of the suite, so CI enforces them."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff():
    done = run(str(BIN / "ruff"), "check", "cluster_pipeline", "cluster_pipeline_tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_on_the_core():
    done = run(str(BIN / "mypy"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_layers_hold():
    """The layers in pyproject.toml's import-linter contracts: no stage imports one above it, no cycle."""
    done = run(str(BIN / "lint-imports"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_core_does_not_import_dagster():
    done = run(
        sys.executable,
        "-c",
        "import sys, cluster_pipeline.core.pipeline.execution, cluster_pipeline.core.store.history, "
        "cluster_pipeline.core.labels.llm, cluster_pipeline.core.render.plots, cluster_pipeline.core.render.report, "
        "cluster_pipeline.core.incremental.triggers, cluster_pipeline.core.quality.drift; print('dagster' in sys.modules)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
