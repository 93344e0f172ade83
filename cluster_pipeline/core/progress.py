"""Progress of an execution's stages (documents processed, ETA) for whoever is listening: the Dagster
assets' log, the CLI's display (``listening``; ``cli.progress`` draws it). Every stage reports its
start and end (``unit`` ``STAGE``: no count, just that it runs), long ones their documents or values
of k too. Updates are throttled (one per ``min_interval`` seconds per stage, plus the first and the
last), so reporting from a hot loop costs nothing measurable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

STAGE = "stage"  # the unit of a stage's start (0 of 1) and end (1 of 1): it has nothing to count


@dataclass(frozen=True)
class ProgressEvent:
    """One update: ``done`` of ``total`` units (documents, unless ``unit`` says otherwise)."""

    stage: str
    done: int
    total: int
    elapsed: float
    note: str = ""
    unit: str = "documents"

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 1.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None before any progress and once done."""
        if not 0 < self.done < self.total:
            return None
        return self.elapsed * (self.total - self.done) / self.done

    def message(self) -> str:
        if self.unit == STAGE:
            return f"{self.stage}: {'done' if self.done >= self.total else 'started'}, {self.elapsed:.1f} s"
        eta = "" if self.eta is None else f", ETA {self.eta:.0f} s"
        note = f" — {self.note}" if self.note else ""
        return f"{self.stage}: {self.done:,}/{self.total:,} {self.unit} ({self.fraction:.0%}), {self.elapsed:.1f} s{eta}{note}"


ProgressSink = Callable[[ProgressEvent], None]

_LISTENERS: list[ProgressSink] = []


@contextmanager
def listening(sink: ProgressSink) -> Iterator[None]:
    """Send every progress update of this process to ``sink`` while the block runs (the CLI's bar)."""
    _LISTENERS.append(sink)
    try:
        yield
    finally:
        _LISTENERS.remove(sink)


class Progress:
    """Reports stage progress to its sinks and to the process-wide listeners, throttled."""

    def __init__(
        self, sinks: Sequence[ProgressSink] = (), *, min_interval: float = 1.0, listeners: bool = True
    ) -> None:
        self.sinks = list(sinks)
        self.min_interval = min_interval
        self.listeners = listeners
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    @classmethod
    def silent(cls) -> Progress:
        """Reports only to process-wide listeners (none, unless the CLI registered its bar)."""
        return cls()

    @classmethod
    def muted(cls) -> Progress:
        """Reports to no one: for work inside a stage that reports for it (automatic k's trial fits)."""
        return cls(listeners=False)

    def update(self, stage: str, done: int, total: int, *, note: str = "", unit: str = "documents") -> None:
        now = time.perf_counter()
        started = self._started.setdefault(stage, now)
        first = stage not in self._last
        if not (first or done >= total or now - self._last[stage] >= self.min_interval):
            return
        self._last[stage] = now
        event = ProgressEvent(stage, int(done), int(total), now - started, note, unit)
        for sink in (*self.sinks, *(_LISTENERS if self.listeners else ())):
            sink(event)
