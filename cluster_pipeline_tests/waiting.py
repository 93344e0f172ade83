"""Polling for tests that wait on other processes (daemons, servers, run workers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    check: Callable[[], Any], what: str, timeout: float, interval: float = 0.2, detail: Callable[[], str] = str
) -> Any:
    """Call ``check`` until it returns something truthy and return that; after ``timeout`` seconds
    fail, naming ``what`` and appending ``detail()`` (server logs, say) so the failure explains itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s{detail()}")
