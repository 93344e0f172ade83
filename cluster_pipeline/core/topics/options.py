"""What the topics stage is told: where the documents' time and text are, and how many keywords name
a merged topic. A configuration hands it ``config.topics``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicsOptions:
    """``time_column``: the column topics over time are counted by (default: the collection's first
    timestamp or date column); ``text_fields``: the columns holding text (default title/text);
    ``num_keywords``: keywords per merged topic of the hierarchy."""

    time_column: str | None = None
    text_fields: list[str] | None = None
    num_keywords: int = 8
