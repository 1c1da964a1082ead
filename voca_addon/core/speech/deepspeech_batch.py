"""DeepSpeech 0.1.0 logits for several clips at once: one read of the recurrent weights per step serves them all.

The single-clip network (:mod:`.deepspeech`) spends its time in the LSTM recurrence, where each step
multiplies one state vector ``h_{t-1}`` [n_cell] by the recurrent kernel ``K_h`` [n_cell, 4·n_cell]
(64 MiB at full size): the step is bound by reading ``K_h`` from memory, and the arithmetic units idle.
Here ``B`` clips share each step: the states of all clips still running form ``H_{t-1}`` [m, n_cell] and
one product ``H_{t-1} · K_h`` reads ``K_h`` once for all ``m`` of them.

Steps (the names of :func:`logits_batch`):

1. *Dense layers* — per clip, three clipped-ReLU layers as one GEMM each over the clip's steps (these
   are compute-bound; per clip they sum in exactly the order of a one-clip run).
2. *Gate inputs* — per clip and direction, ``Z_in = X · K_x + b`` (forget bias added), written into a
   step-aligned array.
3. *Aligned recurrence* — clips sorted longest first, so at step ``k`` the running clips are a prefix
   ``0..m_k-1`` (``m_k = #{b : T_b > k}``): a clip that has finished simply drops off the end. Forward,
   step ``k`` is time ``k`` of every clip; backward, it is time ``T_b − 1 − k`` of clip ``b`` (each clip's
   backward pass starts at its own last step, as in a one-clip run). The cell (TF BasicLSTMCell, gates
   ``i, j, f, o``)::

       z = h_{t-1} · K_h + z_in[t];   c_t = c_{t-1} ⊙ σ(f) + σ(i) ⊙ tanh(j);   h_t = tanh(c_t) ⊙ σ(o)

4. *Output layers* — per clip, ``[h_fw, h_bw]`` → clipped ReLU → linear.

No padding step ever enters a clip's state, so each clip's logits are those of a one-clip run up to the
summation order of the recurrent product (a [m, n] GEMM instead of a vector product: float32 rounding,
measured ≤ 4.5e-7 relative on real speech at full size; steps with fewer than :data:`GEMM_MIN_CLIPS`
running clips use the one-clip product, so a batch of one is bit-identical).

Memory: the aligned gate inputs take ``T_max · B · 4·n_cell · 4`` bytes (one direction at a time; 16
clips of 5.6 s at full size: 150 MB), plus every clip's layer-3 activations and states.

Contract: numpy only; float32 arithmetic like :mod:`.deepspeech`, whose model type it takes. Any thread.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from .deepspeech import FORGET_BIAS, NUM_INPUT, DeepSpeechModel, _dense_clip, _sigmoid

DIRECTIONS = ("fw", "bw")
# Below this many running clips a step uses one matrix-vector product per clip instead of one GEMM: OpenBLAS
# pays a fixed ≈ 12 ms for a [m × 2048]·[2048 × 8192] GEMM with small m, ≈ 5 products' worth (measured on the
# project's 2-core machine; tools/bench_batch.py, docs/batch.md).
GEMM_MIN_CLIPS = 5


def _check_inputs(inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    clips = [np.asarray(x, np.float32) for x in inputs]
    if not clips:
        raise InputError("logits_batch needs at least one clip")
    for b, x in enumerate(clips):
        if x.ndim != 2 or x.shape[1] != NUM_INPUT or len(x) == 0:
            raise InputError(f"DeepSpeech inputs of clip {b} must be [steps ≥ 1, {NUM_INPUT}], got {x.shape}")
    return clips


def _dense_inputs(model: DeepSpeechModel, x: np.ndarray) -> np.ndarray:
    """Layers 1–3 of one clip: three clipped-ReLU dense layers, [T, 494] → [T, n_hidden]."""
    p = model.params
    return _dense_clip(_dense_clip(_dense_clip(x, p["h1"], p["b1"]), p["h2"], p["b2"]), p["h3"], p["b3"])


def _aligned_gate_inputs(model: DeepSpeechModel, l3: Sequence[np.ndarray], order: np.ndarray,
                         direction: str) -> np.ndarray:
    """Gate inputs ``z_in = l3 · K_x + b`` of every clip, step-aligned: [T_max, B, 4n] (order: longest first).

    Row ``[k, j]`` is the input of step ``k`` of clip ``order[j]``: its time ``k`` (fw) or ``T − 1 − k``
    (bw); rows past a clip's end are left unset (never read).
    """
    k_x, _, bias = model.lstm(direction)
    n = model.n_cell
    t_max = max(len(x) for x in l3)
    aligned = np.empty((t_max, len(order), 4 * n), np.float32)
    for j, b in enumerate(order):
        z_in = l3[b] @ k_x                                                  # [T_b, 4n]
        z_in += bias
        z_in[:, 2 * n:3 * n] += np.float32(FORGET_BIAS)
        aligned[:len(z_in), j] = z_in if direction == "fw" else z_in[::-1]
    return aligned


def _recurrence(k_h: np.ndarray, aligned: np.ndarray, running: np.ndarray, n_cell: int,
                progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """Run the LSTM cell over aligned gate inputs [T_max, B, 4n]; returns h in the same layout [T_max, B, n].

    ``running[k]`` is the number of clips (a prefix) still running at step ``k``.
    """
    n = n_cell
    t_max, batch = aligned.shape[:2]
    h = np.zeros((batch, n), np.float32)
    c = np.zeros((batch, n), np.float32)
    z = np.empty((batch, 4 * n), np.float32)
    out = np.empty((t_max, batch, n), np.float32)
    for k in range(t_max):
        m = int(running[k])
        zk = z[:m]
        if m >= GEMM_MIN_CLIPS:
            np.dot(h[:m], k_h, out=zk)                                      # one read of K_h for m clips
        else:
            for b in range(m):                                              # few clips: products are cheaper
                np.dot(h[b], k_h, out=zk[b])
        zk += aligned[k, :m]
        i, j, f, o = zk[:, :n], zk[:, n:2 * n], zk[:, 2 * n:3 * n], zk[:, 3 * n:]
        c[:m] = c[:m] * _sigmoid(f) + _sigmoid(i) * np.tanh(j)              # c_t
        h[:m] = np.tanh(c[:m]) * _sigmoid(o)                                # h_t
        out[k, :m] = h[:m]
        if progress is not None:
            progress(k)
    return out


def _unalign(aligned_h: np.ndarray, lengths: np.ndarray, order: np.ndarray, direction: str) -> list:
    """Inverse of :func:`_aligned_gate_inputs` for the states: [T_max, B, n] → per clip [T_b, n]."""
    out: list = [None] * len(order)
    for j, b in enumerate(order):
        rows = aligned_h[:lengths[b], j]
        out[b] = rows if direction == "fw" else rows[::-1]
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
    lengths = np.array([len(x) for x in clips])
    order = np.argsort(-lengths, kind="stable")                          # longest first: running = prefix
    running = (lengths[order][None, :] > np.arange(lengths.max())[:, None]).sum(axis=1)
    p, n = model.params, model.n_cell
    l3 = [_dense_inputs(model, x) for x in clips]                        # [T_b, n_hidden] each
    total_steps = 2 * int(lengths.max())
    states = []
    for d, direction in enumerate(DIRECTIONS):
        aligned = _aligned_gate_inputs(model, l3, order, direction)
        hook = None if progress is None else (
            lambda k, d=d: progress((d * total_steps // 2 + k + 1) / total_steps))
        h = _recurrence(model.lstm(direction)[1], aligned, running, n, hook)
        del aligned
        states.append(_unalign(h, lengths, order, direction))
    out = []
    for h_fw, h_bw in zip(*states):
        l5 = _dense_clip(np.concatenate([h_fw, h_bw], axis=1), p["h5"], p["b5"])
        y = l5 @ p["h6"]
        y += p["b6"]
        out.append(y)
    return out
