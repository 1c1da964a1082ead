"""Where the project keeps what it can compute again: the converted model files and the phone tracks.

:func:`cache_dir` — ``$VOCA_CACHE_DIR``, else ``$XDG_CACHE_HOME/voca_addon``, else ``~/.cache/voca_addon``.
Everything below it may be deleted at any time; it is rebuilt on the next run.

Contract: stdlib only.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    env = os.environ.get("VOCA_CACHE_DIR")
    if env:
        return Path(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "voca_addon"
