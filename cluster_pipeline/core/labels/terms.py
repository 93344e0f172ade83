"""Word counts by cluster: what the offline keywords are chosen from (``labels.offline.term_counts``),
handed on in the labeling outcome so the topic tree names its merges from the same counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse


@dataclass(frozen=True)
class TermCounts:
    """(G, V) float64 CSR word counts by group (sorted indices), the (V,) lower-case words, and the
    (V,) forms the texts write them in ("IBM", "iPhone", "oil")."""

    counts: sparse.csr_matrix
    words: np.ndarray
    forms: np.ndarray

    def written(self, words: Sequence[str]) -> list[str]:
        """``words`` (lower case, some of ``self.words``) as the texts write them."""
        index = {word: i for i, word in enumerate(self.words)}
        return [str(self.forms[index[word]]) if word in index else word for word in words]
