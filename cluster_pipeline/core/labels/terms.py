"""Word counts by cluster: what the offline keywords are chosen from (``labels.offline.term_counts``),
handed on in the labeling outcome so the topic tree names its merges from the same counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
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

    @cached_property
    def alphabetical(self) -> np.ndarray:
        """Each word's rank in alphabetical order (rankings break ties by it), sorted once."""
        return alphabetical_ranks(self.words)

    @cached_property
    def totals(self) -> np.ndarray:
        """(V,) counts of each word over every group."""
        return np.asarray(self.counts.sum(axis=0)).ravel()

    @cached_property
    def _index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    def written(self, words: Sequence[str]) -> list[str]:
        """``words`` (lower case, some of ``self.words``) as the texts write them."""
        return [str(self.forms[self._index[word]]) if word in self._index else word for word in words]


def alphabetical_ranks(words: np.ndarray) -> np.ndarray:
    """(V,) rank of each of the distinct ``words`` in alphabetical order: an integer key that sorts as
    they do (sorting by the strings themselves compares Python objects, ~100× slower)."""
    ranks = np.empty(len(words), dtype=np.int64)
    ranks[np.argsort(words, kind="stable")] = np.arange(len(words))
    return ranks
