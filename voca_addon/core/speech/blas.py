"""numpy's BLAS threads while the engine shares the machine: one process-wide limit, taken by one call.

Two users:

* :mod:`.deepspeech_batch` runs a batch's two LSTM directions in two threads with a one-thread BLAS each.
* :mod:`.deepspeech`'s recurrence gives up a core while a child process computes beside it: the phone pass
  (:func:`voca_addon.core.phonemes.phones_beside`) holds :func:`core_lent` while its decoding child runs.
  OpenBLAS's threads spin on the core the child needs, and both crawl (measured on 2 cores, 60 s of speech:
  36.6 s for ``animate`` with the pass beside it against 14.3 s without; engine + pass alone are 26 + 20 s
  of CPU: docs/phonemes.md). While a core is lent each recurrence step's matrix-vector product
  ``h · K_h`` runs on (threads − lent) BLAS threads, and the count is given back as soon as the child ends.

Only that product is limited, and only where it is bit-identical for both thread counts: a GEMM's rounding
depends on its thread count (docs/batch.md), a matrix-vector product's need not (OpenBLAS gives each
thread whole output elements). :func:`same_result` checks it on the very kernel, once per process and
thread count, before any limit is used; where it differs the threads are left alone. So VOCA's keys of a run
with closures stay those of the same run without them, bit for bit ("the exact result one switch away").

The limit is process-wide (every thread's BLAS calls), so one holder at a time (:data:`LIMIT`): a call
that cannot take it at once leaves the threads alone.

Contract: numpy + stdlib; ``threadpoolctl`` where installed (imported lazily; the extension zips bundle it
for Blender's Python, requirements-dev.txt for the command line; without it nothing is limited). Any thread.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

# Held by the one caller whose limit is set. The limit is the process's, not the thread's: a second
# caller that set it too would save the first's limit as the original and restore that after the first had
# restored the real count, leaving the process single-threaded.
LIMIT = threading.Lock()

_state = threading.Lock()
_lent = 0                     # cores lent to child processes now (core_lent)
_controller = []              # [threadpoolctl's BLAS controller or None], found once
_same = {}                    # (kernel shape, dtype, threads, limited) → bool: same_result's verdicts


@contextmanager
def core_lent():
    """While this holds, a child process computes beside the engine on one core."""
    global _lent
    with _state:
        _lent += 1
    try:
        yield
    finally:
        with _state:
            _lent -= 1


def cores_lent() -> int:
    """Cores lent now (0: none)."""
    return _lent


def controller():
    """threadpoolctl's controller of the process's BLAS libraries, or None: threadpoolctl not installed
    (a Python without the extension's wheels), or no BLAS whose threads it can set. Found once per process."""
    with _state:
        if not _controller:
            _controller.append(_find_controller())
        return _controller[0]


def _find_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def threads(blas) -> int:
    """The BLAS's thread count now (the largest of its libraries')."""
    return max(lib.get_num_threads() for lib in blas.lib_controllers)


def same_result(blas, kernel: np.ndarray, full: int, limited: int) -> bool:
    """Whether ``h · kernel`` is bit-identical with ``full`` (the count now) and ``limited`` BLAS threads (three
    random states; the count restored after). Checked once per process, kernel shape and thread counts."""
    key = (kernel.shape, kernel.dtype.str, full, limited)
    if key not in _same:
        states = np.random.default_rng(0).standard_normal((3, kernel.shape[0])).astype(kernel.dtype)
        out_full = [np.dot(h, kernel) for h in states]
        with blas.limit(limits=limited):
            out_limited = [np.dot(h, kernel) for h in states]
        _same[key] = all(np.array_equal(a, b) for a, b in zip(out_limited, out_full))
    return _same[key]


class StepThreads:
    """The BLAS threads of one block of recurrence steps: :meth:`check` every few steps lowers them by the
    cores lent while a child runs (where :func:`same_result` holds) and raises them back when it ends;
    :meth:`close` restores the count. Takes :data:`LIMIT` only while it has lowered the count."""

    def __init__(self, kernel: np.ndarray):
        self.kernel = kernel
        self.limiter = None           # threadpoolctl's limiter while the count is lowered

    def check(self) -> None:
        lent = _lent
        if lent and self.limiter is None:
            self._lower(lent)
        elif not lent and self.limiter is not None:
            self.close()

    def _lower(self, lent: int) -> None:
        blas = controller()
        if blas is None or not LIMIT.acquire(blocking=False):
            return
        full = threads(blas)
        limited = max(1, full - lent)
        if limited == full or not same_result(blas, self.kernel, full, limited):
            LIMIT.release()
            return
        self.limiter = blas.limit(limits=limited)

    def close(self) -> None:
        if self.limiter is None:
            return
        try:
            self.limiter.restore_original_limits()
        finally:
            self.limiter = None
            LIMIT.release()
