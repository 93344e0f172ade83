"""Topic coherence and diversity: how topic modelling judges a topic's words, as gensim computes them.

A cluster's topic is its top-10 words. *NPMI coherence* (``c_npmi``, Bouma 2009; Röder et al. 2015)
asks whether those words occur together in the collection: for each pair, the normalised pointwise
mutual information of finding both in a virtual document against finding each, averaged over the
pairs (1: always together, 0: independent, -1: never together). The virtual documents are gensim's
boolean sliding windows of 10 tokens (``WINDOW``), and a document-level variant counts whole
documents instead. *Topic diversity* (Dieng et al. 2020) is the share of distinct words among all
topics' top words: 1 when no two topics share a word.

The counts follow ``gensim.models.CoherenceModel(coherence="c_npmi")`` exactly, including how its
accumulator slides a window: a word is dropped when one of its occurrences leaves the window even if
a later one is still inside, until another occurrence enters. Tests compare the two to 1e-6. The
texts are tokenized by ``core.quality.texts.coherence_tokens``; above ``SAMPLE_ABOVE`` documents a
seeded sample of that many is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from cluster_pipeline.core.quality.texts import clean_texts, coherence_tokens

WINDOW = 10  # gensim's default for c_npmi
TOP_WORDS = 10
SAMPLE_ABOVE = 100_000
EPSILON = 1e-12  # gensim's, added to every joint probability


@dataclass(frozen=True)
class TopicQuality:
    """Coherence of each topic (``per_topic``, NaN for a topic of fewer than two words), their means
    over the topics that have one, the document-level variant's mean, and the topics' diversity."""

    per_topic: list[float]
    npmi: float | None
    npmi_document: float | None
    diversity: float | None
    documents: int

    def to_metrics(self) -> dict[str, float | None]:
        """The fields the result's ``metrics`` carries beside the contract's three."""
        return {
            "coherence_npmi": self.npmi,
            "coherence_npmi_document": self.npmi_document,
            "topic_diversity": self.diversity,
        }


@dataclass(frozen=True)
class WordPositions:
    """Where some chosen words stand in a set of texts: each token's word (-1: another word), and
    where each text's tokens start in that sequence."""

    ids: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, cleaned: pa.Array | pa.ChunkedArray, words: Sequence[str]) -> WordPositions:
        """The positions of ``words`` in the ``cleaned`` texts (``core.quality.texts.clean_texts``)."""
        tokens, parents = coherence_tokens(cleaned)
        ids = pc.index_in(tokens, value_set=pa.array(list(words), pa.string())).to_numpy(zero_copy_only=False)
        ids = np.nan_to_num(ids.astype(np.float64), nan=-1).astype(np.int64)
        starts = np.searchsorted(parents, np.arange(len(cleaned) + 1))
        return cls(ids, starts)

    @property
    def num_texts(self) -> int:
        return len(self.starts) - 1


def window_presence(
    positions: WordPositions, num_words: int, window: int | None = WINDOW
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The (W, num_words) 0/1 matrix of which words each virtual document holds, and the (W,) text
    each comes from. A text of L tokens gives ``max(L - window + 1, 1)`` windows (``window=None``: one).

    As gensim's accumulator slides the window one token at a time, dropping the token that leaves and
    adding the one that enters, a word occurring at ``p`` is present from window ``max(p - window + 1,
    0)`` until its first occurrence at or after that window's start leaves; every occurrence opens
    such a span, and the word's presence is their union. One sort, one search and one expansion: no
    Python per token.
    """
    lengths = np.diff(positions.starts)
    width = int(lengths.max(initial=0)) + 1 if window is None else window
    steps = np.maximum(lengths - width + 1, 1)
    first_step = np.concatenate([[0], np.cumsum(steps)])
    text_of_token = np.repeat(np.arange(positions.num_texts), lengths)
    kept = np.flatnonzero(positions.ids >= 0)
    text, word = text_of_token[kept], positions.ids[kept]
    position = kept - positions.starts[text]
    order = np.lexsort((position, word, text))
    text, word, position = text[order], word[order], position[order]
    group = np.concatenate([[0], np.cumsum((text[1:] != text[:-1]) | (word[1:] != word[:-1]))])
    opens = np.maximum(position - width + 1, 0)
    scale = int(lengths.max(initial=0)) + 1
    first_after = np.searchsorted(group * scale + position, group * scale + opens)
    closes = np.minimum(position[first_after] + 1, steps[text])
    earlier = np.concatenate([[False], group[1:] == group[:-1]])
    starts = np.where(earlier, np.maximum(opens, np.concatenate([[0], closes[:-1]])), opens)
    spans = np.maximum(closes - starts, 0)
    offsets = np.repeat(first_step[text] + starts - (np.cumsum(spans) - spans), spans)
    rows = offsets + np.arange(int(spans.sum()))
    columns = np.repeat(word, spans)
    total = int(first_step[-1])
    presence = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, columns)), shape=(total, num_words), dtype=np.float64
    )
    return presence, np.repeat(np.arange(positions.num_texts), steps)


def npmi(joint: np.ndarray, first: np.ndarray, second: np.ndarray, windows: int) -> np.ndarray:
    """gensim's normalised log-ratio measure of word pairs from their window counts: both words
    (``joint``), each word (``first``, ``second``), all windows. A pair with a word no window holds
    (it never occurs) scores -1, the measure's value for words never seen together."""
    joint, first, second = (np.asarray(a, dtype=np.float64) for a in (joint, first, second))
    seen = (first > 0) & (second > 0)
    together = joint / windows + EPSILON
    ratio = np.log(together / np.where(seen, first * second / windows**2, 1.0))
    return np.where(seen, ratio / -np.log(together), -1.0)


def topic_npmi(presence: sparse.csr_matrix, topics: Sequence[Sequence[int]]) -> list[float]:
    """Mean NPMI over each topic's word pairs (columns of ``presence``); NaN for fewer than two words."""
    windows = presence.shape[0]
    occurrences = np.asarray(presence.sum(axis=0)).ravel()
    together = (presence.T @ presence).tocsr()
    scores = []
    for topic in topics:
        left, right = np.triu_indices(len(topic), k=1)
        if not len(left):
            scores.append(float("nan"))
            continue
        a, b = np.asarray(topic)[left], np.asarray(topic)[right]
        joint = np.asarray(together[a, b]).ravel()
        scores.append(float(np.mean(npmi(joint, occurrences[a], occurrences[b], windows))))
    return scores


def topic_diversity(topics: Sequence[Sequence[str]], top_n: int = TOP_WORDS) -> float | None:
    """The share of distinct words among the topics' top ``top_n`` words; None without words."""
    words = [word for topic in topics for word in topic[:top_n]]
    return len(set(words)) / len(words) if words else None


def topic_quality(
    texts: pa.Array | pa.ChunkedArray,
    topics: Sequence[Sequence[str]],
    *,
    cleaned: bool = False,
    window: int = WINDOW,
    top_n: int = TOP_WORDS,
    sample_above: int = SAMPLE_ABOVE,
    random_state: int = 0,
) -> TopicQuality:
    """Coherence and diversity of ``topics`` (each a list of lower-case words, best first; the first
    ``top_n`` count) in ``texts``, the clustered collection (a seeded sample above ``sample_above``);
    ``cleaned``: the texts are ``clean_texts``' output already (the execution's are), not cleaned again."""
    if len(texts) > sample_above:
        picked = np.sort(np.random.default_rng(random_state).choice(len(texts), sample_above, replace=False))
        texts = texts.take(pa.array(picked))
    tops = [list(dict.fromkeys(topic))[:top_n] for topic in topics]
    vocabulary = list(dict.fromkeys(word for topic in tops for word in topic))
    index = {word: i for i, word in enumerate(vocabulary)}
    ids = [[index[word] for word in topic] for topic in tops]
    positions = WordPositions.of(texts if cleaned else clean_texts(texts), vocabulary)
    per_topic = topic_npmi(window_presence(positions, len(vocabulary), window)[0], ids)
    per_document = topic_npmi(window_presence(positions, len(vocabulary), None)[0], ids)
    return TopicQuality(
        per_topic=per_topic,
        npmi=_mean(per_topic),
        npmi_document=_mean(per_document),
        diversity=topic_diversity(tops, top_n),
        documents=len(texts),
    )


def _mean(values: Sequence[float]) -> float | None:
    defined = [value for value in values if not np.isnan(value)]
    return float(np.mean(defined)) if defined else None
