"""A collection version: the exact list of its parts and tombstones, frozen whatever is appended later.

Parts and tombstones are only ever appended, each with the next sequence number, so a snapshot is
fully described by its listing, and every earlier version is this one cut at a sequence number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from cluster_pipeline.core.errors import FeatureNotFoundError


@dataclass(frozen=True)
class PartInfo:
    """One part (or tombstone) object: its key, sequence number and row count (both from its name), and
    for a part written with its vectors apart, the key of its Arrow IPC file (``core.store.collections``)."""

    key: str
    sequence: int
    num_rows: int
    vectors_key: str | None = None


@dataclass(frozen=True)
class CollectionSnapshot:
    """A frozen view of a collection: exactly these parts, whatever is appended later."""

    namespace: str
    collection: str
    parts: tuple[PartInfo, ...]
    features: dict[str, int]
    deletions: tuple[PartInfo, ...] = ()

    @property
    def num_documents(self) -> int:
        return sum(part.num_rows for part in self.parts) - sum(d.num_rows for d in self.deletions)

    @property
    def version(self) -> str:
        """Content address of the part and deletion lists: changes exactly when the collection changes."""
        keys = [p.key for p in self.parts] + [d.key for d in self.deletions]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        return f"v{len(keys)}-{digest[:12]}"

    def dimension(self, feature: str) -> int:
        """The dimension of ``feature``; FeatureNotFoundError (the seed's wording) if the collection has none."""
        if feature not in self.features:
            available = ", ".join(sorted(self.features)) or "none"
            raise FeatureNotFoundError(
                f"Feature extractor {feature!r} not found in collection {self.collection!r} "
                f"(available: {available}); set the configuration's feature to one of them."
            )
        return self.features[feature]

    def deletions_after(self, part: PartInfo) -> list[PartInfo]:
        """Deletions recorded after ``part`` was written: they apply to it (later re-ingests survive)."""
        return [d for d in self.deletions if d.sequence > part.sequence]

    @property
    def last_sequence(self) -> int:
        """The sequence number of the newest part or tombstone (0 for an empty collection)."""
        return max((p.sequence for p in (*self.parts, *self.deletions)), default=0)

    def up_to(self, sequence: int) -> CollectionSnapshot:
        """The collection as it was when its part or tombstone number ``sequence`` was the newest."""
        return replace(
            self,
            parts=tuple(p for p in self.parts if p.sequence <= sequence),
            deletions=tuple(d for d in self.deletions if d.sequence <= sequence),
        )

    def as_of(self, version: str) -> CollectionSnapshot | None:
        """The earlier snapshot whose ``version`` is ``version`` (an execution's ``collection_version``
        alone says which parts it saw), or None if it is not in this one's history."""
        sequences = sorted({p.sequence for p in (*self.parts, *self.deletions)}, reverse=True)
        return next((past for past in map(self.up_to, [*sequences, 0]) if past.version == version), None)
