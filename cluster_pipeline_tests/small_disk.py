"""A real small file system for the tests of full and read-only disks: a tmpfs mounted on a folder
(skipped, saying why, where this process may not mount one)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def _remount(self, option: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{option}", str(self.path)], check=True, capture_output=True)

    def fill(self, leave_bytes: int = 0) -> None:
        """Write until the file system has no byte left, then give back ``leave_bytes``."""
        with open(self.filler, "ab", buffering=0) as handle:
            block = b"\0" * (64 << 10)
            while True:
                try:
                    handle.write(block)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
            handle.truncate(max(0, handle.tell() - leave_bytes))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self) -> None:
        self._remount("ro")

    def writable(self) -> None:
        self._remount("rw")


@contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[SmallDisk]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True, text=True
    ) if os.geteuid() == 0 else None  # fmt: skip
    if mounted is None or mounted.returncode != 0:
        why = "not root" if mounted is None else mounted.stderr.strip()
        pytest.skip(f"cannot mount a small tmpfs to fill up here ({why}); the disk-full tests need root")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
