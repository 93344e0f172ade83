"""Cluster labels from any OpenAI-compatible chat-completions endpoint, falling back per cluster.

``LLMLabeler`` runs ``OfflineLabeler`` first: its keywords and representative documents make each
prompt, and its label is what a cluster keeps when the LLM fails it. Structured output
(``json_schema``) is asked for first; an endpoint that refuses it (HTTP 400/422 naming
``response_format``) gets ``json_object``, then plain text parsed tolerantly, and is not asked again
for what it refused. Retries are the ``openai`` client's (408/409/429/5xx, timeouts and lost
connections, with exponential backoff, jitter and ``Retry-After``); ours is one more ask after an
unusable reply. A cluster that still fails records ``{cluster_id, error, fallback}``; an
authentication or unknown-model error stops all calls at once (every cluster would fail).
The API key is only handed to the client; every error text is redacted before it is logged or stored.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.labels.base import ClusterLabel, LabelingOutcome
from cluster_pipeline.core.labels.cache import LabelCache
from cluster_pipeline.core.labels.offline import MAX_LABEL_CHARS, OfflineLabeler, text_columns
from cluster_pipeline.core.labels.options import LabelingOptions, LLMSettings
from cluster_pipeline.core.labels.prompts import cluster_messages, output_schema
from cluster_pipeline.core.labels.replies import InvalidReply, LabelReply
from cluster_pipeline.core.store.results import cluster_name

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

UNUSABLE_REPLY_RETRIES = 1
TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
USAGE_COUNTS = (*TOKEN_COUNTS, "calls", "cache_hits")


def redact(text: str, secret: str | None) -> str:
    """``text`` without the secret (or anything shaped like an OpenAI key), cut to 300 characters."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", "[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


class _Failed(Exception):
    """This cluster's LLM label failed for good; the message is already redacted."""


@dataclass
class _Batch:
    """What the cluster workers of one ``label`` call share: the reply's schemas, the response formats not
    refused yet, usage counts, and why to stop, once there is a reason."""

    schema: dict[str, Any]
    custom_schema: dict[str, Any] | None
    formats: list[dict[str, Any] | None]
    usage: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: str | None = None

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                self.usage[name] += value

    def downgrade(self, refused: dict[str, Any]) -> None:
        with self.lock:
            if self.formats[0] == refused and len(self.formats) > 1:
                self.formats.pop(0)

    def stop(self, reason: str) -> str:
        with self.lock:
            self.stopped = self.stopped or reason
            return self.stopped


class LLMLabeler:
    """Labels clusters with an LLM; any cluster the LLM fails keeps its offline label."""

    def __init__(self, settings: LLMSettings, cache: LabelCache) -> None:
        self.settings = settings
        self.cache = cache

    def label(
        self, documents: pd.DataFrame, fitted: FittedClustering, space: np.ndarray, options: LabelingOptions
    ) -> LabelingOutcome:
        outcome = OfflineLabeler().label(documents, fitted, space, options)
        if not (options.use_llm and self.settings.enabled) or not outcome.labels:
            return outcome
        usage: dict[str, Any] = {"model": self.settings.model, **dict.fromkeys(USAGE_COUNTS, 0)}
        if not text_columns(documents, options.text_fields):
            usage["note"] = "no text columns to send; labels stay offline"
            return replace(outcome, errors=[], usage=usage)
        schema = output_schema(options.output_schema)
        messages = cluster_messages(documents, fitted, space, outcome.labels, options, schema)
        structured = {"type": "json_schema", "json_schema": {"name": "cluster_label", "schema": schema, "strict": True}}
        formats: list[dict[str, Any] | None] = [structured, {"type": "json_object"}, None]
        if not self.settings.structured_output:
            formats = [None]
        batch = _Batch(schema=schema, custom_schema=options.output_schema, formats=formats, usage=usage)
        with (
            self._client(batch) as client,
            ThreadPoolExecutor(min(self.settings.max_concurrency, len(messages)), "llm-label") as pool,
        ):
            offline = [outcome.labels[index] for index in messages]
            answers = list(pool.map(partial(self._label_cluster, client, batch), messages.values(), offline))
        labels, errors = dict(outcome.labels), []
        for index, answer in zip(messages, answers, strict=True):
            if isinstance(answer, ClusterLabel):
                labels[index] = answer
            else:
                errors.append({"cluster_id": cluster_name(index), "error": answer, "fallback": "offline"})
                log.warning("Cluster %s keeps its offline label: %s", cluster_name(index), answer)
        usage["fallbacks"] = len(errors)
        return LabelingOutcome(labels=_distinct(labels), errors=errors, usage=usage, topic_words=outcome.topic_words)

    def _client(self, batch: _Batch) -> openai.OpenAI:
        """The client, with its own retries and timeout; each HTTP request it sends (retries too) is a call."""
        import openai

        return openai.OpenAI(
            api_key=self.settings.api_key or "no-key",  # local servers take any key, but the client insists on one
            base_url=self.settings.base_url,
            timeout=self.settings.timeout_seconds,
            max_retries=self.settings.max_retries,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [lambda request: batch.add(calls=1)]}),
        )

    def _label_cluster(
        self, client: openai.OpenAI, batch: _Batch, messages: list[dict[str, str]], offline: ClusterLabel
    ) -> ClusterLabel | str:
        """The cluster's LLM label, or the reason it has none. Never raises."""
        try:
            key = self.cache.key(self.settings.model, messages, batch.schema)
            reply = self.cache.get(key)
            if reply is not None:
                batch.add(cache_hits=1)
            else:
                reply = self._ask(client, batch, messages, offline.keywords)
                self.cache.put(key, reply, self.settings.model)
        except _Failed as failed:
            return str(failed)
        except Exception as error:  # the LLM must never fail the execution
            return redact(f"{type(error).__name__}: {error}", self.settings.api_key)
        representatives = offline.representative_document_ids
        return ClusterLabel(**reply.model_dump(), representative_document_ids=representatives, source="llm")

    def _ask(
        self, client: openai.OpenAI, batch: _Batch, messages: list[dict[str, str]], offline_keywords: list[str]
    ) -> LabelReply:
        """Asks until a reply is usable, in the best response format the endpoint takes; raises _Failed."""
        import openai

        unusable = 0
        while True:
            if batch.stopped:
                raise _Failed(batch.stopped)
            response_format = batch.formats[0]
            request: dict[str, Any] = {"model": self.settings.model, "messages": messages}
            request.update(temperature=self.settings.temperature, response_format=response_format)
            try:
                response = client.chat.completions.create(**{k: v for k, v in request.items() if v is not None})
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if response_format and _about_response_format(error):
                    batch.downgrade(response_format)
                    continue
                raise _Failed(self._describe(error)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
                raise _Failed(batch.stop(self._describe(error) + " (no further LLM calls in this execution)")) from None
            except openai.APIError as error:  # what the client's own retries did not cure
                raise _Failed(f"{self._describe(error)} ({_attempts(_sent(error))})") from None
            if response.usage is not None:
                batch.add(**{name: getattr(response.usage, name) or 0 for name in TOKEN_COUNTS})
            try:
                return LabelReply.from_text(
                    _content(response), fallback_keywords=offline_keywords, custom_schema=batch.custom_schema
                )
            except InvalidReply as error:
                unusable += 1
                if unusable > UNUSABLE_REPLY_RETRIES:
                    raise _Failed(
                        f"invalid output: {redact(str(error), self.settings.api_key)} ({_attempts(unusable)})"
                    ) from None

    def _describe(self, error: openai.APIError) -> str:
        import openai

        if isinstance(error, openai.APITimeoutError):
            text = f"timed out after {self.settings.timeout_seconds:g} s"
        elif isinstance(error, openai.APIStatusError):
            body = error.body if isinstance(error.body, dict) else {}
            detail = body.get("error", body)
            message = detail.get("message") if isinstance(detail, dict) else None
            text = f"HTTP {error.status_code}" + (f": {message}" if message else "")
        elif isinstance(error, openai.APIConnectionError):
            text = f"connection failed: {error.__cause__ or error}"
        else:
            text = f"{type(error).__name__}: {error}"
        return redact(text, self.settings.api_key)


def _about_response_format(error: openai.APIStatusError) -> bool:
    text = json.dumps(error.body, default=str) if error.body is not None else str(error)
    return bool(re.search(r"response_format|json_schema|structured output|json_object", text, re.IGNORECASE))


def _sent(error: openai.APIError) -> int:
    """How many times the client sent the failed request: the SDK numbers its retries in a header."""
    return int(error.request.headers.get("x-stainless-retry-count") or 0) + 1


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("" if count == 1 else "s")


def _content(response: Any) -> str | None:
    if not response.choices:
        raise InvalidReply("reply has no choices")
    message = response.choices[0].message
    if getattr(message, "refusal", None):
        raise InvalidReply("the model refused")
    return message.content


def _distinct(labels: dict[int, ClusterLabel]) -> dict[int, ClusterLabel]:
    """When two LLM labels coincide, add to each the first of its keywords the others lack."""
    groups: dict[str, list[int]] = {}
    for index, label in labels.items():
        if label.source == "llm":
            groups.setdefault(label.label.casefold(), []).append(index)
    result = dict(labels)
    for members in (group for group in groups.values() if len(group) > 1):
        for index in members:
            others = {k.casefold() for m in members if m != index for k in labels[m].keywords}
            extra = next((k for k in labels[index].keywords if k.casefold() not in others), None)
            if extra:
                suffix = f" ({extra})"
                base = labels[index].label[: MAX_LABEL_CHARS - len(suffix)].rstrip()
                result[index] = replace(labels[index], label=base + suffix)
    return result
