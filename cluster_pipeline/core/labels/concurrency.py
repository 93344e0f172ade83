"""How many LLM requests are in flight at once, decided per HTTP attempt, under the ``openai`` client's retries.

A local server (llama.cpp's, a small Ollama) often answers one request at a time: parallel requests
queue behind each other and time out, and the client's retries queue again. So the limit is applied
where each attempt is sent — an HTTPX transport under the client — and a timeout halves it, down to
one, before the client retries. A request waiting for a slot is not yet sent, so its timeout has not
started. Once the labels stage stops (a bad key, its deadline), no further attempt is sent: the
transport raises an ``openai.OpenAIError``, which the client passes on without retrying.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx2
import openai


class AdaptiveLimit:
    """At most ``limit`` holders at once; ``halve`` lowers the limit for everyone after them (never below one)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_use = 0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._in_use < self.limit)
            self._in_use += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= 1
                self._changed.notify_all()

    def halve(self) -> None:
        with self._changed:
            self.limit = max(1, self.limit // 2)


class Stopped(openai.OpenAIError):
    """The labels stage has stopped; the message says why."""


class ThrottledTransport(httpx2.BaseTransport):
    """Sends each attempt within ``limit`` (reading the whole reply inside the slot, so a slow reply holds it);
    ``stopped()`` returns why no more attempts may be sent, or None."""

    def __init__(self, limit: AdaptiveLimit, stopped: Callable[[], str | None]) -> None:
        self.limit = limit
        self.stopped = stopped
        self._sender = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        with self.limit.slot():
            if reason := self.stopped():
                raise Stopped(reason)
            try:
                response = self._sender.handle_request(request)
                response.read()
            except httpx2.TimeoutException:
                self.limit.halve()
                raise
        return response

    def close(self) -> None:
        self._sender.close()
