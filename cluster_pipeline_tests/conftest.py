"""Shared fixtures: an isolated data root and Dagster home per test, small real collections."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from cluster_pipeline.core.store.collections import CollectionStore
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline_tests.postgres_server import PostgresServer, PostgresUnavailable, postgres_server
from cluster_pipeline_tests.small_disk import SmallDisk, small_disk

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
AG_NEWS = SHARED_DATASETS / "ag_news_test_minilm.parquet"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's ./.cluster_data, DAGSTER_HOME, API keys or Dagster webserver (queued runs
    go through `dagster job launch` unless a test starts a webserver of its own and names it)."""
    monkeypatch.setenv("CLUSTER_PIPELINE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("CLUSTER_PIPELINE_DAGSTER_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("CLUSTER_PIPELINE_EMBEDDING_MODEL", raising=False)
    monkeypatch.delenv("CLUSTER_PIPELINE_EMBEDDING_BASE_URL", raising=False)
    monkeypatch.delenv("DAGSTER_DEPLOYMENT", raising=False)
    yield


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server on loopback for the session (skipped, saying why, where none can start)."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailable as error:
            pytest.skip(str(error))
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's server, for one test."""
    return postgres.url(postgres.create_database("test_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]))


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A real, ephemeral Dagster instance (in-memory storage) for one test."""
    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real 4 MB file system (tmpfs) to fill or make read-only; skipped where it cannot be mounted."""
    with small_disk(tmp_path / "disk", 4096) as mounted:
        yield mounted


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


@pytest.fixture
def collections(lake: Lake) -> CollectionStore:
    return CollectionStore(lake)


def blob_documents(
    n: int = 300, *, centers: int = 3, dim: int = 16, seed: int = 0, id_offset: int = 0, with_text: bool = True
) -> pa.Table:
    """Gaussian blobs with topic words as text, so labels can be checked."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n, n_features=dim, centers=centers, cluster_std=0.5, random_state=seed)
    words = [
        ["rocket", "orbit", "launch"],
        ["pasta", "garlic", "oven"],
        ["goal", "league", "striker"],
        ["stocks", "bonds", "earnings"],
        ["guitar", "album", "concert"],
    ]
    columns: dict[str, object] = {
        "document_id": [f"d{id_offset + i}" for i in range(n)],
        "group": [f"g{label}" for label in y],
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), dim),
    }
    if with_text:
        columns["text"] = [" ".join(words[label % len(words)]) + f" item {i}" for i, label in enumerate(y)]
    return pa.table(columns)


def oversized_blob() -> np.ndarray:
    """750 points in 8-D: two overlapping blobs that density clustering finds as one cluster of 600
    (80 %, over the split limit), and a far cluster of 150."""
    rng = np.random.default_rng(1)
    big = np.concatenate([rng.normal(0, 1, (300, 8)), rng.normal(0, 1, (300, 8)) + 3.5 * np.eye(1, 8)])
    return np.concatenate([big, rng.normal(0, 0.3, (150, 8)) + 30]).astype(np.float32)


@pytest.fixture
def blobs() -> pa.Table:
    return blob_documents()


@pytest.fixture
def ag_news_path() -> Path:
    if not AG_NEWS.exists():
        pytest.skip(f"shared data set not present: {AG_NEWS}")
    return AG_NEWS


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest hook
    """Point CI at the screenshots the end-to-end tests keep (artifact paths)."""
    for screenshot in sorted((Path(__file__).resolve().parents[1] / "artifacts").glob("*.png")):
        terminalreporter.write_line(f"screenshot artifact: {screenshot}")
