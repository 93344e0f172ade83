"""An execution's progress on the terminal, drawn by rich: one line per stage, in the order the stages
start — a spinner while it runs (numba's first compilation included), a bar where the stage counts
documents or values of k, its elapsed time, and what it is doing, cut with an ellipsis so no line is
wider than the terminal. The core reports to ``core.progress``; only this module draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cluster_pipeline.core.progress import STAGE, ProgressEvent, listening

STAGE_COLUMN = 9  # "pictures" and "metrics" fit
BAR_WIDTH = 16


@contextmanager
def showing_progress(enabled: bool) -> Iterator[None]:
    """Draw every progress update of the block on stderr (when ``enabled``: a terminal, no --json)."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, ProgressColumn, SpinnerColumn, Task, TaskID, TaskProgressColumn, TextColumn
    from rich.progress import Progress as Bars
    from rich.table import Column
    from rich.text import Text

    class Seconds(ProgressColumn):
        """Elapsed seconds, frozen when the stage ends: most stages take less than one."""

        def render(self, task: Task) -> Text:
            elapsed = task.finished_time if task.finished else task.elapsed
            return Text(f"{elapsed or 0.0:6.1f} s")

    bars = Bars(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}", table_column=Column(width=STAGE_COLUMN, no_wrap=True)),
        BarColumn(bar_width=BAR_WIDTH),
        TaskProgressColumn(),
        Seconds(),
        TextColumn("{task.fields[note]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
        console=Console(stderr=True, highlight=False),
        expand=True,
    )
    tasks: dict[str, TaskID] = {}

    def show(event: ProgressEvent) -> None:
        # a stage that counts nothing pulses until it ends; a note stays until the next one
        total = None if event.unit == STAGE and event.done < event.total else float(event.total)
        if event.stage not in tasks:
            tasks[event.stage] = bars.add_task(event.stage, total=total, note="")
        bars.update(
            tasks[event.stage], total=total, completed=event.done, **({"note": event.note} if event.note else {})
        )

    with bars, listening(show):
        yield
