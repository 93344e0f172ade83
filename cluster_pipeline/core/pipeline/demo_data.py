"""A small, self-made collection for the demo and the tests: no download, no model.

Documents are sentences about six topics; their embeddings come from the text itself (hashed
word and word-pair counts, TF-IDF weighted, projected to 128 dimensions by a fixed random matrix
and L2-normalised). Crude next to a sentence-transformer, but real: documents that share words
land near each other, so clusters and their keywords mean something.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

DEMO_DIMENSIONS = 128

# Each topic's words, then words of no topic (the filler), one line each.
VOCABULARY = """
Space: rocket orbit launch satellite astronaut mars moon telescope nasa spacecraft galaxy planet
Cooking: recipe oven garlic pasta sauce bake flour butter chef kitchen roasted spices
Football: goal striker league match coach penalty stadium midfielder season transfer referee derby
Markets: stocks investors shares earnings inflation bonds traders dividend nasdaq rally profit forecast
Health: vaccine patients doctors hospital clinical trial symptoms treatment virus nurses diagnosis therapy
Music: album guitar concert singer band tour song chart drummer vinyl festival lyrics
Filler: the a new report says today after week people first more about this year
"""
TOPICS: dict[str, list[str]] = {
    name: words.split() for name, words in (line.split(": ") for line in VOCABULARY.strip().splitlines())
}
FILLER = TOPICS.pop("Filler")
TEMPLATES = [
    "{a} and {b} dominate the {c} news this week",
    "Why the {a} matters more than the {b} for {c}",
    "New {a} report: {b}, {c} and the {d}",
    "{a} {b} update as {c} meets {d}",
    "Experts discuss {a}, {b} and {c} today",
]


def _sentence(rng: np.random.Generator, words: list[str]) -> str:
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    picks = rng.choice(words, size=4, replace=False)
    return template.format(a=picks[0], b=picks[1], c=picks[2], d=picks[3])


def embed_texts(texts: list[str], dimensions: int = DEMO_DIMENSIONS, seed: int = 7) -> np.ndarray:
    """Deterministic text embeddings: hashed TF-IDF of words and word pairs, randomly projected."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.random_projection import GaussianRandomProjection

    counts = HashingVectorizer(n_features=2**14, ngram_range=(1, 2), alternate_sign=False, norm=None).transform(texts)
    weighted = TfidfTransformer().fit_transform(counts)
    projected = GaussianRandomProjection(n_components=dimensions, random_state=seed).fit_transform(weighted)
    projected = np.asarray(projected, dtype=np.float32)
    projected /= np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12)
    return projected


def generate_demo_documents(num_documents: int = 3000, *, seed: int = 0, id_offset: int = 0) -> pa.Table:
    """``num_documents`` documents with document_id, title, text, topic and a 128-d ``embedding``."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    topics = rng.integers(len(names), size=num_documents)
    titles, texts = [], []
    for topic in topics:
        words = TOPICS[names[topic]]
        title = _sentence(rng, words)
        body = " ".join([_sentence(rng, words) + "." for _ in range(2)] + [" ".join(rng.choice(FILLER, size=5)) + "."])
        titles.append(title[0].upper() + title[1:])
        texts.append(body)
    embeddings = embed_texts([f"{title}. {text}" for title, text in zip(titles, texts, strict=True)])
    return pa.table(
        {
            "document_id": [f"doc-{id_offset + i:06d}" for i in range(num_documents)],
            "title": titles,
            "text": texts,
            "topic": [names[t] for t in topics],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), DEMO_DIMENSIONS),
        }
    )
