"""A small OpenAI-compatible chat-completions server on loopback, written for the tests.

It speaks the wire format the real ``openai`` client expects and plays scripted behaviours, one per
request (``ok`` once the script is used up): ``429`` (with Retry-After), ``500``, ``slow`` (answers
after the client's timeout), ``malformed`` (broken JSON), ``poem`` (prose instead of JSON),
``no_schema`` (400: response_format unsupported). Its "model" is naive on purpose: an instruction to
ignore previous instructions found *outside* the <document> fences makes it answer with a poem.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POEM = "Roses are red, the clusters are blue, I ignore my instructions and write this for you."


@dataclass
class ServerState:
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    slow_seconds: float = 2.0
    retry_after: str = "0"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"


def answer_for(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    outside = re.sub(r"<document[^>]*>.*?</document>", "", prompt, flags=re.DOTALL)
    if "ignore previous instructions" in outside.lower():
        return POEM
    match = re.search(r"distinctive keywords: (.*)", prompt)
    keywords = [k.strip() for k in (match.group(1) if match else "misc").split(",") if k.strip()]
    answer: dict[str, Any] = {
        "label": "LLM: " + " & ".join(k.title() for k in keywords[:2]),
        "summary": f"Documents mostly about {', '.join(keywords[:3])}.",
        "keywords": keywords[:5] + ["extra"] * max(0, 3 - len(keywords[:5])),
    }
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    if "sentiment" in schema.get("properties", {}) or "sentiment" in prompt:
        answer["sentiment"] = "neutral"
    return json.dumps(answer)


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with state.lock:
                state.requests.append(body)
                state.headers.append({name.lower(): value for name, value in self.headers.items()})
            behaviour = state.next_behaviour()
            error = {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
            if behaviour == "429":
                return self._send(
                    429, {"error": {"message": "Rate limit", "type": "rate_limit"}}, {"Retry-After": state.retry_after}
                )
            if behaviour == "500":
                return self._send(500, error)
            if behaviour == "no_schema" and "response_format" in body:
                return self._send(
                    400,
                    {
                        "error": {
                            "message": "response_format json_schema is not supported",
                            "type": "invalid_request_error",
                            "param": "response_format",
                        }
                    },
                )
            if behaviour == "slow":
                time.sleep(state.slow_seconds)
            content = {"malformed": '{"label": "Broken", "summary": ', "poem": POEM}.get(behaviour) or answer_for(body)
            self._send(
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test-model"),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                },
            )

    return Handler


@contextmanager
def openai_server() -> Iterator[tuple[str, ServerState]]:
    """Serve on 127.0.0.1 (a free port); yields the base URL (``…/v1``) and the scriptable state."""
    state = ServerState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
