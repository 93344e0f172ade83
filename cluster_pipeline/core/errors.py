"""One small hierarchy of typed errors, each carrying the message a user should read.

The CLI prints ``str(error)`` and exits non-zero; a failed execution stores it as the
ExecutionResult's ``error_message``. Messages therefore name the problem *and* the fix.
"""

from __future__ import annotations


class ClusterPipelineError(Exception):
    """Base class: anything the user can act on. Never shown with a traceback."""


class InvalidIdentifierError(ClusterPipelineError, ValueError):
    """A namespace, collection, cluster or run id does not match its format."""


class NotFoundError(ClusterPipelineError, LookupError):
    """A namespace, collection, configuration or execution does not exist."""


class AlreadyExistsError(ClusterPipelineError):
    """Something immutable (an ExecutionResult, a configuration id) exists already."""


class ConflictError(ClusterPipelineError):
    """The action would disturb an execution in flight (update or delete of a running configuration)."""


class NotFinishedError(ClusterPipelineError):
    """The execution is pending or processing, and what was asked of it (a report, its hierarchy) needs
    it finished."""


class CorruptPartError(ClusterPipelineError):
    """A collection's part cannot be read (truncated, not Parquet); the message names the file and the fix."""


class StorageError(ClusterPipelineError):
    """A write to the lake failed (no space left on device, permission denied, a read-only file system);
    the message names the cause and the folder. Nothing was written."""


class IngestError(ClusterPipelineError, ValueError):
    """Documents were refused on ingest; nothing was written."""


class ConfigurationError(ClusterPipelineError, ValueError):
    """A cluster configuration is invalid (unknown algorithm, bad parameter, ...)."""


class FilterError(ConfigurationError):
    """A filter (of a configuration's documents, or of the execution history) is malformed or does
    not fit the fields it filters: an unknown field, a value of the wrong type, an unknown operator."""


class OutboundAddressError(ConfigurationError):
    """A webhook URL may not be requested: a private address the operator has not allowed, credentials
    in the URL, a host that does not resolve (``core.outbound``)."""


class ExecutionError(ClusterPipelineError):
    """A clustering execution cannot complete; the message becomes ``error_message``."""


class InsufficientDocumentsError(ExecutionError):
    """Fewer documents than the algorithm needs."""


class FeatureNotFoundError(ExecutionError):
    """The configured embedding feature is not a column of the collection."""


class InvalidEmbeddingsError(ExecutionError):
    """Embeddings hold NaN/inf values or have the wrong shape."""


class AlgorithmError(ExecutionError):
    """The clustering algorithm itself failed or was misconfigured for this data."""


class ResourceLimitError(ExecutionError):
    """The fit would need more memory or time than the machine or the configuration allows."""
