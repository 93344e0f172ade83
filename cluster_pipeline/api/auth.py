"""Who is asking, in which namespace: ``Authorization: Bearer sk_…`` and ``X-Namespace``, as FastAPI
dependencies. A key is checked against its salted hash once, then remembered by a digest of it for the
process's life; the keys document is re-read every few seconds, so a revocation holds within that."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, Depends, Header, Request

from cluster_pipeline.api.errors import ApiError
from cluster_pipeline.core.errors import InvalidIdentifierError
from cluster_pipeline.core.ids import check_namespace
from cluster_pipeline.core.store.api_keys import ApiKey, ApiKeyStore, KeyRing, Right
from cluster_pipeline.service import Service

KEYS_REFRESH_SECONDS = 2.0


class Keys:
    """The keys of the data root as this process sees them."""

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store
        self._ring, self._loaded, self._verified = KeyRing(), float("-inf"), {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> ApiKey | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self._lock:
            if time.monotonic() - self._loaded > KEYS_REFRESH_SECONDS:
                self._ring, self._loaded = self.store.load(), time.monotonic()
            ring = self._ring
            key_id = self._verified.get(digest)
        if key_id is not None:
            found = ring.keys.get(key_id)
            return found if found is not None and not found.revoked else None
        found = ring.verify(key)  # scrypt: tens of milliseconds, once per key and process
        if found is not None:
            with self._lock:
                self._verified[digest] = found.key_id
        return found


@dataclass(frozen=True)
class Caller:
    """An authorised request: its key and the service in its namespace."""

    key: ApiKey
    namespace: str
    service: Service


def _caller(request: Request, authorization: str | None, namespace: str | None, right: Right) -> Caller:
    state = request.app.state
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "Missing API key: send 'Authorization: Bearer sk_…'.", "Unauthorized")
    found = state.keys.verify(key.strip())
    if found is None:
        raise ApiError(401, "Invalid or revoked API key.", "Unauthorized")
    wait = state.limiter.wait_needed(found.key_id)
    if wait > 0:
        message = f"Rate limit of {state.limiter.rate:g} requests a second exceeded; retry in {wait:.1f} s."
        raise ApiError(429, message, "RateLimited", {"Retry-After": str(max(1, round(wait + 0.5)))})
    if not namespace:
        raise ApiError(422, "Missing X-Namespace header: name the namespace (a name or an ns_ id).", "ValidationError")
    try:
        namespace = check_namespace(namespace)
    except InvalidIdentifierError as error:
        raise ApiError(422, f"X-Namespace: {error}", "ValidationError") from None
    if not found.allows(namespace, right):
        what = "write to" if right == "write" and found.allows(namespace, "read") else "use"
        raise ApiError(403, f"This API key may not {what} namespace {namespace!r}.", "Forbidden")
    return Caller(found, namespace, state.service.in_namespace(namespace))


def reader(
    request: Request,
    authorization: str | None = Header(None),
    x_namespace: str | None = Header(None, alias="X-Namespace"),
) -> Caller:
    return _caller(request, authorization, x_namespace, "read")


def writer(
    request: Request,
    authorization: str | None = Header(None),
    x_namespace: str | None = Header(None, alias="X-Namespace"),
) -> Caller:
    return _caller(request, authorization, x_namespace, "write")


ReadCaller = Annotated[Caller, Depends(reader)]
WriteCaller = Annotated[Caller, Depends(writer)]
JsonBody = Annotated[dict[str, Any], Body()]
OptionalBody = Annotated[dict[str, Any] | None, Body()]
