"""Which process runs an execution, and whether that very process is still alive.

A PID alone names a process only while it lives: after a crash the kernel hands the same number
to a stranger, and signalling or trusting it would be wrong. A ``WorkerIdentity`` is the PID plus
the process's start time (clock ticks since boot, from ``/proc/<pid>/stat``), the boot id and the
host name: two different processes never share all four, a reboot changes the boot id, and a
process on another host is not judged from here at all.
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

PROC = Path("/proc")


class Liveness(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another host, or no /proc to look at


def boot_id() -> str | None:
    """This boot's random id (changes on every reboot); None where the kernel does not say."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if there is no such live process (a zombie,
    killed but not yet reaped by its parent, counts as gone: it will never run again)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may itself hold spaces or ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], fields[19]
    return None if state in ("Z", "X") else int(start_ticks)


@dataclass(frozen=True)
class WorkerIdentity:
    """A process, named so that no other process (now or after a reboot) can be mistaken for it."""

    host: str
    pid: int
    start_ticks: int
    boot_id: str

    @classmethod
    def of(cls, pid: int) -> WorkerIdentity | None:
        """The identity of the live process ``pid`` on this host; None if it is gone or unknowable."""
        ticks, boot = process_start_ticks(pid), boot_id()
        if ticks is None or boot is None:
            return None
        return cls(socket.gethostname(), pid, ticks, boot)

    @classmethod
    def current(cls) -> WorkerIdentity | None:
        return cls.of(os.getpid())

    def to_text(self) -> str:
        return f"{self.host}/{self.pid}/{self.start_ticks}/{self.boot_id}"

    @classmethod
    def from_text(cls, text: str) -> WorkerIdentity | None:
        """Inverse of ``to_text``; None for anything that is not one (a tag edited by hand)."""
        parts = text.rsplit("/", 3)
        try:
            return cls(parts[0], int(parts[1]), int(parts[2]), parts[3]) if len(parts) == 4 and parts[0] else None
        except ValueError:
            return None

    def liveness(self) -> Liveness:
        """ALIVE only if this exact process still runs; DEAD if it ended (or the machine restarted)."""
        current_boot = boot_id()
        if self.host != socket.gethostname() or current_boot is None:
            return Liveness.UNKNOWN
        alive = current_boot == self.boot_id and process_start_ticks(self.pid) == self.start_ticks
        return Liveness.ALIVE if alive else Liveness.DEAD

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def signal_worker(identity: WorkerIdentity, signum: int) -> bool:
    """Send ``signum`` to the worker if, and only if, that exact process still runs; True if sent. A pidfd
    pins the process before its identity is checked, so the signal cannot reach a stranger that took
    over the PID between the check and the kill."""
    try:
        handle = os.pidfd_open(identity.pid)
    except ProcessLookupError:
        return False
    try:
        if identity.liveness() is not Liveness.ALIVE:
            return False
        signal.pidfd_send_signal(handle, signum)
    except ProcessLookupError:
        return False
    finally:
        os.close(handle)
    return True
