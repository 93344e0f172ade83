"""What the keywords and the topic measures read of a text: its words, with markup decoded first.

Scraped news carries HTML entities, often with their "&" lost ("#39;s", "quot;"), tags (escaped
too), links and line-continuation backslashes ("second\\team"). ``clean_texts`` decodes a whole
column at once with Arrow's regex kernels (no Python per document); ``decode_markup`` does the same
for one string a person reads (a summary's example). ``coherence_tokens`` splits cleaned texts as
the topic-coherence literature and gensim's users do: lower-cased, ``[a-z][a-z0-9']+``.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TAGS = r"<[^>]*>|&lt;.*?&gt;"
LINKS = r"https?://\S+|www\.\S+"
# entities as Arrow decodes them (RE2 has no callback): the ones news text uses, then any other as a space.
# An apostrophe whose "&" was lost often lost it to a space ("China #39;s"): it joins its word again.
ENTITIES = (
    (r"[& ]?#(?:39|146|8217|x27);|&?apos;", "'"),
    (r"&?#(?:145|8216);", "'"),
    (r"&?#(?:34|147|148|8220|8221);|&?quot;", '"'),
    (r"&?#36;", "$"),
    (r"&?#0?38;|&?amp;", "&"),
    (r"&?#(?:151|8212);|&?mdash;", " - "),
    (r"&?#\d+;|&[a-z]+;|&?nbsp;", " "),
)
# the same entities with their "&" lost, given it back so that ``html.unescape`` knows them
AMPERSAND_LOST = re.compile(r"(?<!&)(#\d+;|\b(?:quot|amp|lt|gt|nbsp|apos);)", re.IGNORECASE)
APOSTROPHE_LOST = re.compile(r" (#(?:39|146|8217);)")
MARKUP = re.compile(f"{TAGS}|{LINKS}|\\\\", re.IGNORECASE)
COHERENCE_SEPARATORS = r"[^a-z0-9']+"
COHERENCE_TOKEN = re.compile(r"[a-z][a-z0-9']+")


def clean_texts(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``texts`` (strings, nulls kept) with tags and links removed and entities decoded, case kept."""
    texts = pc.replace_substring_regex(texts, pattern=f"(?i){TAGS}|{LINKS}|\\\\", replacement=" ")
    for pattern, replacement in ENTITIES:
        texts = pc.replace_substring_regex(texts, pattern=f"(?i){pattern}", replacement=replacement)
    return texts


def decode_markup(text: str) -> str:
    """One text as a person should read it: entities decoded (those that lost their "&" too), tags,
    links and stray backslashes removed, white space collapsed."""
    text = AMPERSAND_LOST.sub(r"&\1", APOSTROPHE_LOST.sub(r"\1", text))
    return " ".join(MARKUP.sub(" ", html.unescape(text)).split())


def coherence_words(text: str) -> list[str]:
    """The tokens of one text as ``coherence_tokens`` splits a column ("Oil prices" -> oil, prices)."""
    return COHERENCE_TOKEN.findall(decode_markup(text).lower())


def coherence_tokens(cleaned: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The tokens of the ``cleaned`` texts (``clean_texts``), in order, as ``re.findall(r"[a-z][a-z0-9']+",
    text.lower())`` finds them, and the (T,) index of the text each comes from (a null text has none).

    A run of ``[a-z0-9']`` holds at most one such token (the match runs to the run's end), its first
    letter on: so the runs are split out, their leading digits and apostrophes dropped, and what is
    left kept when it has two characters or more.
    """
    lowered = pc.utf8_lower(cleaned)
    runs = pc.ascii_split_whitespace(pc.replace_substring_regex(lowered, pattern=COHERENCE_SEPARATORS, replacement=" "))
    tokens = pc.utf8_ltrim(pc.list_flatten(runs), characters="0123456789'")
    keep = pc.greater_equal(pc.utf8_length(tokens), 2)
    parents = pc.list_parent_indices(runs).filter(keep).to_numpy(zero_copy_only=False)
    tokens = tokens.filter(keep)
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    return tokens, parents.astype(np.int64, copy=False)
