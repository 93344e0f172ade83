"""Where numba keeps compiled code for the numba libraries we run (umap-learn, pynndescent, fast_hdbscan).

numba compiles on first use: about a minute for UMAP, ~80 s for fast_hdbscan. With its cache in a
persistent folder only the first process on a machine pays; without one, numba writes next to the
installed package (often read-only). ``NUMBA_CACHE_DIR`` decides, default ``.cache/numba``; it must
be set before numba is imported, so every module that loads a numba library calls this first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster_pipeline.core.progress import STAGE, Progress

DEFAULT_NUMBA_CACHE_DIR = Path(".cache") / "numba"


def numba_cache_dir() -> Path:
    """Set ``NUMBA_CACHE_DIR`` to the default unless the user set it; return the folder in use."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(DEFAULT_NUMBA_CACHE_DIR.resolve()))
    return Path(os.environ["NUMBA_CACHE_DIR"])


@contextmanager
def compiling(progress: Progress, package: str, what: str) -> Iterator[None]:
    """Around the first use of ``package``'s numba code on this machine (its cache has no index yet),
    a ``compile`` stage saying so (the CLI shows a spinner; it takes a minute or more, once)."""
    cache_dir = numba_cache_dir()
    if any(cache_dir.glob(f"{package}_*/*.nbi")):
        yield
        return
    note = f"compiling numba kernels for {what} (once per machine; cached in {cache_dir})"
    progress.update("compile", 0, 1, note=note, unit=STAGE)
    yield
    progress.update("compile", 1, 1, note=f"numba kernels for {what} compiled and cached", unit=STAGE)
