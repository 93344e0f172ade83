"""Cluster labels from any OpenAI-compatible chat-completions endpoint, falling back per cluster.

``LLMLabeler`` runs ``OfflineLabeler`` first: its keywords and representative documents make each
prompt, and its label is what a cluster keeps when the LLM fails it. Structured output
(``json_schema``) is asked for first; an endpoint that refuses it — HTTP 400, 422 or 500 (llama.cpp's
server) with a body naming ``response_format`` — gets ``json_object``, then plain text parsed
tolerantly, and is not asked again for what it refused, in this execution or a later one in this
process. Retries are the ``openai`` client's (``core.endpoint``), except for such a refusal, which no
retry cures; ours is one more ask after an unusable reply, telling the model why it was refused. A
reply is bounded by ``max_tokens``; requests at once by a limit that a timeout halves
(``labels.concurrency``); the stage by ``deadline_seconds``. A cluster that still fails records
``{cluster_id, error, fallback}``; an authentication or unknown-model error stops all calls at once
(every cluster would fail).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster_pipeline.core.endpoint import attempts, attempts_of, describe_error, openai_client, redact
from cluster_pipeline.core.fit.clustering import FittedClustering
from cluster_pipeline.core.labels.base import ClusterLabel, LabelingOutcome
from cluster_pipeline.core.labels.cache import LabelCache
from cluster_pipeline.core.labels.offline import MAX_LABEL_CHARS, OfflineLabeler, text_columns
from cluster_pipeline.core.labels.options import LabelingOptions, LLMSettings
from cluster_pipeline.core.labels.prompts import ClusterPrompt, cluster_messages, output_schema
from cluster_pipeline.core.labels.replies import InvalidReply, LabelReply
from cluster_pipeline.core.store.results import cluster_name

if TYPE_CHECKING:
    import httpx2
    import openai

    from cluster_pipeline.core.labels.concurrency import AdaptiveLimit

log = logging.getLogger(__name__)

UNUSABLE_REPLY_RETRIES = 1
TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
USAGE_COUNTS = (*TOKEN_COUNTS, "calls", "cache_hits")
FORMAT_ERROR = re.compile(r"response_format|json_schema|structured output|json_object", re.IGNORECASE)
FORMAT_REFUSAL_STATUSES = (400, 422, 500)
REFUSED_REPLY_CHARS = 2000  # of an unusable reply, quoted back to the model when it is asked again
WAIT_SLICE_SECONDS = 0.2  # how often the stage looks at its deadline while it waits for answers

# The response formats each endpoint (base URL and model) refused, for every later execution of this process.
_REFUSED_FORMATS: dict[tuple[str | None, str], set[str]] = {}
_REFUSED_LOCK = threading.Lock()


@dataclass
class _Batch:
    """What the cluster workers of one ``label`` call share: the reply's schemas, the response formats not
    refused yet, usage counts, the deadline, and why to stop, once there is a reason."""

    schema: dict[str, Any]
    custom_schema: dict[str, Any] | None
    formats: list[dict[str, Any] | None]
    usage: dict[str, Any]
    deadline: float
    clock: Callable[[], float]
    deadline_seconds: float
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

    def why_stop(self) -> str | None:
        """Why no further request may be sent (a stop, or the deadline passed), or None."""
        if self.stopped is None and self.clock() >= self.deadline:
            self.stop(f"not labeled within the labels stage's deadline ({self.deadline_seconds:g} s)")
        return self.stopped


class _Failed(Exception):
    """This cluster's LLM label failed for good; the message is already redacted."""


class LLMLabeler:
    """Labels clusters with an LLM; any cluster the LLM fails keeps its offline label. ``clock`` (seconds,
    monotonic) measures the stage's deadline."""

    def __init__(
        self, settings: LLMSettings, cache: LabelCache, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.clock = clock

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
        from cluster_pipeline.core.labels.concurrency import AdaptiveLimit

        schema = output_schema(options.output_schema)
        prompts = cluster_messages(documents, fitted, space, outcome.labels, options, schema)
        seconds = self.settings.deadline_seconds
        batch = _Batch(
            schema, options.output_schema, self._formats(schema), usage, self.clock() + seconds, self.clock, seconds
        )
        limit = AdaptiveLimit(min(self.settings.max_concurrency, len(prompts)))
        answers = self._answers(batch, limit, prompts, outcome.labels)
        usage["concurrency"] = limit.limit
        labels, errors = dict(outcome.labels), []
        for index in prompts:
            answer = answers.get(index) or batch.why_stop() or "not labeled"
            if isinstance(answer, ClusterLabel):
                labels[index] = answer
            else:
                errors.append({"cluster_id": cluster_name(index), "error": answer, "fallback": "offline"})
                log.warning("Cluster %s keeps its offline label: %s", cluster_name(index), answer)
        usage["fallbacks"] = len(errors)
        return LabelingOutcome(
            labels=_distinct(labels),
            errors=errors,
            usage=usage,
            topic_words=outcome.topic_words,
            word_counts=outcome.word_counts,
        )

    def _formats(self, schema: dict[str, Any]) -> list[dict[str, Any] | None]:
        """The response formats to try, best first, less those this endpoint refused before."""
        if not self.settings.structured_output:
            return [None]
        structured = {"type": "json_schema", "json_schema": {"name": "cluster_label", "schema": schema, "strict": True}}
        with _REFUSED_LOCK:
            refused = _REFUSED_FORMATS.get((self.settings.base_url, self.settings.model), set())
            return [f for f in (structured, {"type": "json_object"}) if f["type"] not in refused] + [None]

    def _answers(
        self, batch: _Batch, limit: AdaptiveLimit, prompts: dict[int, ClusterPrompt], offline: dict[int, ClusterLabel]
    ) -> dict[int, ClusterLabel | str]:
        """Each cluster's label or failure, from worker threads, as far as the deadline allows. The workers are
        daemon threads: a request still in flight at the deadline is left to end by itself (it sends no retry),
        and never holds the process open."""
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in prompts:
            todo.put(index)
        done: queue.SimpleQueue[tuple[int, ClusterLabel | str]] = queue.SimpleQueue()
        client = self._client(batch, limit)

        def work() -> None:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                done.put((index, self._label_cluster(client, batch, prompts[index], offline[index])))

        for _ in range(limit.limit):
            threading.Thread(target=work, name="llm-label", daemon=True).start()
        answers: dict[int, ClusterLabel | str] = {}
        while len(answers) < len(prompts) and batch.clock() < batch.deadline:
            try:
                index, answer = done.get(timeout=WAIT_SLICE_SECONDS)
            except queue.Empty:
                continue
            answers[index] = answer
        batch.why_stop()  # past the deadline: the workers send nothing more
        return answers

    def _client(self, batch: _Batch, limit: AdaptiveLimit) -> openai.OpenAI:
        """The client: each HTTP attempt it sends is counted as a call and sent within ``limit``; a refused
        response format is final."""
        from cluster_pipeline.core.labels.concurrency import ThrottledTransport

        return openai_client(
            self.settings,
            transport=ThrottledTransport(limit, batch.why_stop),
            event_hooks={"request": [lambda request: batch.add(calls=1)], "response": [_refusal_is_final]},
        )

    def _label_cluster(
        self, client: openai.OpenAI, batch: _Batch, prompt: ClusterPrompt, offline: ClusterLabel
    ) -> ClusterLabel | str:
        """The cluster's LLM label, or the reason it has none. Never raises."""
        try:
            key = self.cache.key(self.settings.model, prompt.messages, batch.schema)
            reply = self.cache.get(key)
            if reply is not None:
                batch.add(cache_hits=1)
            else:
                reply = self._ask(client, batch, prompt, offline.keywords)
                self.cache.put(key, reply, self.settings.model)
        except _Failed as failed:
            return str(failed)
        except Exception as error:  # the LLM must never fail the execution
            return redact(f"{type(error).__name__}: {error}", self.settings.api_key)
        representatives = offline.representative_document_ids
        return ClusterLabel(**reply.model_dump(), representative_document_ids=representatives, source="llm")

    def _ask(
        self, client: openai.OpenAI, batch: _Batch, prompt: ClusterPrompt, offline_keywords: list[str]
    ) -> LabelReply:
        """Asks until a reply is usable, in the best response format the endpoint takes; raises _Failed."""
        import openai

        from cluster_pipeline.core.labels.concurrency import Stopped

        messages, unusable = prompt.messages, 0
        while True:
            if reason := batch.why_stop():
                raise _Failed(reason)
            response_format = batch.formats[0]
            request: dict[str, Any] = {"model": self.settings.model, "messages": messages}
            request.update(temperature=self.settings.temperature, max_tokens=self.settings.max_tokens)
            request.update(response_format=response_format)
            try:
                response = client.chat.completions.create(**{k: v for k, v in request.items() if v is not None})
            except Stopped as stopped:
                raise _Failed(str(stopped)) from None
            except openai.APIError as error:
                if response_format and _refuses_format(error):
                    self._remember_refusal(response_format)
                    batch.downgrade(response_format)
                    continue
                raise _Failed(self._failure(error, batch)) from None
            if response.usage is not None:
                batch.add(**{name: getattr(response.usage, name) or 0 for name in TOKEN_COUNTS})
            text = None
            try:
                text = _content(response)
                return LabelReply.from_text(
                    text,
                    fallback_keywords=offline_keywords,
                    custom_schema=batch.custom_schema,
                    cluster_id=prompt.cluster_id,
                    documents=prompt.documents,
                )
            except InvalidReply as error:
                problem = redact(str(error), self.settings.api_key)
                if response.choices and response.choices[0].finish_reason == "length":
                    problem = f"the reply was cut at max_tokens ({self.settings.max_tokens}): {problem}"
                unusable += 1
                if unusable > UNUSABLE_REPLY_RETRIES:
                    raise _Failed(f"invalid output: {problem} ({attempts(unusable)})") from None
                messages = [*prompt.messages, *_refusal(text, problem)]

    def _remember_refusal(self, response_format: dict[str, Any]) -> None:
        with _REFUSED_LOCK:
            _REFUSED_FORMATS.setdefault((self.settings.base_url, self.settings.model), set()).add(
                response_format["type"]
            )

    def _failure(self, error: openai.APIError, batch: _Batch) -> str:
        """Why the request failed for good; an error every cluster would meet stops the stage."""
        import openai

        described = describe_error(error, self.settings)
        if isinstance(error, openai.BadRequestError | openai.UnprocessableEntityError):
            return described
        if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError):
            return batch.stop(described + " (no further LLM calls in this execution)")
        return f"{described} ({attempts(attempts_of(error))})"  # what the client's own retries did not cure


def _refuses_format(error: openai.APIError) -> bool:
    """Whether ``error`` is the endpoint refusing the request's response format."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in FORMAT_REFUSAL_STATUSES:
        return False
    return bool(FORMAT_ERROR.search(json.dumps(error.body, default=str) if error.body is not None else str(error)))


def _refusal_is_final(response: httpx2.Response) -> None:
    """A server error that names the request's response format will answer every retry the same way: tell the
    client not to retry it (the SDK's own ``x-should-retry`` header), so the format is downgraded at once."""
    if response.status_code < 500 or b'"response_format"' not in response.request.content:
        return
    response.read()
    if FORMAT_ERROR.search(response.text):
        response.headers["x-should-retry"] = "false"


def _refusal(reply: str | None, problem: str) -> list[dict[str, str]]:
    """The turn that asks again: the refused reply, and why it was refused."""
    return [
        {"role": "assistant", "content": (reply or "")[:REFUSED_REPLY_CHARS]},
        {"role": "user", "content": f"That reply was refused ({problem}). Answer again with the JSON object only."},
    ]


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
