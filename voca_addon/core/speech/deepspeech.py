"""DeepSpeech v0.1.0's acoustic network (as VOCA uses it) in numpy: inputs [T, 494] → logits [T, 29].

Per step: three clipped-ReLU dense layers, a bidirectional LSTM (TF BasicLSTMCell, gate order
i, j, f, o, forget bias +1.0 added at run time), a clipped-ReLU dense layer and a linear output
layer. See ``../shared/docs/deepspeech-0.1.0.md`` and ``docs/engine.md``.

Speed: everything but the LSTM recurrence is one matrix product over all steps. The recurrence is
the only sequential part: per step and direction one [1, n_cell] · [n_cell, 4·n_cell] product, whose
cost is reading the recurrent kernel (64 MiB at full size) from memory.

Contract: numpy only; float32 arithmetic like TensorFlow. Widths are read from the tensors, so
small-width graphs of the same structure (used by the tests) run through the same code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import numpy as np

from ..errors import InputError, ModelFileError

NUM_INPUT = 494            # 26 MFCC × (1 + 2·9 context frames)
NUM_CLASSES = 29           # space, a–z, apostrophe, CTC blank
RELU_CLIP = 20.0           # DeepSpeech 0.1.0 --relu_clip default
FORGET_BIAS = 1.0          # BasicLSTMCell(forget_bias=1.0), added at run time
DENSE = ("h1", "b1", "h2", "b2", "h3", "b3", "h5", "b5", "h6", "b6")
LSTM = "bidirectional_rnn/{}/basic_lstm_cell/{}"
RELEASE_URL = "https://github.com/mozilla/DeepSpeech/releases/tag/v0.1.0"
# Tensor names that only newer DeepSpeech graphs (0.2 and later) contain.
NEWER_MARKERS = ("lstm_fused_cell", "cudnn_lstm", "previous_state_c", "input_samples")


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


def _lstm_direction(model: DeepSpeechModel, direction: str, x: np.ndarray,
                    progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """Run one LSTM direction over x [T, n_in] (reverse order for 'bw'); returns h [T, n_cell]."""
    kx, kh, b = model.lstm(direction)
    n = model.n_cell
    z_in = x @ kx                                                           # [T, 4n] one GEMM
    z_in += b
    z_in[:, 2 * n:3 * n] += np.float32(FORGET_BIAS)
    steps = range(len(x)) if direction == "fw" else range(len(x) - 1, -1, -1)
    h = np.zeros(n, np.float32)
    c = np.zeros(n, np.float32)
    out = np.empty((len(x), n), np.float32)
    z = np.empty(4 * n, np.float32)
    for k, t in enumerate(steps):
        np.dot(h, kh, out=z)                                                # the sequential floor
        z += z_in[t]
        i, j, f, o = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
        c = c * _sigmoid(f) + _sigmoid(i) * np.tanh(j)
        h = np.tanh(c) * _sigmoid(o)
        out[t] = h
        if progress is not None:
            progress(k)
    return out


def logits(model: DeepSpeechModel, inputs: np.ndarray,
           progress: Optional[Callable[[float], None]] = None) -> np.ndarray:
    """Raw logits of the acoustic model.

    Parameters
    ----------
    inputs : float32 [T, 494]
        Normalised MFCC context windows (:func:`voca_addon.core.speech.features.deepspeech_input`).
    progress : callable(fraction) or None
        Called during the recurrence with the fraction done (0..1).
    Returns float32 [T, 29].
    """
    x = np.asarray(inputs, np.float32)
    if x.ndim != 2 or x.shape[1] != NUM_INPUT or len(x) == 0:
        raise InputError(f"DeepSpeech inputs must be [steps ≥ 1, {NUM_INPUT}], got {x.shape}")
    p = model.params
    l1 = _dense_clip(x, p["h1"], p["b1"])
    l2 = _dense_clip(l1, p["h2"], p["b2"])
    l3 = _dense_clip(l2, p["h3"], p["b3"])
    total = 2 * len(x)
    hooks = [None, None] if progress is None else [
        lambda k: progress((k + 1) / total), lambda k: progress((len(x) + k + 1) / total)]
    h_fw = _lstm_direction(model, "fw", l3, hooks[0])
    h_bw = _lstm_direction(model, "bw", l3, hooks[1])
    l5 = _dense_clip(np.concatenate([h_fw, h_bw], axis=1), p["h5"], p["b5"])
    out = l5 @ p["h6"]
    out += p["b6"]
    return out
