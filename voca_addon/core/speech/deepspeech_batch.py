"""DeepSpeech 0.1.0 logits for several clips at once: one read of the recurrent weights per step serves them all.

The single-clip network (:mod:`.deepspeech`) spends its time in the LSTM recurrence, where each step
multiplies one state vector ``h_{t-1}`` [n_cell] by the recurrent kernel ``K_h`` [n_cell, 4·n_cell]
(64 MiB at full size): the step is bound by reading ``K_h`` from memory, and the arithmetic units idle.
Here ``B`` clips share each step: the states of all clips still running form ``H_{t-1}`` [m, n_cell] and
one product ``H_{t-1} · K_h`` reads ``K_h`` once for all ``m`` of them.

Layout. The gate inputs and states of all clips are concatenated, clip after clip ([ΣT_b, ·]: one-clip
runs side by side). Clips are sorted longest first, so at step ``k`` the running clips are a prefix
``0..m_k-1`` (``m_k = #{b : T_b > k}``): a clip that has finished drops off the end. Per direction, the
*packed step order* lists, step after step, the rows of the running clips (forward: time ``k`` of
each clip; backward: time ``T_b − 1 − k``, so each clip's backward pass starts at its own last step, as in
a one-clip run) — PyTorch's ``PackedSequence`` idea: no padding row is ever computed.

Steps (the names of :func:`logits_batch`):

1. *Dense layers* — per clip, three clipped-ReLU layers, one GEMM each over the clip's rows.
2. *Gate inputs* — per clip and direction, ``Z_in = X₃ · K_x + b`` (forget bias added), one GEMM.
3. *Recurrence* — the two directions at once, in two threads with a single-threaded BLAS each
   (``threadpoolctl``; for one clip, where it is not installed or finds no BLAS, or while another call
   holds the limit, one after the other:
   a lone matrix-vector product per step is faster with OpenBLAS's two threads, 1.84 against 2.28 ms
   measured); per step,
   ``z = H_{t-1} · K_h + Z_in[rows of step k]`` and the cell (TF BasicLSTMCell, gates ``i, j, f, o``)::

       c_t = c_{t-1} ⊙ σ(f) + σ(i) ⊙ tanh(j);   h_t = tanh(c_t) ⊙ σ(o)

   with each ``h_t`` put back at its clip's row.
4. *Output layers* — per clip, ``[h_fw, h_bw]`` → clipped ReLU → linear.

The dense layers stay per clip, each GEMM over exactly the rows of the clip's one-clip run: OpenBLAS's
result for a row depends on how many rows the product has, so one GEMM over all clips' rows would not give
one-clip numbers (measured with the saturating test weights: 1.4e-4 relative on layer 3, 1.7e-4 on the
logits). Each clip's logits are those of a one-clip run up to the summation order of the shared recurrent
product (float32 rounding; measured ≤ 4.5e-7 relative on real speech at full size; steps with fewer than
:data:`GEMM_MIN_CLIPS` running clips use the one-clip product, so groups of fewer clips are bit-identical).

Why not one GEMM for every step: OpenBLAS copies ("packs") its operand before a GEMM, so
``[m × 2048]·[2048 × 8192]`` with a small ``m`` costs a fixed 4–7 ms (≈ 0.4 ns per element of ``K_h``,
whether ``K_h`` is in cache or not, any layout or transpose flag) against 1.1–2 ms for one clip's
matrix-vector product, which reads ``K_h`` without copying it (measurements: docs/batch.md).

The dense layers and gate inputs run before the threads, with the usual BLAS threads: a GEMM's rounding
depends on its thread count too (measured: single-threaded gate inputs put the saturating test 1.1e-5
relative off).

Memory: the gate inputs of both directions, ``2 · ΣT_b · 4·n_cell · 4`` bytes (64 kB per step at full
size: 16 clips of 4 s, 212 MB), plus every clip's layer-3 activations and both directions' states (8 kB
per step each).

Contract: numpy (+ ``threadpoolctl`` where installed, imported lazily); float32 arithmetic like
:mod:`.deepspeech`, whose model type it takes. Any thread. While one call's recurrence runs its two
directions at once, numpy's BLAS is single-threaded process-wide (other threads' BLAS calls too); one call
at a time does so (:data:`.blas.LIMIT`, shared with the one-clip recurrence's lent core): a concurrent call
runs its directions in turn and leaves the limit alone, so the count is restored exactly when the limiting
call ends.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from . import blas as blas_threads
from .deepspeech import (FORGET_BIAS, NUM_INPUT, DeepSpeechModel, _dense_123, _output_layers,
                         _sigmoid)

DIRECTIONS = ("fw", "bw")
# Below this many running clips a step uses one matrix-vector product per clip instead of one GEMM:
# OpenBLAS's GEMM costs a fixed ≈ 4–7 ms for a [m × 2048]·[2048 × 8192] product with small m, 3–5 products'
# worth (measured on the project's 2-core machine: docs/batch.md).
GEMM_MIN_CLIPS = 5


def _check_inputs(inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    clips = [np.asarray(x, np.float32) for x in inputs]
    if not clips:
        raise InputError("logits_batch needs at least one clip")
    for b, x in enumerate(clips):
        if x.ndim != 2 or x.shape[1] != NUM_INPUT or len(x) == 0:
            raise InputError(f"DeepSpeech inputs of clip {b} must be [steps ≥ 1, {NUM_INPUT}], got {x.shape}")
    return clips


class Schedule:
    """Which rows every step of the shared recurrence reads, per direction.

    Attributes
    ----------
    lengths : int [B]          steps of each clip (input order)
    starts : int [B]           first row of each clip in the concatenated layout
    running : int [T_max]      clips still running at step k (a prefix of the longest-first order)
    offsets : int [T_max + 1]  step k's rows are ``rows[d][offsets[k]:offsets[k + 1]]``
    rows : dict                direction → int [ΣT_b]: rows in packed step order
    """

    def __init__(self, lengths: Sequence[int]):
        self.lengths = np.asarray(lengths, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        order = np.argsort(-self.lengths, kind="stable")                 # longest first: running = prefix
        steps = np.arange(self.lengths.max())[:, None]                   # [T_max, 1]
        ends = self.lengths[order][None, :]                              # [1, B]
        live = steps < ends                                              # [T_max, B], prefix per row
        self.running = live.sum(axis=1)
        self.offsets = np.concatenate([[0], np.cumsum(self.running)])
        start = self.starts[order][None, :]
        self.rows = {"fw": (start + steps)[live], "bw": (start + ends - 1 - steps)[live]}

    @property
    def t_max(self) -> int:
        return len(self.running)


def _step_product(h: np.ndarray, k_h: np.ndarray, z: np.ndarray, m: int) -> None:
    """``z[:m] = h[:m] · K_h``: one GEMM (one read of K_h) or, for few clips, one product per clip."""
    if m >= GEMM_MIN_CLIPS:
        np.dot(h[:m], k_h, out=z[:m])
    else:
        for b in range(m):
            np.dot(h[b], k_h, out=z[b])


def _gate_inputs(model: DeepSpeechModel, direction: str, l3: Sequence[np.ndarray]) -> np.ndarray:
    """``z_in = X₃ · K_x + b`` (forget bias added) of every clip, clip after clip: [ΣT, 4·n_cell].

    One GEMM per clip, over exactly the rows of its one-clip run (:func:`.deepspeech._lstm_inputs`'s
    operations), written in place: OpenBLAS's result for a row depends on how many rows the product has,
    so a GEMM over all clips' rows would not give one-clip numbers.
    """
    k_x, _, bias = model.lstm(direction)
    n = model.n_cell
    z_in = np.empty((sum(len(x) for x in l3), 4 * n), np.float32)
    start = 0
    for x in l3:
        rows = z_in[start:start + len(x)]
        np.matmul(x, k_x, out=rows)
        rows += bias
        rows[:, 2 * n:3 * n] += np.float32(FORGET_BIAS)
        start += len(x)
    return z_in


def _recurrence(model: DeepSpeechModel, direction: str, z_in: np.ndarray, plan: Schedule,
                progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """One LSTM direction for every clip; returns h in the clip-after-clip layout [ΣT, n]."""
    n = model.n_cell
    k_h = model.lstm(direction)[1]
    rows, offsets, running = plan.rows[direction], plan.offsets, plan.running
    batch = int(running[0])
    h = np.zeros((batch, n), np.float32)
    c = np.zeros((batch, n), np.float32)
    z = np.empty((batch, 4 * n), np.float32)
    out = np.empty((len(z_in), n), np.float32)
    for k in range(plan.t_max):
        m = int(running[k])
        step_rows = rows[offsets[k]:offsets[k + 1]]
        _step_product(h, k_h, z, m)
        zk = z[:m]
        zk += z_in[step_rows]
        i, j, f, o = zk[:, :n], zk[:, n:2 * n], zk[:, 2 * n:3 * n], zk[:, 3 * n:]
        c[:m] = c[:m] * _sigmoid(f) + _sigmoid(i) * np.tanh(j)              # c_t
        h[:m] = np.tanh(c[:m]) * _sigmoid(o)                                # h_t
        out[step_rows] = h[:m]
        if progress is not None:
            progress(k)
    return out


def logits_batch(model: DeepSpeechModel, inputs: Sequence[np.ndarray],
                 progress: Optional[Callable[[float], None]] = None) -> List[np.ndarray]:
    """Raw logits of the acoustic model for several clips, the recurrence shared step by step.

    Parameters
    ----------
    model : DeepSpeechModel
    inputs : sequence of float32 [T_b, 494]
        Each clip's normalised MFCC windows (:func:`voca_addon.core.speech.features.deepspeech_input`);
        lengths may differ.
    progress : callable(fraction) or None
        Called after every recurrence step with the fraction done (0..1); raising from it cancels.

    Returns
    -------
    list of float32 [T_b, 29]
        In the order of ``inputs``; each equals :func:`.deepspeech.logits` of that clip alone
        (to float32 rounding).
    """
    clips = _check_inputs(inputs)
    plan = Schedule([len(x) for x in clips])
    l3 = [_dense_123(model, x) for x in clips]                            # [T_b, n_l3] each
    z_in = {d: _gate_inputs(model, d, l3) for d in DIRECTIONS}           # with the usual BLAS threads:
    del l3                                                               # the GEMMs' rounding depends on them
    hook = _Progress(progress, 2 * plan.t_max)

    def direction(name: str) -> list:
        return np.split(_recurrence(model, name, z_in.pop(name), plan, hook.step), plan.starts[1:])

    blas = blas_threads.controller() if len(clips) > 1 else None
    if blas is None or not blas_threads.LIMIT.acquire(blocking=False):
        # one clip, the BLAS's threads cannot be set, or another call holds the process-wide limit
        states = {d: direction(d) for d in DIRECTIONS}
    else:                                            # both directions at once, one BLAS thread each
        try:
            with blas.limit(limits=1), ThreadPoolExecutor(len(DIRECTIONS), thread_name_prefix="voca-lstm") as pool:
                states = dict(zip(DIRECTIONS, pool.map(direction, DIRECTIONS)))
        finally:
            blas_threads.LIMIT.release()
    return [_output_layers(model, h_fw, h_bw) for h_fw, h_bw in zip(states["fw"], states["bw"])]


class _Progress:
    """Steps done over both directions (two threads) → ``progress(fraction)``, in order; a raise from it
    stops both directions (the other one raises at its next step)."""

    def __init__(self, progress: Optional[Callable[[float], None]], total: int):
        self.progress, self.total, self.done = progress, total, 0
        self.lock, self.stopped = threading.Lock(), None

    def step(self, _k: int) -> None:
        with self.lock:
            if self.stopped is not None:
                raise self.stopped
            self.done += 1
            if self.progress is not None:
                try:
                    self.progress(self.done / self.total)
                except BaseException as exc:
                    self.stopped = exc
                    raise
