"""The application service over the test's lake and a real Dagster instance (SQLite, in a temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import instance_for_test

from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.service import Service
from cluster_pipeline_tests.conftest import blob_documents


@pytest.fixture
def warnings() -> list[str]:
    """What the service warned about, in order."""
    return []


@pytest.fixture
def service(lake: Lake, warnings: list[str]) -> Iterator[Service]:
    with (
        instance_for_test() as instance,
        Service(lake, instance=instance, on_warning=warnings.append) as service,
    ):
        yield service


@pytest.fixture
def news(service: Service) -> str:
    """A collection of 150 documents in three well-separated topics."""
    service.collections.ingest("news", blob_documents(150, centers=3))
    return "news"
