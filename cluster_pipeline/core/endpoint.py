"""An OpenAI-compatible endpoint, as the labels stage (chat) and the embedding stage (embeddings) reach it.

Both go through the ``openai`` client with the same settings — where the endpoint is, its key, the
timeout and the client's own retries (408/409/429/5xx, timeouts and lost connections, with
exponential backoff, jitter and ``Retry-After``) — so OpenAI, Azure OpenAI, vLLM, Ollama and
llama.cpp's server are configured alike. The key is only handed to the client; every error text is
redacted before it is logged or stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    import openai


class EndpointSettings(BaseModel):
    """Where an OpenAI-compatible endpoint is and how hard to try. With neither ``api_key`` nor
    ``base_url`` there is no endpoint."""

    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    api_key: str | None = Field(None, repr=False, description="Secret; pass EnvVar('OPENAI_API_KEY'), never a literal.")
    timeout_seconds: float = Field(60.0, gt=0, description="Per request.")
    max_retries: int = Field(4, ge=0, le=20, description="The client's retries per request before giving up.")

    @field_validator("base_url", "api_key")
    @classmethod
    def _unset_when_empty(cls, value: str | None) -> str | None:
        return value or None

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.base_url)


def openai_client(settings: EndpointSettings, **http_client_options: Any) -> openai.OpenAI:
    """The ``openai`` client of ``settings``, with its own retries and timeout; ``http_client_options`` go to
    its HTTPX client (event hooks, a transport)."""
    import openai

    return openai.OpenAI(
        api_key=settings.api_key or "no-key",  # local servers take any key, but the client insists on one
        base_url=settings.base_url,
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
        http_client=openai.DefaultHttpxClient(**http_client_options) if http_client_options else None,
    )


def describe_error(error: openai.APIError, settings: EndpointSettings) -> str:
    """What went wrong, in one redacted line: ``HTTP 404: model not found``, ``timed out after 60 s``."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        text = f"timed out after {settings.timeout_seconds:g} s"
    elif isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("error", body)
        message = detail.get("message") if isinstance(detail, dict) else None
        text = f"HTTP {error.status_code}" + (f": {message}" if message else "")
    elif isinstance(error, openai.APIConnectionError):
        text = f"connection failed: {error.__cause__ or error}"
    else:
        text = f"{type(error).__name__}: {error}"
    return redact(text, settings.api_key)


def attempts_of(error: openai.APIError) -> int:
    """How many times the client sent the failed request: the SDK numbers its retries in a header."""
    return int(error.request.headers.get("x-stainless-retry-count") or 0) + 1


def attempts(count: int) -> str:
    return f"{count} attempt" + ("" if count == 1 else "s")


def redact(text: str, secret: str | None) -> str:
    """``text`` without the secret (or anything shaped like an OpenAI key), cut to 300 characters."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", "[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"
