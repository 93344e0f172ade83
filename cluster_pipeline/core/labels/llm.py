"""Cluster labels from any OpenAI-compatible chat-completions endpoint, falling back per cluster.

``LLMLabeler`` is a labeling stage like ``OfflineLabeler``, and runs it first: the offline labels
give each prompt its distinctive keywords and representative documents, and they are what a cluster
keeps when the LLM fails it. Per cluster, the labeler

* asks for structured output (``json_schema``); an endpoint that refuses it (HTTP 400/422 naming
  ``response_format``) is asked for ``json_object``, then for plain text parsed tolerantly;
* retries 408/409/429/5xx, timeouts, lost connections and unusable replies with exponential
  backoff and jitter, honouring ``Retry-After``; the openai client's own retries are off so the
  count and the waits are ours;
* after the last retry keeps its offline label and records ``{cluster_id, error, fallback}``;
  an authentication or unknown-model error stops all calls at once (every cluster would fail).

Labels are cached in the lake under the sha256 of (model, messages, schema): the messages hold
the representative documents and keywords, so an unchanged clustering calls nothing. The API key
is only handed to the client; every error text is redacted before it is logged or stored.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cluster_pipeline.core.config.model import ClusterConfig
from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.labels.base import ClusterLabel, Labeler, LabelingOutcome
from cluster_pipeline.core.labels.offline import MAX_LABEL_CHARS, OfflineLabeler, text_columns
from cluster_pipeline.core.labels.prompts import (
    ClusterPrompt,
    InvalidReply,
    ParsedLabel,
    build_messages,
    output_schema,
    parse_reply,
)
from cluster_pipeline.core.store.lake import Lake
from cluster_pipeline.core.store.results import cluster_name

log = logging.getLogger(__name__)

MAX_OTHER_CLUSTERS = 20
OTHER_CLUSTER_KEYWORDS = 5
RESPONSE_FORMATS = ("json_schema", "json_object", None)
CACHE_VERSION = 1


@dataclass(frozen=True)
class LLMSettings:
    """How to reach the endpoint. With neither ``api_key`` nor ``base_url`` the LLM is off."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0
    max_concurrency: int = 4
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    temperature: float | None = 0.0
    structured_output: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.base_url)


def redact(text: str, secret: str | None) -> str:
    """``text`` without the secret (or anything shaped like an OpenAI key), cut to 300 characters."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", "[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


class _Stop(Exception):
    """An error no retry can fix for any cluster (bad key, unknown model)."""


@dataclass
class _Run:
    """State shared by the cluster workers of one ``label`` call."""

    formats: list[str | None]
    usage: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: str | None = None

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                self.usage[name] += value

    def downgrade(self, refused: str | None) -> None:
        with self.lock:
            if self.formats and self.formats[0] == refused and len(self.formats) > 1:
                self.formats.pop(0)


class LLMLabeler:
    """Labels clusters with an LLM; any cluster the LLM fails keeps its offline label.

    Parameters
    ----------
    settings : endpoint, model, limits.
    lake : where the label cache lives; None disables the cache.
    client : an ``openai.OpenAI``-like client (default: one built from ``settings``).
    offline : the fallback stage (default ``OfflineLabeler``).
    sleep : how to wait between retries (tests may record instead of sleeping).
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        lake: Lake | None = None,
        client: Any = None,
        offline: Labeler | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.lake = lake
        self._client = client
        self.offline = offline or OfflineLabeler()
        self.sleep = sleep
        self._random = random.Random()

    def label(
        self, documents: pd.DataFrame, fitted: FittedClustering, space: np.ndarray, config: ClusterConfig
    ) -> LabelingOutcome:
        outcome = self.offline.label(documents, fitted, space, config)
        if not (config.labeling.use_llm and self.settings.enabled) or not outcome.labels:
            return outcome
        options = config.labeling
        usage: dict[str, Any] = {
            "model": self.settings.model,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "calls": 0,
            "cache_hits": 0,
        }
        columns = text_columns(documents, options.text_fields)
        if not columns:
            usage["note"] = "no text columns to send; labels stay offline"
            return replace(outcome, errors=[], usage=usage)
        schema = output_schema(options.output_schema)
        prompts = self._prompts(documents, fitted, space, outcome.labels, columns, options.max_chars_per_document)
        formats = list(RESPONSE_FORMATS if self.settings.structured_output else (None,))
        run = _Run(formats=formats, usage=usage)
        client = self._client or self._new_client()
        try:
            workers = max(1, min(self.settings.max_concurrency, len(prompts)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-label") as pool:
                futures = {
                    index: pool.submit(
                        self._label_cluster,
                        client,
                        run,
                        config.namespace,
                        build_messages(prompt, schema, options.prompt_template),
                        schema,
                        outcome.labels[index],
                        options.output_schema,
                    )
                    for index, prompt in prompts.items()
                }
                results = {index: future.result() for index, future in futures.items()}
        finally:
            if self._client is None:
                client.close()
        labels = dict(outcome.labels)
        errors = []
        for index, result in sorted(results.items()):
            if isinstance(result, ClusterLabel):
                labels[index] = result
            else:
                errors.append({"cluster_id": cluster_name(index), "error": result, "fallback": "offline"})
                log.warning("Cluster %s keeps its offline label: %s", cluster_name(index), result)
        usage["fallbacks"] = len(errors)
        return LabelingOutcome(labels=_distinct(labels), errors=errors, usage=usage)

    def _new_client(self) -> Any:
        import openai

        return openai.OpenAI(
            # local servers take any key, but the client insists on one
            api_key=self.settings.api_key or "no-key",
            base_url=self.settings.base_url,
            timeout=self.settings.timeout_seconds,
            max_retries=0,
        )

    def _prompts(
        self,
        documents: pd.DataFrame,
        fitted: FittedClustering,
        space: np.ndarray,
        offline: Mapping[int, ClusterLabel],
        columns: list[str],
        max_chars: int,
    ) -> dict[int, ClusterPrompt]:
        clusters = sorted(offline)
        rows_by_id = pd.Index(documents["document_id"].astype(str))
        nearest = _nearest_clusters(space, fitted.labels, clusters)
        prompts = {}
        for index in clusters:
            label = offline[index]
            rows = rows_by_id.get_indexer(label.representative_document_ids)
            texts = [_document_text(documents.iloc[row], columns, max_chars) for row in rows if row >= 0]
            prompts[index] = ClusterPrompt(
                cluster_id=cluster_name(index),
                num_members=int(np.count_nonzero(fitted.labels == index)),
                num_clusters=fitted.num_clusters,
                keywords=label.keywords,
                other_clusters={
                    cluster_name(other): offline[other].keywords[:OTHER_CLUSTER_KEYWORDS] for other in nearest[index]
                },
                documents=[text for text in texts if text],
            )
        return prompts

    def _label_cluster(
        self,
        client: Any,
        run: _Run,
        namespace: str,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        offline: ClusterLabel,
        custom_schema: dict[str, Any] | None,
    ) -> ClusterLabel | str:
        """The cluster's LLM label, or the reason it has none. Never raises."""
        key = self._cache_key(namespace, messages, schema)
        try:
            cached = self._read_cache(key)
            if cached is not None:
                run.add(cache_hits=1)
                parsed = cached
            else:
                parsed = self._ask(client, run, messages, schema, offline.keywords, custom_schema)
                self._write_cache(key, parsed)
        except _Stop as stop:
            return str(stop)
        except _Failed as failed:
            return str(failed)
        except Exception as error:  # the LLM must never fail the execution
            return redact(f"{type(error).__name__}: {error}", self.settings.api_key)
        return ClusterLabel(
            label=parsed.label,
            summary=parsed.summary,
            keywords=parsed.keywords,
            representative_document_ids=offline.representative_document_ids,
            source="llm",
            metadata=parsed.metadata,
        )

    def _ask(
        self,
        client: Any,
        run: _Run,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        fallback_keywords: list[str],
        custom_schema: dict[str, Any] | None,
    ) -> ParsedLabel:
        import openai

        failures = 0
        while True:
            if run.stopped:
                raise _Stop(run.stopped)
            response_format = run.formats[0]
            wait = 0.0
            try:
                run.add(calls=1)
                response = client.chat.completions.create(**self._request(messages, schema, response_format))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if response_format and _about_response_format(error):
                    run.downgrade(response_format)
                    continue
                raise _Failed(self._describe(error)) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as error:
                run.stopped = run.stopped or self._describe(error) + " (no further LLM calls in this execution)"
                raise _Stop(run.stopped) from None
            except openai.APITimeoutError:
                reason = f"timed out after {self.settings.timeout_seconds:g} s"
            except openai.APIConnectionError as error:
                reason = self._describe(error)
            except openai.APIStatusError as error:
                reason = self._describe(error)
                if not _retryable_status(error.status_code):
                    raise _Failed(reason) from None
                wait = _retry_after(error.response.headers) or 0.0
            else:
                self._count_usage(run, response)
                try:
                    return parse_reply(
                        _content(response), fallback_keywords=fallback_keywords, custom_schema=custom_schema
                    )
                except InvalidReply as error:
                    reason = f"invalid output: {error}"
            failures += 1
            if failures > self.settings.max_retries:
                attempts = "attempt" if failures == 1 else "attempts"
                raise _Failed(f"{reason} ({failures} {attempts})")
            self.sleep(min(wait or self._backoff(failures), self.settings.max_backoff_seconds))

    def _request(
        self, messages: list[dict[str, str]], schema: dict[str, Any], response_format: str | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if self.settings.temperature is not None:
            request["temperature"] = self.settings.temperature
        if response_format == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "cluster_label", "schema": schema, "strict": True},
            }
        elif response_format == "json_object":
            request["response_format"] = {"type": "json_object"}
        return request

    def _backoff(self, failures: int) -> float:
        """Exponential with equal jitter: half the step fixed, half random, so waits still grow."""
        step = min(self.settings.backoff_seconds * 2 ** (failures - 1), self.settings.max_backoff_seconds)
        return step / 2 + self._random.uniform(0, step / 2)

    def _describe(self, error: Exception) -> str:
        import openai

        if isinstance(error, openai.APIStatusError):
            body = error.body if isinstance(error.body, dict) else {}
            detail = body.get("error", body) if isinstance(body, dict) else body
            message = detail.get("message") if isinstance(detail, dict) else None
            text = f"HTTP {error.status_code}" + (f": {message}" if message else "")
        elif isinstance(error, openai.APIConnectionError):
            text = f"connection failed: {error.__cause__ or error}"
        else:
            text = f"{type(error).__name__}: {error}"
        return redact(text, self.settings.api_key)

    @staticmethod
    def _count_usage(run: _Run, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is None:
            return
        run.add(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            total_tokens=int(getattr(usage, "total_tokens", 0) or 0),
        )

    def _cache_key(self, namespace: str, messages: list[dict[str, str]], schema: dict[str, Any]) -> str | None:
        if self.lake is None:
            return None
        what = {"v": CACHE_VERSION, "model": self.settings.model, "messages": messages, "schema": schema}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return self.lake.label_cache_key(namespace, digest)

    def _read_cache(self, key: str | None) -> ParsedLabel | None:
        if key is None or self.lake is None:
            return None
        try:
            if not self.lake.storage.exists(key):
                return None
            data = json.loads(self.lake.storage.read_bytes(key))
            return ParsedLabel(data["label"], data["summary"], list(data["keywords"]), dict(data.get("metadata", {})))
        except (ClusterPipelineError, ValueError, KeyError, TypeError) as error:
            log.warning("Ignoring unreadable label cache entry %s: %s", key, error)
            return None

    def _write_cache(self, key: str | None, parsed: ParsedLabel) -> None:
        if key is None or self.lake is None:
            return
        data = {
            "label": parsed.label,
            "summary": parsed.summary,
            "keywords": parsed.keywords,
            "metadata": parsed.metadata,
            "model": self.settings.model,
        }
        try:
            self.lake.storage.write_replace(key, json.dumps(data, ensure_ascii=False, sort_keys=True).encode())
        except Exception as error:  # a cache that cannot be written costs a call next time, nothing more
            log.warning("Could not cache a label at %s: %s", key, redact(str(error), self.settings.api_key))


class _Failed(Exception):
    """This cluster's LLM label failed for good; the message is already redacted."""


def _about_response_format(error: Any) -> bool:
    text = json.dumps(error.body, default=str) if error.body is not None else str(error)
    return bool(re.search(r"response_format|json_schema|structured output|json_object", text, re.IGNORECASE))


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            moment = email.utils.parsedate_to_datetime(value)
            return max(0.0, moment.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _content(response: Any) -> str | None:
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise InvalidReply("reply has no choices")
    message = choices[0].message
    if getattr(message, "refusal", None):
        raise InvalidReply("the model refused")
    return message.content


def _document_text(row: pd.Series, columns: list[str], max_chars: int) -> str:
    values = [(column, " ".join(str(row[column]).split())) for column in columns if pd.notna(row[column])]
    values = [(column, value) for column, value in values if value]
    text = values[0][1] if len(values) == 1 else "\n".join(f"{column}: {value}" for column, value in values)
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _nearest_clusters(space: np.ndarray, labels: np.ndarray, clusters: list[int]) -> dict[int, list[int]]:
    """For each cluster, the other clusters by centroid cosine similarity, most similar first."""
    if len(clusters) <= 1:
        return {c: [] for c in clusters}
    centroids = np.vstack([space[labels == c].mean(axis=0) for c in clusters]).astype(np.float64)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    similarity = centroids @ centroids.T
    nearest = {}
    for i, c in enumerate(clusters):
        order = [j for j in np.argsort(-similarity[i], kind="stable") if j != i]
        nearest[c] = [clusters[j] for j in order[:MAX_OTHER_CLUSTERS]]
    return nearest


def _distinct(labels: dict[int, ClusterLabel]) -> dict[int, ClusterLabel]:
    """When two LLM labels coincide, add to each the first of its keywords the others lack."""
    groups: dict[str, list[int]] = {}
    for index, label in labels.items():
        if label.source == "llm":
            groups.setdefault(label.label.casefold(), []).append(index)
    result = dict(labels)
    for members in groups.values():
        if len(members) < 2:
            continue
        for index in members:
            others = {k.casefold() for m in members if m != index for k in labels[m].keywords}
            extra = next((k for k in labels[index].keywords if k.casefold() not in others), None)
            if extra:
                suffix = f" ({extra})"
                base = labels[index].label[: MAX_LABEL_CHARS - len(suffix)].rstrip()
                result[index] = replace(labels[index], label=base + suffix)
    return result
