"""API keys: shown once, stored only as salted hashes, each bound to its namespaces, revocable."""

import json
import re

import pytest

from cluster_pipeline.core.errors import InvalidIdentifierError, NotFoundError
from cluster_pipeline.core.store.api_keys import KEYS_KEY, ApiKeyStore
from cluster_pipeline.core.store.storage import LocalStorage


def test_a_key_is_stored_hashed_verified_bound_to_its_namespaces_and_revoked(tmp_path):
    store = ApiKeyStore(LocalStorage(tmp_path))
    key, record = store.create({"team-a": "write", "team-b": "read"}, "CI")
    other, _ = store.create({"team-a": "read"})
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]{24,}", key) and record.key_id == key[3:11]
    document = (tmp_path / KEYS_KEY).read_text()
    assert key not in document and key[11:] not in document  # only the salted hash is kept
    salts = [k["salt"] for k in json.loads(document)["keys"]]
    assert len(set(salts)) == 2 and "salt" not in record.public() and "hash" not in record.public()

    ring = store.load()
    assert ring.verify(key) == record and ring.verify(other).grants == {"team-a": "read"}
    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), "sk_short", "pk_" + key[3:], ""):
        assert ring.verify(wrong) is None, wrong
    assert record.allows("team-a", "write") and record.allows("team-b", "read")
    assert not record.allows("team-b", "write") and not record.allows("team-c", "read")

    store.revoke(record.key_id)
    assert store.load().verify(key) is None and store.load().verify(other) is not None
    with pytest.raises(NotFoundError, match="api-keys list"):
        store.revoke("nokey000")
    with pytest.raises(InvalidIdentifierError):
        store.create({"../etc": "read"})
