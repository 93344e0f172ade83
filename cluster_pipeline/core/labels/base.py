"""The labeling stage's interface: what a labeler is given and what it returns.

A labeler names every cluster of a fit (label, summary, keywords). The offline one
(``labels.offline``) needs nothing but the documents; the LLM one (``labels.llm``) falls back to it
per cluster. Both return a ``LabelingOutcome``; the execution chain knows nothing else of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.labels.options import LabelingOptions

if TYPE_CHECKING:
    import pandas as pd

    from cluster_pipeline.core.labels.terms import TermCounts


@dataclass
class LabelingOutcome:
    """Labels per cluster index, plus what went wrong per cluster and what it cost (LLM only), and each
    cluster's top-10 topic words in lower case, which coherence and diversity measure (a labeler that
    gives none is measured by its keywords). ``word_counts``: the clusters' word counts the keywords
    were chosen from (offline labels), which the topic tree names its merges from too rather than
    counting the same texts again; None when the labeler counted none."""

    labels: dict[int, ClusterLabel]
    errors: list[dict[str, Any]] | None = None
    usage: dict[str, Any] | None = None
    topic_words: dict[int, list[str]] | None = None
    word_counts: TermCounts | None = None


class Labeler(Protocol):
    """A labeling stage: offline keywords, or an LLM that falls back to it per cluster."""

    def label(
        self, documents: pd.DataFrame, fitted: FittedClustering, space: np.ndarray, options: LabelingOptions
    ) -> LabelingOutcome: ...


@dataclass(frozen=True)
class ClusterLabel:
    """What a person reads about one cluster; ``metadata`` holds extra fields an LLM schema asked for."""

    label: str
    summary: str
    keywords: list[str]
    representative_document_ids: list[str] = field(default_factory=list)
    source: str = "offline"
    metadata: dict[str, object] = field(default_factory=dict)
