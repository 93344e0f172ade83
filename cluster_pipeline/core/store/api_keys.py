"""API keys of the HTTP API: made once, shown once, kept only as salted scrypt hashes.

A key reads ``sk_`` + 43 random URL-safe characters; its first 8 after ``sk_`` are its public id, so a
presented key is checked against one hash (scrypt, compared in constant time), not all of them. Each
key holds namespaces with ``read`` or ``write`` rights. The keys live in one JSON document in the data
root, outside every namespace (``api_keys.json`` is no namespace name), replaced atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from cluster_pipeline.core.errors import NotFoundError
from cluster_pipeline.core.ids import check_namespace
from cluster_pipeline.core.store.storage import Storage, exclusive

KEYS_KEY = "api_keys.json"
KEY_PREFIX = "sk_"
KEY_ID_LENGTH = 8
Right = Literal["read", "write"]
# scrypt's interactive-login cost (RFC 7914: N=2^14, r=8, p=1): ~40 ms and 16 MiB per check
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _hash(key: str, salt: bytes) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, **SCRYPT)


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: no secret, only its salted hash. ``grants``: namespace → ``read`` or ``write``."""

    key_id: str
    grants: dict[str, Right]
    salt: str
    hash: str
    created_at: str
    description: str | None = None
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(_hash(key, bytes.fromhex(self.salt)).hex(), self.hash)

    def allows(self, namespace: str, right: Right) -> bool:
        granted = self.grants.get(namespace)
        return granted == "write" or (granted == "read" and right == "read")

    def public(self) -> dict[str, object]:
        """What listing shows: everything but the salt and hash."""
        data = asdict(self)
        del data["salt"], data["hash"]
        return data


def key_id_of(key: str) -> str | None:
    """The public id inside a presented key, or None when it is not in the keys' form."""
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + 24:
        return None
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + KEY_ID_LENGTH]


@dataclass
class KeyRing:
    """Every key of a data root, by id."""

    keys: dict[str, ApiKey] = field(default_factory=dict)

    def verify(self, key: str) -> ApiKey | None:
        """The live key ``key`` is, or None (unknown, malformed, revoked)."""
        key_id = key_id_of(key)
        found = self.keys.get(key_id) if key_id else None
        return found if found is not None and not found.revoked and found.matches(key) else None


class ApiKeyStore:
    """The keys document of one storage root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def load(self) -> KeyRing:
        try:
            data = json.loads(self.storage.read_bytes(KEYS_KEY))
        except NotFoundError:
            return KeyRing()
        return KeyRing({item["key_id"]: ApiKey(**item) for item in data["keys"]})

    def _save(self, ring: KeyRing) -> None:
        document = {"keys": [asdict(k) for k in ring.keys.values()]}
        self.storage.write_replace(KEYS_KEY, json.dumps(document, indent=2, sort_keys=True).encode())

    def create(self, grants: Mapping[str, Right], description: str | None = None) -> tuple[str, ApiKey]:
        """A new key for ``grants``: the key itself (shown once, never stored) and its stored record."""
        if not grants:
            raise ValueError("A key needs at least one namespace.")
        checked: dict[str, Right] = {check_namespace(ns): right for ns, right in grants.items()}
        with exclusive(self.storage, KEYS_KEY + ".lock"):
            ring = self.load()
            while True:
                key = KEY_PREFIX + secrets.token_urlsafe(32)
                key_id = key_id_of(key)
                if key_id is not None and key_id not in ring.keys:
                    break
            salt = secrets.token_bytes(16)
            now = datetime.now(UTC).isoformat()
            record = ApiKey(key_id, checked, salt.hex(), _hash(key, salt).hex(), now, description)
            ring.keys[key_id] = record
            self._save(ring)
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (the 8 characters after ``sk_``); it answers 401 from then on."""
        with exclusive(self.storage, KEYS_KEY + ".lock"):
            ring = self.load()
            if key_id not in ring.keys:
                raise NotFoundError(f"No API key {key_id!r}; `cluster-pipeline api-keys list` shows the key ids.")
            record = ring.keys[key_id]
            if not record.revoked:
                record = ring.keys[key_id] = replace(record, revoked_at=datetime.now(UTC).isoformat())
                self._save(ring)
        return record
