"""Where numba keeps compiled code for the numba libraries we run (umap-learn, pynndescent, fast_hdbscan).

numba compiles on first use: about a minute for UMAP, ~80 s for fast_hdbscan. With its cache in a
persistent folder only the first process on a machine pays; without one, numba writes next to the
installed package (often read-only). ``NUMBA_CACHE_DIR`` decides, default ``.cache/numba``; it must
be set before numba is imported, so every module that loads a numba library calls this first.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_NUMBA_CACHE_DIR = Path(".cache") / "numba"


def numba_cache_dir() -> Path:
    """Set ``NUMBA_CACHE_DIR`` to the default unless the user set it; return the folder in use."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(DEFAULT_NUMBA_CACHE_DIR.resolve()))
    return Path(os.environ["NUMBA_CACHE_DIR"])
