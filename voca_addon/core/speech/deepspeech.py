"""DeepSpeech v0.1.0's acoustic network (as VOCA uses it) in numpy: inputs [T, 494] → logits [T, 29].

Per step: three clipped-ReLU dense layers, a bidirectional LSTM (TF BasicLSTMCell, gate order
i, j, f, o, forget bias +1.0 added at run time), a clipped-ReLU dense layer and a linear output
layer. See ``../shared/docs/deepspeech-0.1.0.md`` and ``docs/engine.md``.

Speed: everything but the LSTM recurrence is one matrix product over all steps. The recurrence is
the only sequential part: per step and direction one [1, n_cell] · [n_cell, 4·n_cell] product, whose
cost is reading the recurrent kernel (64 MiB at full size) from memory.

Memory (``logits_streamed``): the steps are processed in blocks of ``chunk`` steps, so nothing of size
[T, n_hidden] or [T, 4·n_cell] exists at once. The forward direction runs first, block by block, carrying
its state (h, c) across blocks, and parks its outputs h_fw (float32 [T, n_cell], 8 kB per step at full
size) in an anonymous temporary file when there is more than one block. The backward direction then runs
from the last block to the first, recomputing the three dense layers of each block, and combines each
block with its h_fw into layers 5 and 6. In RAM at any time: one block's activations (~60 MB at 1024
steps, full size) and the [T, 29] logits. Same operations as the whole-array path, so the same numbers.

Contract: numpy + stdlib (tempfile); float32 arithmetic like TensorFlow. Widths are read from the tensors, so
small-width graphs of the same structure (used by the tests) run through the same code.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np

from ..errors import InputError, ModelFileError
from .blas import StepThreads

NUM_INPUT = 494            # 26 MFCC × (1 + 2·9 context frames)
NUM_CLASSES = 29           # space, a–z, apostrophe, CTC blank
RELU_CLIP = 20.0           # DeepSpeech 0.1.0 --relu_clip default
FORGET_BIAS = 1.0          # BasicLSTMCell(forget_bias=1.0), added at run time
DENSE = ("h1", "b1", "h2", "b2", "h3", "b3", "h5", "b5", "h6", "b6")
LSTM = "bidirectional_rnn/{}/basic_lstm_cell/{}"
RELEASE_URL = "https://github.com/mozilla/DeepSpeech/releases/tag/v0.1.0"
# Tensor names that only newer DeepSpeech graphs (0.2 and later) contain.
NEWER_MARKERS = ("lstm_fused_cell", "cudnn_lstm", "previous_state_c", "input_samples")
CHUNK_STEPS = 1024         # steps per block in logits_streamed (20 s of speech)
THREAD_CHECK_STEPS = 25    # the recurrence looks whether a core is lent every 25 steps (0.5 s of speech)


def tensor_names() -> list:
    """The 14 weight tensors of the 0.1.0 acoustic model."""
    lstm = [LSTM.format(d, p) for d in ("fw", "bw") for p in ("kernel", "bias")]
    return list(DENSE) + lstm


@dataclass(frozen=True)
class DeepSpeechModel:
    """DeepSpeech 0.1.0 weights, float32, C-contiguous.

    ``lstm_x[d]`` is the input part of direction d's kernel [2·n_hidden, 4·n_cell], ``lstm_h[d]``
    its recurrent part [n_cell, 4·n_cell], ``lstm_b[d]`` its bias [4·n_cell] (d = 0 fw, 1 bw).
    """
    params: Mapping[str, np.ndarray]
    n_cell: int

    def lstm(self, direction: str):
        k = self.params[LSTM.format(direction, "kernel")]
        n_in = k.shape[0] - self.n_cell
        return k[:n_in], k[n_in:], self.params[LSTM.format(direction, "bias")]


def refuse_newer_graph(node_names, source: str = "the DeepSpeech graph") -> None:
    """Raise a clear ModelFileError when the graph is not the 0.1.0 acoustic model."""
    names = set(node_names)
    missing = [n for n in tensor_names() if n not in names]
    if not missing:
        return
    newer = sorted(n for n in names if any(m in n for m in NEWER_MARKERS))
    what = (f"it looks like a newer DeepSpeech graph (it has '{newer[0]}'); VOCA needs v0.1.0"
            if newer else f"it lacks the 0.1.0 tensor '{missing[0]}'")
    raise ModelFileError(
        f"{source} is not DeepSpeech v0.1.0's output_graph.pb: {what}. Download "
        f"deepspeech-0.1.0-models.tar.gz from {RELEASE_URL} and use models/output_graph.pb "
        "(graphs of 0.2 and later are different networks and do not work with VOCA).")


def model_from_tensors(tensors: Mapping[str, np.ndarray], source: str = "the DeepSpeech graph") -> DeepSpeechModel:
    """Validate shapes and build a :class:`DeepSpeechModel` (copies only what is not float32-contiguous)."""
    refuse_newer_graph(tensors.keys(), source)
    p = {n: np.ascontiguousarray(tensors[n], dtype=np.float32) for n in tensor_names()}
    n_h = p["h1"].shape[1] if p["h1"].ndim == 2 else -1
    n_cell = p[LSTM.format("fw", "bias")].shape[0] // 4
    expect = {"h1": (NUM_INPUT, n_h), "b1": (n_h,), "h2": (n_h, n_h), "b2": (n_h,),
              "h3": (n_h, p["b3"].shape[0]), "b3": p["b3"].shape,
              "h5": (2 * n_cell, p["b5"].shape[0]), "b5": p["b5"].shape,
              "h6": (p["b5"].shape[0], NUM_CLASSES), "b6": (NUM_CLASSES,)}
    n_l3 = p["b3"].shape[0]
    for d in ("fw", "bw"):
        expect[LSTM.format(d, "kernel")] = (n_l3 + n_cell, 4 * n_cell)
        expect[LSTM.format(d, "bias")] = (4 * n_cell,)
    for name, shape in expect.items():
        if p[name].shape != tuple(shape):
            raise ModelFileError(
                f"{source}: tensor '{name}' has shape {list(p[name].shape)}, expected {list(shape)} "
                f"for DeepSpeech v0.1.0 (download it from {RELEASE_URL})")
    return DeepSpeechModel(p, n_cell)


def _dense_clip(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    y = x @ w
    y += b
    return np.clip(y, 0.0, RELU_CLIP, out=y)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):          # exp(-x) → inf gives the right limit, 0
        return 1.0 / (1.0 + np.exp(-x))


def _lstm_block(kh: np.ndarray, z_in: np.ndarray, state: tuple, reverse: bool,
                progress: Optional[Callable[[int], None]] = None) -> tuple:
    """The recurrence of one LSTM direction over a block of steps.

    Parameters
    ----------
    kh : float32 [n, 4n]
        Recurrent kernel.
    z_in : float32 [S, 4n]
        Input contributions ``x · kx + b`` (forget bias included) of the block's steps.
    state : (h, c), float32 [n] each
        State before the block's first step in processing order.
    reverse : bool
        Process the block from its last step to its first (the backward direction).

    Returns
    -------
    (out float32 [S, n], (h, c) after the block's last processed step)
    """
    n = kh.shape[0]
    h, c = state
    out = np.empty((len(z_in), n), np.float32)
    z = np.empty(4 * n, np.float32)
    steps = range(len(z_in) - 1, -1, -1) if reverse else range(len(z_in))
    threads = StepThreads(kh)                     # a core lent to the phone child: one BLAS thread fewer
    try:
        for k, t in enumerate(steps):
            if k % THREAD_CHECK_STEPS == 0:
                threads.check()
            np.dot(h, kh, out=z)                                            # the sequential floor
            z += z_in[t]
            i, j, f, o = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
            c = c * _sigmoid(f) + _sigmoid(i) * np.tanh(j)
            h = np.tanh(c) * _sigmoid(o)
            out[t] = h
            if progress is not None:
                progress(k)
    finally:
        threads.close()
    return out, (h, c)


def _lstm_inputs(model: DeepSpeechModel, direction: str, l3: np.ndarray) -> np.ndarray:
    """``l3 · kx + b`` with the forget bias added: float32 [S, 4·n_cell] (one GEMM)."""
    kx, _, b = model.lstm(direction)
    n = model.n_cell
    z_in = l3 @ kx
    z_in += b
    z_in[:, 2 * n:3 * n] += np.float32(FORGET_BIAS)
    return z_in


def _dense_123(model: DeepSpeechModel, x: np.ndarray) -> np.ndarray:
    """Layers 1-3 (clipped ReLU) of a block of inputs [S, 494] → float32 [S, n_l3]."""
    p = model.params
    return _dense_clip(_dense_clip(_dense_clip(x, p["h1"], p["b1"]), p["h2"], p["b2"]), p["h3"], p["b3"])


def _output_layers(model: DeepSpeechModel, h_fw: np.ndarray, h_bw: np.ndarray) -> np.ndarray:
    """Layers 5 (clipped ReLU over [h_fw, h_bw]) and 6 (linear): float32 [S, 29]."""
    p = model.params
    l5 = _dense_clip(np.concatenate([h_fw, h_bw], axis=1), p["h5"], p["b5"])
    out = l5 @ p["h6"]
    out += p["b6"]
    return out


class _Parked:
    """Forward outputs kept until the backward pass reaches their block: in RAM for one block, else
    in an anonymous temporary file (removed by the OS when closed, also after a crash)."""

    def __init__(self, blocks: int):
        self._ram = {} if blocks <= 1 else None
        self._file = None if blocks <= 1 else tempfile.TemporaryFile(prefix="voca-ds-")
        self._where = {}

    def put(self, key: int, block: np.ndarray) -> None:
        if self._file is None:
            self._ram[key] = block
            return
        self._where[key] = (self._file.tell(), block.shape)
        self._file.write(np.ascontiguousarray(block, np.float32).tobytes())

    def take(self, key: int) -> np.ndarray:
        if self._file is None:
            return self._ram.pop(key)
        offset, shape = self._where.pop(key)
        self._file.seek(offset)
        out = np.empty(shape, np.float32)
        self._file.readinto(memoryview(out).cast("B"))
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def logits_streamed(model: DeepSpeechModel, rows: Callable[[int, int], np.ndarray], num_steps: int,
                    chunk: int = CHUNK_STEPS, progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Raw logits of the acoustic model, reading the inputs block by block (bounded memory).

    Parameters
    ----------
    rows : callable(start, stop) -> float32 [stop - start, 494]
        Rows of the normalised input (e.g. :meth:`~voca_addon.core.speech.features.DeepSpeechInput.rows`);
        each block but the last is asked for twice (forward, then backward pass).
    num_steps : int
        T ≥ 1.
    chunk : int
        Steps per block; changes memory, not the result.
    progress : callable(fraction) or None
        Called after every recurrence step with the fraction done (0..1); raising from it stops the run.

    Returns
    -------
    np.ndarray
        float32 [T, 29].
    """
    if num_steps < 1 or chunk < 1:
        raise InputError(f"DeepSpeech needs at least one step and chunk ≥ 1, got {num_steps}, {chunk}")
    bounds = [(a, min(a + chunk, num_steps)) for a in range(0, num_steps, chunk)]
    _, kh_fw, _ = model.lstm("fw")
    _, kh_bw, _ = model.lstm("bw")
    zeros = (np.zeros(model.n_cell, np.float32), np.zeros(model.n_cell, np.float32))
    parked, out = _Parked(len(bounds)), np.empty((num_steps, NUM_CLASSES), np.float32)
    done = [0]

    def hook(k):
        done[0] += 1
        if progress is not None:
            progress(done[0] / (2 * num_steps))
    try:
        state = zeros
        for key, (a, b) in enumerate(bounds):                               # forward: first → last
            l3 = _dense_123(model, _checked_rows(rows(a, b), b - a))
            h_fw, state = _lstm_block(kh_fw, _lstm_inputs(model, "fw", l3), state, False, hook)
            parked.put(key, h_fw)
        release_pages(model.params[LSTM.format("fw", "kernel")])    # not read again in this call
        state = zeros
        for key in range(len(bounds) - 1, -1, -1):                         # backward: last → first
            a, b = bounds[key]
            if key != len(bounds) - 1:                                      # the last block's l3 is at hand
                l3 = _dense_123(model, _checked_rows(rows(a, b), b - a))
            h_bw, state = _lstm_block(kh_bw, _lstm_inputs(model, "bw", l3), state, True, hook)
            out[a:b] = _output_layers(model, parked.take(key), h_bw)
    finally:
        parked.close()
    return out


def release_pages(array: np.ndarray) -> bool:
    """Hand the resident pages of a memory-mapped, read-only ``array`` back to the OS (``MADV_DONTNEED``); the
    next read of it faults them in again from the file (the page cache: the same bytes). True when released;
    False for an array that is not file-mapped or an OS without ``madvise`` (then nothing changes).

    The model cache maps each tensor's ``.npy`` file (:mod:`voca_addon.core.models.modelfiles`): the forward
    direction's kernel (128 MB at full size) stays resident after the forward pass, during the backward
    pass that is the engine's peak (measured: docs/phonemes.md, "Measured whole")."""
    import mmap
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not hasattr(base, "madvise") or not hasattr(mmap, "MADV_DONTNEED") or base.closed:
        return False
    start = np.frombuffer(base, np.uint8).ctypes.data
    first = array.ctypes.data - start
    last = first + array.nbytes
    page = mmap.PAGESIZE
    lo, hi = -(-first // page) * page, (last // page) * page           # whole pages inside the array only
    if hi > lo:
        base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    return True


def _checked_rows(x, count: int) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.shape != (count, NUM_INPUT):
        raise InputError(f"DeepSpeech inputs must be [steps, {NUM_INPUT}], got {x.shape} for {count} steps")
    return x


def logits(model: DeepSpeechModel, inputs: np.ndarray,
           progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Raw logits of the acoustic model for the whole input array at once.

    Parameters
    ----------
    inputs : float32 [T, 494]
        Normalised MFCC context windows (:func:`voca_addon.core.speech.features.deepspeech_input`).
    progress : callable(fraction) or None
        Called during the recurrence with the fraction done (0..1).

    Returns
    -------
    np.ndarray
        float32 [T, 29]; equals :func:`logits_streamed` over the same rows (one block).
    """
    x = np.asarray(inputs, np.float32)
    if x.ndim != 2 or x.shape[1] != NUM_INPUT or len(x) == 0:
        raise InputError(f"DeepSpeech inputs must be [steps ≥ 1, {NUM_INPUT}], got {x.shape}")
    return logits_streamed(model, lambda a, b: x[a:b], len(x), chunk=len(x), progress=progress)
