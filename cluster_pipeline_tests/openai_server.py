"""An OpenAI-compatible chat-completions and embeddings server on loopback, written for the tests.

It speaks the wire format the real ``openai`` client expects (``POST /v1/chat/completions`` and
``/v1/embeddings``, JSON bodies, ``{"error": {...}}`` errors, ``usage`` counts) and plays scripted
behaviours: each request takes the next scripted one, then ``default``. Every request is recorded
with its headers, its body and when it arrived. The default "model" is a tiny, deterministic
labeler: it reads the documents between the ``<documents>`` markers and names the cluster by their
commonest words, and it is gullible — an "ignore previous instructions" *outside* the markers makes
it obey. The behaviours include those of real local servers (llama.cpp's, with small models): a 500
for ``json_schema``, one request at a time, the cluster id as the label, a reply that never ends.
The default embedder sums a fixed pseudo-random vector per word, so texts that share words are near.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

FENCE = re.compile(r"<documents>(.*?)</documents>", re.DOTALL)
# OpenAI's own hint of how long to wait, as short as the client takes it, so retries cost no test time
FAST_RETRY = {"retry-after-ms": "1"}
STOP_WORDS = {"item", "the", "and", "with", "for", "that", "this", "from"}


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_message(self) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")

    @property
    def system_message(self) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == "system")

    def documents(self) -> list[str]:
        match = FENCE.search(self.user_message)
        return [d["text"] for d in json.loads(match.group(1))] if match else []


Behaviour = Callable[[Request], Reply]


def fake_model(request: Request) -> str:
    """The reply of a small, obedient-to-a-fault model: a JSON label from the fenced documents."""
    outside = FENCE.sub("", request.user_message)
    if "ignore previous instructions" in outside.lower():
        return "PWNED"
    words = Counter(
        word
        for text in request.documents()
        for word in re.findall(r"[a-z]{3,}", text.lower())
        if word not in STOP_WORDS
    )
    top = [word for word, _ in words.most_common(5)] or ["misc", "various", "other"]
    reply: dict[str, Any] = {
        "label": " & ".join(w.title() for w in top[:2]),
        "summary": f"Documents about {', '.join(top[:3])}.",
        "keywords": top,
    }
    schema = (request.body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    for name, spec in schema.get("properties", {}).items():
        if name not in reply:
            reply[name] = spec["enum"][0] if "enum" in spec else {"integer": 1, "number": 0.5}.get(spec["type"], "x")
    return json.dumps(reply)


def completion(request: Request, content: str, finish_reason: str = "stop") -> dict[str, Any]:
    prompt_tokens = sum(len(m["content"]) for m in request.body["messages"]) // 4
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", "test-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "test_error", **extra}}, headers or {})


def ok(content: str | None = None) -> Behaviour:
    return lambda request: Reply(body=completion(request, fake_model(request) if content is None else content))


def rate_limited(headers: dict[str, str] | None = None) -> Behaviour:
    return lambda request: error(429, "Rate limit reached for requests", headers or FAST_RETRY)


def server_error(status: int = 500, headers: dict[str, str] | None = None) -> Behaviour:
    return lambda request: error(
        status, "The server had an error while processing your request.", headers or FAST_RETRY
    )


def slow(seconds: float) -> Behaviour:
    return lambda request: Reply(body=completion(request, fake_model(request)), delay=seconds)


def malformed() -> Behaviour:
    return ok('Sure! The label is {"label": "Space", "keywords": [rocket, orbit')


def unauthorized() -> Behaviour:
    return lambda request: error(401, "Incorrect API key provided.", code="invalid_api_key")


def echo_authorization() -> Behaviour:
    """A careless server that quotes the credentials it got in its error message."""
    return lambda request: error(500, f"Upstream rejected headers: {request.headers.get('authorization')}", FAST_RETRY)


def no_response_format() -> Behaviour:
    """A server without structured outputs: refuses ``response_format``, wraps JSON in prose."""

    def behaviour(request: Request) -> Reply:
        if "response_format" in request.body:
            kind = request.body["response_format"].get("type")
            return error(400, f"response_format type {kind!r} is not supported", param="response_format")
        return Reply(body=completion(request, f"Here you go:\n```json\n{fake_model(request)}\n```\nHope it helps!"))

    return behaviour


def refuses_json_schema_with_500() -> Behaviour:
    """llama-cpp-python's server: ``json_schema`` fails its request validation with HTTP 500 (pydantic's
    error, quoted), ``json_object`` and plain requests work."""

    def behaviour(request: Request) -> Reply:
        kind = (request.body.get("response_format") or {}).get("type")
        if kind not in (None, "text", "json_object"):
            detail = [
                {
                    "type": "literal_error",
                    "loc": ["body", "response_format", "type"],
                    "msg": "Input should be 'text' or 'json_object'",
                    "input": kind,
                }
            ]
            return Reply(500, {"error": {"message": str(detail), "type": "internal_server_error"}})
        return ok()(request)

    return behaviour


def one_at_a_time(seconds: float) -> Behaviour:
    """A server that works on one request at a time, ``seconds`` each: the others wait their turn, and a
    request whose client gave up is still worked on (as llama.cpp's server does)."""
    turn = threading.Lock()

    def behaviour(request: Request) -> Reply:
        with turn:
            time.sleep(seconds)
            return ok()(request)

    return behaviour


def cluster_id_as_label() -> Behaviour:
    """A small model that names each cluster by the id the prompt gives it (``"cl_0"``), keywords and all."""

    def behaviour(request: Request) -> Reply:
        cluster_id = re.search(r"Name cluster (\S+),", request.user_message).group(1)
        reply = {"label": cluster_id, "summary": f"Cluster {cluster_id}.", "keywords": [cluster_id, "cluster", "data"]}
        return Reply(body=completion(request, json.dumps(reply)))

    return behaviour


def rambling(json_first: bool = True) -> Behaviour:
    """A model that never stops writing: the label (``json_first``) or musings first, then the same words
    again and again. Given ``max_tokens`` it stops there (about four characters a token) and says so; without
    it the reply never comes."""

    def behaviour(request: Request) -> Reply:
        if not request.body.get("max_tokens"):
            return Reply(body=completion(request, ""), delay=3600)
        musing = "Let me think about these documents once more. " * 1000
        content = fake_model(request) + " " + musing if json_first else musing
        return Reply(body=completion(request, content[: 4 * request.body["max_tokens"]], finish_reason="length"))

    return behaviour


def word_vector(word: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dimensions)


def embeddings(dimensions: int = 32) -> Behaviour:
    """``/v1/embeddings``: each input the normalised sum of its words' fixed pseudo-random vectors."""

    def behaviour(request: Request) -> Reply:
        texts = request.body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        data = []
        for index, text in enumerate(texts):
            vector = sum((word_vector(w, dimensions) for w in re.findall(r"\w+", text.lower())), np.zeros(dimensions))
            vector /= max(float(np.linalg.norm(vector)), 1e-12)
            data.append({"object": "embedding", "index": index, "embedding": vector.tolist()})
        tokens = sum(len(text.split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Reply(body={"object": "list", "data": data, "model": request.body.get("model"), "usage": usage})

    return behaviour


class FakeOpenAIServer:
    """``with FakeOpenAIServer() as server:`` then point a client at ``server.url``. Chat completions play
    ``default`` (and the script); embeddings play ``embedding``."""

    def __init__(self, default: Behaviour | None = None, embedding: Behaviour | None = None) -> None:
        self.default = default or ok()
        self.embedding = embedding or embeddings()
        self.script: deque[Behaviour] = deque()
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def then(self, *behaviours: Behaviour) -> FakeOpenAIServer:
        self.script.extend(behaviours)
        return self

    def _next(self, request: Request, path: str) -> Reply:
        with self._lock:
            self.requests.append(request)
            if path == "/v1/embeddings":
                behaviour = self.embedding
            else:
                behaviour = self.script.popleft() if self.script else self.default
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return behaviour(request)

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping past a client's timeout must not hold up the test

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hung up on a slow reply: expected in the timeout tests


def _handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.rstrip("/")
            if path not in ("/v1/chat/completions", "/v1/embeddings"):
                self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            request = Request(time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                reply = server._next(request, path)
                if reply.delay:
                    time.sleep(reply.delay)
            finally:
                server._done()
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
