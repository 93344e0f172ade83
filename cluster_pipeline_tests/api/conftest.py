"""A data root with API keys, its Dagster home, and the API served over them on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster_pipeline.core.store.api_keys import ApiKeyStore
from cluster_pipeline.core.store.storage import LocalStorage
from cluster_pipeline_tests.daemon_helpers import isolated_dagster_home


@pytest.fixture
def api_env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "lake"
    root.mkdir()
    return {
        **os.environ,
        "CLUSTER_PIPELINE_ROOT": str(root),
        "DAGSTER_HOME": str(isolated_dagster_home(tmp_path)),
        "CLUSTER_PIPELINE_HOLD_DIR": str(tmp_path),
        "CLUSTER_PIPELINE_SENSOR_INTERVAL": "5",
    }


def make_key(env: dict[str, str], grants: dict[str, str]) -> str:
    key, _ = ApiKeyStore(LocalStorage(env["CLUSTER_PIPELINE_ROOT"])).create(grants)  # type: ignore[arg-type]
    return key
