"""Progress of long stages (documents processed, ETA) for whoever is listening: the Dagster assets'
log, the CLI's stderr bar (``listening``). Updates are throttled (one per ``min_interval`` seconds
per stage, plus the first and the last), so reporting from a hot loop costs nothing measurable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


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

    def __init__(self, sinks: Sequence[ProgressSink] = (), *, min_interval: float = 1.0) -> None:
        self.sinks = list(sinks)
        self.min_interval = min_interval
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    @classmethod
    def silent(cls) -> Progress:
        """Reports only to process-wide listeners (none, unless the CLI registered its bar)."""
        return cls()

    def update(self, stage: str, done: int, total: int, *, note: str = "", unit: str = "documents") -> None:
        now = time.perf_counter()
        started = self._started.setdefault(stage, now)
        first = stage not in self._last
        if not (first or done >= total or now - self._last[stage] >= self.min_interval):
            return
        self._last[stage] = now
        event = ProgressEvent(stage, int(done), int(total), now - started, note, unit)
        for sink in (*self.sinks, *_LISTENERS):
            sink(event)


class StderrBar:
    """A one-line text bar on a terminal: ``fit  [#####.....]  52%  520,000/1,000,000  ETA 9 s``."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width

    def __call__(self, event: ProgressEvent) -> None:
        filled = int(self.width * event.fraction)
        eta = "" if event.eta is None else f"  ETA {event.eta:.0f} s"
        line = (
            f"\r{event.stage:<8} [{'#' * filled}{'.' * (self.width - filled)}] {event.fraction:4.0%}  "
            f"{event.done:,}/{event.total:,} {event.unit}{eta}  {event.note}"
        )
        self.stream.write(line[:160].ljust(100) + ("\n" if event.done >= event.total else ""))
        self.stream.flush()
