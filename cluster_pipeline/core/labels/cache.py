"""LLM labels kept in the lake, so an unchanged clustering asks the LLM nothing.

An entry (``<namespace>/label_cache/<sha256>.json``) is keyed by the model, the messages and the
output schema; the messages hold the representative documents and keywords, so any change to what
the LLM would be shown is another key. Entries are ``LabelReply``'s JSON plus the model's name.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cluster_pipeline.core.errors import ClusterPipelineError
from cluster_pipeline.core.labels.replies import LabelReply
from cluster_pipeline.core.store.lake import Lake

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class LabelCache:
    """The label cache of one namespace of a lake; an unreadable or unwritable entry only costs a call."""

    lake: Lake
    namespace: str

    def key(self, model: str, messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        what = {"v": CACHE_VERSION, "model": model, "messages": messages, "schema": schema}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return self.lake.label_cache_key(self.namespace, digest)

    def get(self, key: str) -> LabelReply | None:
        try:
            if not self.lake.storage.exists(key):
                return None
            return LabelReply.model_validate_json(self.lake.storage.read_bytes(key))
        except (ClusterPipelineError, ValidationError) as error:
            log.warning("Ignoring unreadable label cache entry %s: %s", key, error)
            return None

    def put(self, key: str, reply: LabelReply, model: str) -> None:
        data = json.dumps({**reply.model_dump(), "model": model}, ensure_ascii=False, sort_keys=True).encode()
        try:
            self.lake.storage.write_replace(key, data)
        except Exception as error:  # a cache that cannot be written costs a call next time, nothing more
            log.warning("Could not cache a label at %s: %s", key, error)
