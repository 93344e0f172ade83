"""How an LLM's reply becomes a trusted label: a pydantic model that repairs what it can.

Read tolerantly (code fences, prose around the object, near-miss key names), then validated: label
≤ 60 characters, summary ≤ 300, 3–10 keywords, and a user's output schema (``jsonschema``), whose
properties become the label's ``metadata``. Length and keyword faults are repaired (cut at a word;
split, deduplicated, topped up from the offline keywords); the rest raise ``InvalidReply``, and the
caller asks again. A label that names nothing is refused too: one without words, the cluster's id
(small models answer ``"cl_0"``), or a copy of a document it was shown (one headline is not the
cluster's name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from cluster_pipeline.core.labels.offline import MAX_LABEL_CHARS, MAX_SUMMARY_CHARS

MIN_KEYWORDS = 3
MAX_KEYWORDS = 10
MAX_KEYWORD_CHARS = 40
RESERVED_FIELDS = ("label", "summary", "keywords")
# the near-miss key names models use for each field
LABEL_NAMES = AliasChoices("label", "name", "title", "cluster_label", "cluster_name")
SUMMARY_NAMES = AliasChoices("summary", "description", "cluster_summary")
KEYWORDS_NAMES = AliasChoices("keywords", "tags", "key_words", "keyphrases")
# words that only say "a cluster": "Cluster 3", "cl_3" and "Topic 3" all name cluster 3 by its number alone
PLACEHOLDER_WORDS = frozenset({"cl", "cluster", "topic", "group"})
# a label this many words long that begins a document is that document's opening, copied
COPIED_PREFIX_WORDS = 5


class InvalidReply(ValueError):
    """The LLM's reply is not a usable label; the message says why (it never quotes the key)."""


class LabelReply(BaseModel):
    """One cluster's label as the LLM gave it, repaired; also the form the label cache stores."""

    label: str = Field(min_length=1, max_length=MAX_LABEL_CHARS, validation_alias=LABEL_NAMES)
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS, validation_alias=SUMMARY_NAMES)
    keywords: list[str] = Field(
        default_factory=list,
        validate_default=True,
        min_length=MIN_KEYWORDS,
        max_length=MAX_KEYWORDS,
        validation_alias=KEYWORDS_NAMES,
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("label", "summary", mode="before")
    @classmethod
    def _shortened(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        if info.field_name == "label":
            return _shorten(value.strip().strip("\"'"), MAX_LABEL_CHARS)
        return _shorten(value, MAX_SUMMARY_CHARS)

    @field_validator("label")
    @classmethod
    def _names_something(cls, label: str, info: ValidationInfo) -> str:
        """Refuse a label without words, the cluster's id (``cluster_id`` in the validation context), or a
        copy of one of the ``documents`` (context) the LLM was shown."""
        words = _words(label.rstrip("…"))
        if not words:
            raise PydanticCustomError("no_words", "has no words")
        context = info.context or {}
        cluster_id = context.get("cluster_id")
        if cluster_id and [w for w in words if w not in PLACEHOLDER_WORDS] == [
            w for w in _words(cluster_id) if w not in PLACEHOLDER_WORDS
        ]:
            raise PydanticCustomError(
                "cluster_id", "is the cluster's id ({cluster_id}), not a name", {"cluster_id": cluster_id}
            )
        for document in context.get("documents", ()):
            shown = _words(document)
            if shown == words or (len(words) >= COPIED_PREFIX_WORDS and shown[: len(words)] == words):
                raise PydanticCustomError("copied", "copies a document instead of naming the cluster")
        return label

    @field_validator("keywords", mode="before")
    @classmethod
    def _repaired_keywords(cls, value: Any, info: ValidationInfo) -> Any:
        """Split, cleaned, deduplicated, cut to ten; a short list is topped up from the offline keywords
        (``fallback_keywords`` in the validation context), a good one is never padded."""
        if isinstance(value, str):
            value = re.split(r"[,;\n]", value)
        if not isinstance(value, list):
            return value if value else []
        keywords: list[str] = []
        for items, up_to in ((value, MAX_KEYWORDS), ((info.context or {}).get("fallback_keywords", ()), MIN_KEYWORDS)):
            for item in items:
                if len(keywords) >= up_to or not isinstance(item, str | int | float) or isinstance(item, bool):
                    continue
                word = _shorten(str(item).strip().strip("\"'#").strip(), MAX_KEYWORD_CHARS)
                if word and word.lower() not in {k.lower() for k in keywords}:
                    keywords.append(word)
        return keywords

    @classmethod
    def from_text(
        cls,
        text: str | None,
        *,
        fallback_keywords: Sequence[str] = (),
        custom_schema: Mapping[str, Any] | None = None,
        cluster_id: str | None = None,
        documents: Sequence[str] = (),
    ) -> LabelReply:
        """The label in a reply; raises InvalidReply when it cannot be repaired. ``cluster_id`` and the
        ``documents`` shown are what the label must not merely repeat."""
        if not text or not text.strip():
            raise InvalidReply("reply is empty")
        data = extract_json_object(text)
        fields = {str(key).strip().lower(): value for key, value in data.items()}
        fields["metadata"] = _custom_fields(data, custom_schema)
        try:
            context = {"fallback_keywords": fallback_keywords, "cluster_id": cluster_id, "documents": documents}
            return cls.model_validate(fields, context=context)
        except ValidationError as error:
            problems = "; ".join(f"{item['loc'][0]}: {item['msg']}" for item in error.errors())
            raise InvalidReply(problems) from None


def _custom_fields(data: Mapping[str, Any], custom_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The properties of the user's schema found in ``data`` (null counts as absent), checked against it."""
    if not custom_schema:
        return {}
    from jsonschema import Draft202012Validator  # 0.1 s of start-up, for custom schemas only

    properties = {k: v for k, v in (custom_schema.get("properties") or {}).items() if k not in RESERVED_FIELDS}
    required = [name for name in custom_schema.get("required") or [] if name not in RESERVED_FIELDS]
    schema = {**custom_schema, "properties": properties, "required": required}
    schema.pop("additionalProperties", None)  # the reply's own fields are not the user's to forbid
    values = {name: data[name] for name in properties if data.get(name) is not None}
    error = next(iter(Draft202012Validator(schema).iter_errors(values)), None)
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path)
        raise InvalidReply(f"{where}: {error.message}" if where else error.message)
    return values


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, in a code fence, or with prose around it."""
    text = text.strip()
    for candidate in [text, *re.findall(r"```(?:json|JSON)?\s*(.*?)```", text, flags=re.DOTALL)]:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise InvalidReply("reply is not a JSON object")


def _words(text: str) -> list[str]:
    """Lower-cased letter runs and numbers: ``"CL_0"`` and ``"cl-0"`` are ``["cl", "0"]``."""
    return re.findall(r"[^\W\d_]+|\d+", text.casefold())


def _shorten(text: str, limit: int) -> str:
    """Cut at a word boundary (a sentence end for long text) so the result still reads as written."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence = head.rfind(". ")
    if sentence >= limit // 2:
        return head[: sentence + 1]
    space = head[: limit - 1].rfind(" ")
    return (head[: limit - 1] if space < limit // 2 else head[:space]).rstrip(" ,;:-–") + "…"
