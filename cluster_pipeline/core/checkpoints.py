"""Stage checkpoints: the points (load, fit, labels, write) where a fault-injection test can hold a run.

Production runs pass through them at the cost of one environment lookup. With
``CLUSTER_PIPELINE_HOLD_DIR`` set, a run of configuration C reaching stage S checks for
``<dir>/C.hold``; if that file names S, the run writes ``<dir>/C.S.reached`` (its process id) and
waits until ``<dir>/C.S.release`` exists. A test can so kill a worker exactly at a stage, in any
process (CLI, daemon-launched run worker), without racing a sleep against the pipeline's speed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_DIR_ENV = "CLUSTER_PIPELINE_HOLD_DIR"
STAGES = ("load", "fit", "labels", "write")


def checkpoint(cluster_id: str, stage: str) -> None:
    """Pass stage ``stage`` of an execution of ``cluster_id`` (hold there if a test asked to)."""
    folder = os.environ.get(HOLD_DIR_ENV)
    if not folder:
        return
    hold = Path(folder) / f"{cluster_id}.hold"
    if not hold.exists() or hold.read_text().strip() != stage:
        return
    reached = Path(folder) / f"{cluster_id}.{stage}.reached"
    reached.with_suffix(".tmp").write_text(str(os.getpid()))
    reached.with_suffix(".tmp").rename(reached)
    release = Path(folder) / f"{cluster_id}.{stage}.release"
    while not release.exists():
        time.sleep(0.05)
