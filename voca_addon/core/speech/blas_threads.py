"""Set the thread count of numpy's OpenBLAS for a block of code, and restore it (threadpoolctl's idea, stdlib only).

The batched recurrence (:mod:`.deepspeech_batch`) runs its two LSTM directions in two Python threads, each
with a single-threaded BLAS, instead of one direction after the other with OpenBLAS's own two threads: a
small-``m`` GEMM spends most of its time copying the weights (OpenBLAS's packing), and OpenBLAS's threads
meet at a barrier every call, which a busy machine makes them wait at (docs/batch.md has the figures).

The library is found among the files this process has mapped (``/proc/self/maps``, Linux) by its name
(``openblas``) and its ``openblas_set_num_threads`` symbol, with or without the ``64_`` suffix of
numpy's 64-bit-integer builds. Where it is not found (another OS, another BLAS) :func:`limited` yields
False and changes nothing; callers then keep their single-threaded plan.

Contract: stdlib only (ctypes); process-wide while any block runs (every numpy product in the process);
thread-safe.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Iterator, Optional, Tuple

_SUFFIXES = ("64_", "")
_LOCK = threading.Lock()
_FOUND: list = []


def _mapped_openblas() -> list:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def _functions() -> Optional[Tuple[object, object]]:
    """(set, get) of numpy's OpenBLAS, or None."""
    with _LOCK:
        if not _FOUND:
            import numpy                                    # noqa: F401  (its OpenBLAS is then mapped)
            found = None
            for path in _mapped_openblas():
                if "numpy" not in path:                     # scipy's copy does not run numpy's products
                    continue
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for suffix in _SUFFIXES:
                    setter = getattr(lib, "openblas_set_num_threads" + suffix, None)
                    getter = getattr(lib, "openblas_get_num_threads" + suffix, None)
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        found = (setter, getter)
                        break
                if found:
                    break
            _FOUND.append(found)
        return _FOUND[0]


_USERS = {"count": 0, "before": None}


@contextlib.contextmanager
def limited(threads: int) -> Iterator[bool]:
    """Run the block with numpy's OpenBLAS on ``threads`` threads; yields whether that could be set.

    Concurrent blocks (several batch groups in one Dask worker) share the setting: the first sets it, the
    last one out restores the count found before the first."""
    funcs = _functions()
    if funcs is None:
        yield False
        return
    setter, getter = funcs
    with _LOCK:
        if _USERS["count"] == 0:
            _USERS["before"] = getter()
        _USERS["count"] += 1
        setter(threads)
    try:
        yield True
    finally:
        with _LOCK:
            _USERS["count"] -= 1
            if _USERS["count"] == 0:
                setter(_USERS["before"])
