"""Worker identity: a PID names a process only together with its start time and boot (issue 12, item 3)."""

import dataclasses
import os
import signal
import socket
import subprocess
import time

from cluster_pipeline.lifecycle.processes import Liveness, WorkerIdentity, process_start_ticks, signal_worker
from cluster_pipeline_tests.waiting import wait_until


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"])


def test_a_live_process_is_alive_and_dead_once_it_ends():
    child = sleeper()
    identity = WorkerIdentity.of(child.pid)
    assert identity is not None and identity.liveness() is Liveness.ALIVE
    assert WorkerIdentity.from_text(identity.to_text()) == identity
    child.kill()
    child.wait()
    assert identity.liveness() is Liveness.DEAD
    assert WorkerIdentity.of(child.pid) is None


def test_a_stranger_with_the_workers_pid_is_neither_trusted_nor_signalled():
    """After a crash the kernel may hand the worker's PID to another process (a decoy here): same PID,
    another start time. It must count as dead, and must not receive the signal meant for the worker."""
    decoy = sleeper()
    try:
        ticks = process_start_ticks(decoy.pid)
        assert ticks is not None
        old_worker = WorkerIdentity(socket.gethostname(), decoy.pid, ticks - 1, WorkerIdentity.current().boot_id)
        assert old_worker.liveness() is Liveness.DEAD
        assert signal_worker(old_worker, signal.SIGTERM) is False
        time.sleep(0.2)
        assert decoy.poll() is None  # the stranger lives on
    finally:
        decoy.kill()
        decoy.wait()


def test_signal_reaches_the_worker_itself():
    child = sleeper()
    identity = WorkerIdentity.of(child.pid)
    assert signal_worker(identity, signal.SIGTERM) is True
    assert child.wait(timeout=10) == -signal.SIGTERM


def test_a_reboot_ends_every_worker_and_another_host_is_not_judged():
    me = WorkerIdentity.current()
    assert me.liveness() is Liveness.ALIVE
    assert dataclasses.replace(me, boot_id="another-boot").liveness() is Liveness.DEAD
    assert dataclasses.replace(me, host=me.host + "-elsewhere").liveness() is Liveness.UNKNOWN


def test_a_killed_unreaped_child_is_dead():
    child = sleeper()
    identity = WorkerIdentity.of(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    wait_until(lambda: process_start_ticks(child.pid) is None, "the killed child becoming a zombie", 10, 0.05)
    assert identity.liveness() is Liveness.DEAD  # a zombie until reaped: it will never run again
    child.wait()


def test_garbage_identities_are_ignored():
    assert WorkerIdentity.from_text("12345") is None
    assert WorkerIdentity.from_text("host/x/1/boot") is None
