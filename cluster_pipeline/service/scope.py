"""What every part of the service shares: the lake, its one namespace, the Dagster instance and where
warnings go. The instance is opened when a call first needs it (settling runs, registering a partition,
executing): ingesting or listing configurations never pays for it, which keeps their start-up short."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cluster_pipeline.core.store.lake import Lake

if TYPE_CHECKING:
    from dagster import DagsterInstance

log = logging.getLogger(__name__)


class LazyInstance:
    """The deployment's Dagster instance (``runs.open_instance``, under ``root``), opened on first use and
    disposed by ``close``; one handed in ready-made (a test's) is used as it is and left to its owner."""

    def __init__(self, root: Path | None = None, instance: DagsterInstance | None = None) -> None:
        self._root, self._given, self._instance = root, instance, instance
        self._lock = threading.Lock()

    def get(self) -> DagsterInstance:
        with self._lock:
            if self._instance is None:
                from cluster_pipeline.runs import open_instance

                self._instance = open_instance(self._root)
            return self._instance

    def close(self) -> None:
        with self._lock:
            if self._instance is not None and self._instance is not self._given:
                self._instance.dispose()
                self._instance = None


@dataclass(frozen=True)
class Scope:
    """The warnings go to the CLI's stderr, or by default to the log."""

    lake: Lake
    namespace: str
    instances: LazyInstance
    warn: Callable[[str], None] = log.warning

    def instance(self) -> DagsterInstance:
        return self.instances.get()
