"""DeepSpeech 0.1.0 input features and VOCA's handling of its output, as in VOCA's ``utils/audio_handler.py``.

- ``mfcc``: python_speech_features 0.6 ``mfcc(signal, 16000, numcep=26)`` with its defaults: pre-emphasis
  0.97; 25 ms / 10 ms frames (lengths rounded half-up on the exact float value, the last frame zero-padded;
  frame count ``1 + ceil((N - 400) / 160)``, 1 when ``N <= 400``); rectangular window; power spectrum
  ``|rfft_512|**2 / 512``; 26 triangular mel filters over 0 .. rate/2 on FFT bins
  ``floor((nfft + 1) * hz / rate)``; exact zeros replaced by float64 eps before the log; orthonormal DCT-II
  (a matrix here, no scipy); cepstral lifter 22; coefficient 0 replaced by the log frame energy.
  Matches python_speech_features to ~1e-13 (the only difference is the DCT's summation order).
- ``deepspeech_input``: VOCA's ``audioToInputVector``: every second MFCC frame (50 steps/s), 9 zero frames
  of context on each side, 19-frame windows flattened frame-major ([T, 494]), normalised with ONE mean and
  ONE population std over the whole array, zero padding included.
- ``interpolate_logits``: VOCA's ``interpolate_features``: per-feature ``np.interp`` from 50 to 60 fps.
- ``num_output_frames``: ``int(round(n / rate * fps))`` with Python's round (half to even) on the ORIGINAL
  audio's sample count and rate, exactly VOCA's frame count.
- ``make_windows``: 8 zero rows each side, 16-row windows with stride 1 → VOCA's ``speech_features``.

Streaming (bounded memory). Every step above is per frame except the normalisation, whose mean and std
cover the whole array. ``DeepSpeechInput.from_signal`` therefore keeps only the MFCC steps [T, 26] (8 kB
per second of speech) and the two statistics, computed exactly from the steps: padded step r appears in
``count_r = min(r, T-1) - max(r-18, 0) + 1`` windows, so ``mean = Σ count_r Σ_c x_rc / (494 T)`` and
``var = Σ count_r Σ_c (x_rc - mean)² / (494 T)`` (zero padding included). ``rows(a, b)`` then builds any
block of the normalised [T, 494] input on demand. The MFCC runs over blocks of ``MFCC_CHUNK`` frames, so
its FFT intermediates stay a few MB whatever the length; ``mfcc_stream`` takes the signal itself as
consecutive blocks (``DeepSpeechInput.from_blocks``), keeping only the samples not yet framed. ``frame_windows`` does the same for VOCA's
16-frame windows. Results equal the whole-array computation to float64 summation order (~1e-15).

Contract: numpy only; pure functions, any thread. Computation in float64; ``deepspeech_input`` returns
float32 because the TF graph is fed float32.
"""
from __future__ import annotations

import decimal
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..errors import AudioError, InputError

SAMPLE_RATE = 16000         # Hz, DeepSpeech input rate
FRAME_LENGTH_S = 0.025      # s, MFCC analysis window
FRAME_STEP_S = 0.01         # s, MFCC hop
NFFT = 512                  # FFT size (samples)
PREEMPHASIS = 0.97          # pre-emphasis coefficient
NUM_FILTERS = 26            # mel filters
NUM_CEPSTRA = 26            # cepstral coefficients kept (DeepSpeech n_input)
CEP_LIFTER = 22             # cepstral lifter parameter
NUM_CONTEXT = 9             # frames of context on each side (DeepSpeech n_context)
FEATURE_STRIDE = 2          # keep every second MFCC frame (the BiRNN stride): 100 → 50 steps/s
DEEPSPEECH_FPS = 50         # logits per second
VOCA_FPS = 60               # VOCA output frames per second
WINDOW = 16                 # logit rows per VOCA input window
EPS = np.finfo(np.float64).eps
MFCC_CHUNK = 4096           # MFCC frames per block (41 s of audio; ~17 MB of FFT intermediates)


def _round_half_up(value: float) -> int:
    """Round the exact binary value of ``value`` half-up (python_speech_features' frame-length rule)."""
    return int(decimal.Decimal(value).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def _hz_to_mel(hz):
    return 2595 * np.log10(1 + hz / 700.)


def _mel_to_hz(mel):
    return 700 * (10 ** (mel / 2595.0) - 1)


def mel_filterbank(rate: int = SAMPLE_RATE, num_filters: int = NUM_FILTERS, nfft: int = NFFT) -> np.ndarray:
    """Triangular mel filters from 0 Hz to rate/2 on FFT bins.

    Returns
    -------
    np.ndarray
        float64 [num_filters, nfft // 2 + 1]; filter j rises over bins [b_j, b_{j+1}) and falls over
        [b_{j+1}, b_{j+2}), with ``b = floor((nfft + 1) * mel_to_hz(linspace(mel(0), mel(rate/2))) / rate)``.
    """
    mels = np.linspace(_hz_to_mel(0), _hz_to_mel(rate / 2), num_filters + 2)
    edges = np.floor((nfft + 1) * _mel_to_hz(mels) / rate)
    bins = np.arange(nfft // 2 + 1)[None, :]
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = np.where((bins >= lo) & (bins < mid), (bins - lo) / np.where(mid > lo, mid - lo, 1), 0.0)
    falling = np.where((bins >= mid) & (bins < hi), (hi - bins) / np.where(hi > mid, hi - mid, 1), 0.0)
    return rising + falling


def dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``dct_matrix(N) @ v`` equals scipy ``dct(v, type=2, norm='ortho')``.

    Returns
    -------
    np.ndarray
        float64 [size, size].
    """
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] *= np.sqrt(0.5)
    return matrix


def _frames(signal: np.ndarray, rate: int, first: int, stop: int, start: int = 0,
            total: Optional[int] = None) -> np.ndarray:
    """Pre-emphasised, zero-padded frames ``first .. stop-1``, float64 [stop - first, frame_length].

    Frame k covers samples ``k·step .. k·step + length - 1`` of ``x[0], x[1:] - 0.97·x[:-1]``, zeros
    past the end of the signal; only the samples of the requested frames are touched. ``signal`` holds
    samples ``start ..`` of a signal of ``total`` samples (default: all of it).
    """
    length = _round_half_up(FRAME_LENGTH_S * rate)
    step = _round_half_up(FRAME_STEP_S * rate)
    x = np.asarray(signal)
    total = start + x.shape[0] if total is None else total
    lo, hi = first * step, min((stop - 1) * step + length, total)
    piece = x[max(lo - 1, 0) - start:hi - start].astype(np.float64)
    emphasised = piece[1:] - PREEMPHASIS * piece[:-1]                        # y[n] = x[n] - 0.97 x[n-1]
    if lo == 0:
        emphasised = np.append(piece[0], emphasised)                            # y[0] = x[0]
    padded = np.concatenate([emphasised, np.zeros((stop - first - 1) * step + length - (hi - lo))])
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::step][:stop - first]


def _mfcc_block(frames: np.ndarray, rate: int) -> np.ndarray:
    """MFCC of pre-emphasised frames [n, length] → float64 [n, 26]."""
    power = 1.0 / NFFT * np.square(np.absolute(np.fft.rfft(frames, NFFT)))     # [n, 257]
    energy = np.sum(power, 1)
    energy = np.where(energy == 0, EPS, energy)
    filtered = np.dot(power, mel_filterbank(rate).T)                            # [n, 26]
    filtered = np.where(filtered == 0, EPS, filtered)
    cepstra = np.log(filtered) @ dct_matrix(NUM_FILTERS).T[:, :NUM_CEPSTRA]     # [n, 26]
    lift = 1 + (CEP_LIFTER / 2.) * np.sin(np.pi * np.arange(NUM_CEPSTRA) / CEP_LIFTER)
    cepstra = lift * cepstra
    cepstra[:, 0] = np.log(energy)
    return cepstra


def mfcc(signal: np.ndarray, rate: int = SAMPLE_RATE, stride: int = 1, chunk: int = MFCC_CHUNK) -> np.ndarray:
    """python_speech_features 0.6 ``mfcc(signal, rate, numcep=26)`` with its defaults, in blocks.

    Parameters
    ----------
    signal : np.ndarray
        int16 (or float) [n], n >= 1; VOCA passes the int16 16 kHz signal.
    rate : int
        Hz.
    stride : int
        Keep every ``stride``-th frame (``mfcc(x, stride=2) == mfcc(x)[::2]``; the others are not computed).
    chunk : int
        Frames per block (memory: ~4 kB per frame in flight); does not change the result.

    Returns
    -------
    np.ndarray
        float64 [ceil(frame_count(n) / stride), 26] (frame_count: 1 + ceil((n - 400) / 160) at 16 kHz,
        1 when n <= 400).

    Raises
    ------
    InputError
        ``signal`` is not a non-empty 1-D array.
    """
    x = np.asarray(signal)
    if x.ndim != 1 or x.shape[0] == 0:
        raise InputError(f"mfcc expects a non-empty 1-D signal, got shape {x.shape}.")
    count = frame_count(x.shape[0], rate)
    out = np.empty((-(-count // stride), NUM_CEPSTRA))
    block = max(1, chunk // stride) * stride                                    # keeps the stride phase
    for first in range(0, count, block):
        stop = min(first + block, count)
        out[first // stride:-(-stop // stride)] = _mfcc_block(_frames(x, rate, first, stop)[::stride], rate)
    return out


def mfcc_stream(blocks: Iterable[np.ndarray], num_samples: int, rate: int = SAMPLE_RATE, stride: int = 1,
                chunk: int = MFCC_CHUNK) -> np.ndarray:
    """:func:`mfcc` of the concatenation of ``blocks``, keeping only the samples not yet framed.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive pieces [n_i] of the signal (int16 or float), ``sum(n_i) == num_samples``.
    num_samples : int
        Length of the whole signal (≥ 1).

    Returns
    -------
    np.ndarray
        float64 [ceil(frame_count(num_samples) / stride), 26], equal to ``mfcc(concatenation, rate, stride)``.
    """
    length = _round_half_up(FRAME_LENGTH_S * rate)
    step = _round_half_up(FRAME_STEP_S * rate)
    count = frame_count(num_samples, rate)
    out = np.empty((-(-count // stride), NUM_CEPSTRA))
    block_frames = max(1, chunk // stride) * stride
    buf, start, first = np.zeros(0, np.float64), 0, 0         # buf holds samples start .. start + len(buf)
    for block in itertools.chain(blocks, [None]):
        if block is not None:
            buf = np.concatenate([buf, np.asarray(block, np.float64)])
            have = start + buf.shape[0]
            ready = min(count, (have - length) // step + 1) // stride * stride if have >= length else 0
        else:
            if start + buf.shape[0] != num_samples:
                raise InputError(f"mfcc_stream: the blocks hold {start + buf.shape[0]} samples, not {num_samples}")
            ready = count
        while first < ready:
            stop = min(first + block_frames, ready)
            frames = _frames(buf, rate, first, stop, start, num_samples)[::stride]
            out[first // stride:-(-stop // stride)] = _mfcc_block(frames, rate)
            first = stop
        keep = max(first * step - 1, 0)                        # the next frame's first sample, minus one
        if keep > start:
            buf, start = buf[keep - start:], keep
    return out


@dataclass(frozen=True)
class DeepSpeechInput:
    """VOCA's ``audioToInputVector`` kept as MFCC steps + its two statistics; rows built on demand.

    Attributes
    ----------
    steps : np.ndarray
        float64 [T, 26]: every second MFCC frame (50 per second).
    mean, std : float
        Mean and population std of the whole [T, 494] context array (zero padding included).
    """
    steps: np.ndarray
    mean: float
    std: float

    @property
    def num_steps(self) -> int:
        return int(self.steps.shape[0])

    @staticmethod
    def from_signal(signal_int16: np.ndarray, chunk: int = MFCC_CHUNK) -> "DeepSpeechInput":
        """MFCC steps of a 16 kHz int16 signal and the exact statistics of their context windows.

        Raises
        ------
        AudioError
            The features have no spread (cannot be normalised).
        """
        return DeepSpeechInput.from_steps(mfcc(signal_int16, SAMPLE_RATE, stride=FEATURE_STRIDE, chunk=chunk))

    @staticmethod
    def from_blocks(blocks: Iterable[np.ndarray], num_samples: int) -> "DeepSpeechInput":
        """As :meth:`from_signal` for a 16 kHz int16 signal given as consecutive blocks (bounded memory)."""
        return DeepSpeechInput.from_steps(mfcc_stream(blocks, num_samples, SAMPLE_RATE, stride=FEATURE_STRIDE))

    @staticmethod
    def from_steps(steps: np.ndarray) -> "DeepSpeechInput":
        """MFCC steps [T, 26] (every second frame) → the steps and their context windows' statistics.

        Raises
        ------
        AudioError
            The features have no spread (cannot be normalised).
        """
        t = steps.shape[0]
        span = 2 * NUM_CONTEXT + 1
        r = np.arange(t)                                           # padded row r + 9 holds step r
        count = np.minimum(r + NUM_CONTEXT, t - 1) - np.maximum(r - NUM_CONTEXT, 0) + 1   # windows per step
        total = float(t * span * NUM_CEPSTRA)
        mean = float(count @ steps.sum(axis=1)) / total
        zeros = float(t * span - count.sum()) * NUM_CEPSTRA       # padding entries (value 0) in the array
        var = (float(count @ np.square(steps - mean).sum(axis=1)) + zeros * mean * mean) / total
        std = math.sqrt(var)
        if not std > 0:
            raise AudioError("The audio gives constant speech features; use a recording with speech.")
        return DeepSpeechInput(steps, mean, std)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop-1`` of the normalised input, float32 [stop - start, 494].

        Row t = steps t-9 .. t+9 (zeros outside), index ``k * 26 + c``, minus ``mean``, over ``std``.
        """
        if not 0 <= start <= stop <= self.num_steps:
            raise InputError(f"rows {start}..{stop} outside 0..{self.num_steps}")
        lo, hi = start - NUM_CONTEXT, stop + NUM_CONTEXT                      # step range with context
        block = np.zeros((hi - lo, NUM_CEPSTRA))
        block[max(0, -lo):hi - lo - max(0, hi - self.num_steps)] = self.steps[max(lo, 0):min(hi, self.num_steps)]
        span = 2 * NUM_CONTEXT + 1
        windows = np.lib.stride_tricks.sliding_window_view(block, span, axis=0)  # [n, 26, 19]
        inputs = windows.transpose(0, 2, 1).reshape(stop - start, span * NUM_CEPSTRA)
        return ((inputs - self.mean) / self.std).astype(np.float32)


def deepspeech_input(signal_int16: np.ndarray) -> np.ndarray:
    """VOCA's ``audioToInputVector(signal, 16000, 26, 9)``: the DeepSpeech 0.1.0 ``input_node`` for batch 1.

    The whole array at once; :class:`DeepSpeechInput` gives the same rows block by block.

    Parameters
    ----------
    signal_int16 : np.ndarray
        int16 [n], 16 kHz (``audio.prepare_for_deepspeech``).

    Returns
    -------
    np.ndarray
        float32 [T, 494], T = ceil(mfcc frames / 2); row t = MFCC steps t-9 .. t+9 (zeros outside),
        index ``k * 26 + c``; normalised by the global mean and population std (computed in float64).

    Raises
    ------
    AudioError
        The features have no spread (cannot be normalised).
    """
    source = DeepSpeechInput.from_signal(signal_int16)
    return source.rows(0, source.num_steps)


def num_output_frames(num_samples: int, rate: int, fps: int = VOCA_FPS) -> int:
    """VOCA's output frame count ``int(round(num_samples / rate * fps))`` (Python round, half to even).

    ``num_samples`` and ``rate`` are those of the ORIGINAL audio (before resampling), as in VOCA.
    """
    if rate <= 0 or fps <= 0 or num_samples < 0:
        raise InputError(f"num_output_frames needs rate, fps > 0 and num_samples >= 0, got "
                         f"{num_samples}, {rate}, {fps}.")
    return int(round(float(num_samples) / rate * fps))


def interpolate_logits(logits: np.ndarray, num_frames: int, in_fps: float = DEEPSPEECH_FPS,
                       out_fps: float = VOCA_FPS) -> np.ndarray:
    """VOCA's ``interpolate_features``: linear interpolation per feature from ``in_fps`` to ``out_fps``.

    Parameters
    ----------
    logits : np.ndarray
        float [T, C] (DeepSpeech logits, C = 29), sampled at ``arange(T) / in_fps`` seconds.
    num_frames : int
        Output rows, sampled at ``arange(num_frames) / out_fps``; past the last input time the last row
        is held (``np.interp``).

    Returns
    -------
    np.ndarray
        float64 [num_frames, C].
    """
    values = np.asarray(logits, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0 or num_frames < 0:
        raise InputError(f"interpolate_logits expects [T>0, C] logits and num_frames >= 0, got "
                         f"{values.shape} and {num_frames}.")
    t_in = np.arange(values.shape[0]) / float(in_fps)
    t_out = np.arange(num_frames) / float(out_fps)
    out = np.zeros((num_frames, values.shape[1]))
    for feature in range(values.shape[1]):
        out[:, feature] = np.interp(t_out, t_in, values[:, feature])
    return out


def make_windows(features: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """VOCA's audio windows: ``window // 2`` zero rows each side, windows of ``window`` rows, stride 1.

    Parameters
    ----------
    features : np.ndarray
        [F, C] (interpolated logits, C = 29).
    window : int
        Rows per window (16 in VOCA).

    Returns
    -------
    np.ndarray
        [F + 2 * (window // 2) - window, window, C] (= [F, 16, C] for VOCA), same dtype as ``features``;
        window i holds rows i - window//2 .. i + window//2 - 1 (zeros outside).
    """
    values = np.asarray(features)
    if values.ndim != 2 or window < 1:
        raise InputError(f"make_windows expects [F, C] features and window >= 1, got {values.shape}, {window}.")
    half = int(window / 2)
    pad = np.zeros((half, values.shape[1]), dtype=values.dtype)
    padded = np.concatenate((pad, values, pad), axis=0)
    count = max(0, padded.shape[0] - window)
    index = np.arange(count)[:, None] + np.arange(window)[None, :]
    return padded[index]


def frame_windows(features: np.ndarray, start: int, stop: int, window: int = WINDOW) -> np.ndarray:
    """Windows ``start .. stop-1`` of :func:`make_windows` (``make_windows(f)[start:stop]``) without the others.

    Parameters
    ----------
    features : np.ndarray
        [F, C] per-frame features.

    Returns
    -------
    np.ndarray
        [stop - start, window, C], same dtype as ``features``.
    """
    values = np.asarray(features)
    half = int(window / 2)
    count = max(0, values.shape[0] + 2 * half - window)
    if values.ndim != 2 or not 0 <= start <= stop <= count:
        raise InputError(f"frame_windows: rows {start}..{stop} of {count} windows over {values.shape}")
    lo, hi = start - half, stop - half + window                               # feature rows needed
    block = np.zeros((hi - lo, values.shape[1]), dtype=values.dtype)
    block[max(0, -lo):hi - lo - max(0, hi - values.shape[0])] = values[max(lo, 0):min(hi, values.shape[0])]
    windows = np.lib.stride_tricks.sliding_window_view(block, window, axis=0)[:stop - start]  # [n, C, window]
    return np.ascontiguousarray(windows.transpose(0, 2, 1))


def frame_count(num_samples: int, rate: int = SAMPLE_RATE) -> int:
    """Number of MFCC frames for ``num_samples`` samples: 1 + ceil((n - 400) / 160) at 16 kHz, 1 if n <= 400."""
    length = _round_half_up(FRAME_LENGTH_S * rate)
    step = _round_half_up(FRAME_STEP_S * rate)
    return 1 if num_samples <= length else 1 + math.ceil((num_samples - length) / step)
