"""Identifier formats, checked before anything touches storage.

Every id ends up in a storage path, so validation is also what keeps ``..``, ``/`` and other
path tricks out of the lake: nothing reaches the file system unless it matched here.
"""

from __future__ import annotations

import re
import secrets
from functools import partial

from cluster_pipeline.core.errors import InvalidIdentifierError

NAMESPACE_PATTERN = re.compile(r"^(ns_[0-9a-f]{6,64}|[A-Za-z0-9][A-Za-z0-9_-]{0,63})$")
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
CLUSTER_ID_PATTERN = re.compile(r"^clust_[0-9a-z]{10,64}$")
RUN_ID_PATTERN = re.compile(r"^run_[0-9a-f]{16}$")
FEATURE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Lowercase only: a name is also a file name in the lake, and two names differing in case would be
# one file on a case-insensitive disk. Never 'clust_…', so a name is never mistaken for an id.
CONFIG_NAME_PATTERN = re.compile(r"^(?!clust_)[a-z0-9][a-z0-9._-]{0,79}$")
# Folders of the data root that are not namespaces: the Dagster instance lives in <root>/dagster_home.
RESERVED_NAMESPACES = frozenset({"dagster_home"})

_FORMATS = {
    "namespace": (NAMESPACE_PATTERN, "a name of letters, digits, '_' or '-' (e.g. 'production') or 'ns_' + hex"),
    "collection": (COLLECTION_PATTERN, "1-128 letters, digits, '_' or '-', starting with a letter or digit"),
    "cluster id": (CLUSTER_ID_PATTERN, "'clust_' followed by 10 or more lowercase letters or digits"),
    "run id": (RUN_ID_PATTERN, "'run_' followed by 16 lowercase hex digits"),
    "feature": (FEATURE_PATTERN, "a column name of letters, digits and '_' (e.g. 'embedding')"),
    "configuration name": (
        CONFIG_NAME_PATTERN,
        "1-80 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit and not with 'clust_' "
        "(e.g. 'agnews-kmeans-k4')",
    ),
}


def _check(kind: str, value: object) -> str:
    """Return ``value`` if it is a valid ``kind`` (a key of ``_FORMATS``), else raise InvalidIdentifierError."""
    pattern, expected = _FORMATS[kind]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidIdentifierError(f"Invalid {kind} {value!r}: expected {expected}.")
    return value


def check_namespace(value: object) -> str:
    namespace = _check("namespace", value)
    if namespace in RESERVED_NAMESPACES:
        raise InvalidIdentifierError(
            f"Namespace {namespace!r} is reserved (the Dagster instance's folder in the data root); choose another name."
        )
    return namespace


check_collection = partial(_check, "collection")
check_cluster_id = partial(_check, "cluster id")
check_run_id = partial(_check, "run id")
check_feature = partial(_check, "feature")
check_config_name = partial(_check, "configuration name")


def is_cluster_id(value: str) -> bool:
    """Whether ``value`` is a ``clust_…`` id (a configuration can be named by its id or its name)."""
    return CLUSTER_ID_PATTERN.fullmatch(value) is not None


def new_cluster_id() -> str:
    """A fresh random configuration id, ``clust_`` + 12 hex characters."""
    return "clust_" + secrets.token_hex(6)


def run_id_from_dagster_run(dagster_run_id: str) -> str:
    """Derive ``run_`` + 16 hex from a Dagster run id (a UUID), so UI and result point at each other."""
    hex_digits = dagster_run_id.replace("-", "").lower()
    if not re.fullmatch(r"[0-9a-f]{16,}", hex_digits):
        raise InvalidIdentifierError(f"Cannot derive a run id from Dagster run id {dagster_run_id!r}.")
    return "run_" + hex_digits[:16]
