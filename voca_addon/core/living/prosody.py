"""Speech prosody per animation frame: loudness, pitch and where the speaker pauses.

What drives the living face (blinks favour pauses, head motion follows emphasis and phrasing) is read
from the audio itself, one value per animation frame at ``t_f = f / fps``:

1. **Frames.** A ``WINDOW_S`` (40 ms) window of the mono signal (channel 0, like VOCA) centred on ``t_f``.
2. **Energy.** ``E_f = 10 log10(mean(x²) + ε)`` dB re full scale.
3. **Pitch.** On the signal decimated to ≥ ``PITCH_RATE_HZ`` (mean of each group of samples), the
   normalised autocorrelation ``r(τ) / r(0)`` (computed by FFT) is searched over the lags
   of ``F0_MIN_HZ``..``F0_MAX_HZ``; the shortest lag whose peak is within ``OCTAVE_RATIO`` of the best
   one is the period (a periodic signal peaks again at 2T, 3T: the octave error); the frame is *voiced*
   when that peak exceeds ``VOICING_THRESHOLD``
   and the frame is speech (4.); then ``F0 = rate / τ*`` Hz, else NaN.
4. **Speech activity.** ``E_f`` above ``max(E₉₅ − ACTIVITY_RANGE_DB, E₅ + ACTIVITY_FRACTION (E₉₅ − E₅))``
   (``E_p`` the p-th percentile of the frames above digital silence: the noise floor and the loud
   frames; never above ``E₉₅ − LOUD_MARGIN_DB``), gaps shorter than
   ``MIN_PAUSE_S`` inside speech closed and bursts shorter than ``MIN_SPEECH_S`` dropped.

Contract: numpy + stdlib (+ :mod:`..speech.audio`); no scipy, which Blender's Python lacks (the living face
runs inside Blender); pure functions, any thread. Audio in the
int16 scale of :class:`~voca_addon.core.speech.audio.Audio`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..speech.audio import Audio, to_mono

WINDOW_S = 0.040            # s, analysis window centred on each frame
F0_MIN_HZ = 70.0            # Hz, lowest pitch searched (deep male voice)
F0_MAX_HZ = 400.0           # Hz, highest pitch searched (child / high female voice)
VOICING_THRESHOLD = 0.45    # normalised autocorrelation peak above which a frame is voiced
PITCH_RATE_HZ = 8000        # Hz, at least: the signal is box-filtered and decimated to this for pitch
OCTAVE_RATIO = 0.9          # the shortest lag within this ratio of the best peak wins (no octave drops)
ACTIVITY_RANGE_DB = 30.0    # dB below the loud (95th percentile) frames that can still count as speech
ACTIVITY_FRACTION = 0.3     # of the way from the noise floor (5th percentile) up to the loud frames
LOUD_MARGIN_DB = 6.0        # dB: a frame this close to the loud frames is speech (a steady voice)
MIN_PAUSE_S = 0.15          # s, shorter silences are within a phrase (stop closures, breaths)
MIN_SPEECH_S = 0.06         # s, shorter bursts are clicks, not speech
INT16_FULL_SCALE = 32768.0
EPS = 1e-10                 # power floor (−100 dB)
DIGITAL_SILENCE_DB = -90.0  # frames at or below this are zeros in the file, not the room's noise floor


@dataclass(frozen=True)
class Prosody:
    """Per-frame prosody at ``fps``.

    Attributes
    ----------
    energy_db : float64 [F]   loudness, dB re full scale.
    f0_hz : float64 [F]       pitch in Hz, NaN where unvoiced.
    speaking : bool [F]       speech activity (False in pauses).
    fps : float
    """

    energy_db: np.ndarray
    f0_hz: np.ndarray
    speaking: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.energy_db.shape[0])

    def pause_onsets(self) -> np.ndarray:
        """int64 [P]: frames where a pause begins (speech → silence), i.e. phrase ends."""
        s = self.speaking.astype(np.int8)
        return np.flatnonzero(np.diff(s) == -1) + 1


def frame_windows(signal: np.ndarray, rate: float, fps: float, num_frames: int) -> np.ndarray:
    """float64 [F, W]: the ``WINDOW_S`` windows centred on ``f / fps`` (zero outside the signal)."""
    width = max(int(round(WINDOW_S * rate)), 2)
    centres = np.round(np.arange(num_frames) * (rate / fps)).astype(np.int64)
    padded = np.pad(signal, (width, width + int(centres[-1]) + 1))
    views = np.lib.stride_tricks.sliding_window_view(padded, width)
    return views[centres + width - width // 2]


def analyse(audio: Audio, fps: float, num_frames: int = None) -> Prosody:
    """Energy, pitch and speech activity of ``audio`` per frame (module docstring's steps 1–4).

    Parameters
    ----------
    audio : Audio
    fps : float
        Animation frame rate.
    num_frames : int, optional
        Frames wanted (default: ``ceil(duration · fps)``); the audio is zero-padded or cut to fit.

    Raises
    ------
    InputError
        ``fps`` not positive or no frames.
    """
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}.")
    num_frames = int(np.ceil(audio.duration_s * fps)) if num_frames is None else int(num_frames)
    if num_frames <= 0:
        raise InputError("the audio gives no animation frame; choose a longer recording.")
    signal = to_mono(audio, 0) / INT16_FULL_SCALE
    windows = frame_windows(signal, audio.rate, fps, num_frames)             # [F, W]
    energy_db = 10.0 * np.log10(np.mean(windows ** 2, axis=1) + EPS)        # step 2
    speaking = speech_activity(energy_db, fps)                               # step 4
    step = max(1, audio.rate // PITCH_RATE_HZ)                               # pitch needs ≤ 4 kHz
    low = signal[:signal.size // step * step].reshape(-1, step).mean(axis=1)   # box filter + decimate
    f0 = pitch(frame_windows(low, audio.rate / step, fps, num_frames), audio.rate / step)  # step 3
    f0[~speaking] = np.nan
    return Prosody(energy_db, f0, speaking, float(fps))


def pitch(windows: np.ndarray, rate: float) -> np.ndarray:
    """Step 3: float64 [F] F0 in Hz by normalised autocorrelation (peak refined to a fraction of a lag by
    a parabola through its neighbours), NaN where unvoiced. ``rate`` in Hz of the windows' samples."""
    width = windows.shape[1]
    centred = windows - windows.mean(axis=1, keepdims=True)
    size = 1 << int(2 * width - 1).bit_length()                              # ≥ 2W (no wrap), a power of 2
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    r = np.fft.irfft(np.abs(spectrum) ** 2, n=size, axis=1)[:, :width]       # r(τ), τ = 0..W−1
    lo = int(np.ceil(rate / F0_MAX_HZ)) + 1                                  # lags of F0_MAX..F0_MIN, with
    hi = min(int(np.floor(rate / F0_MIN_HZ)) - 1, width - 1)                 # room for the sub-lag shift
    if hi <= lo:
        return np.full(windows.shape[0], np.nan)
    overlap = (width - np.arange(width)) / width                             # unbiased: r(τ)·W/(W−τ)
    normalised = r[:, lo:hi + 1] / overlap[lo:hi + 1] / np.maximum(r[:, :1], EPS)
    peak = normalised.max(axis=1, keepdims=True)
    near = normalised >= OCTAVE_RATIO * peak                                 # candidate lags
    lags = np.arange(normalised.shape[1])
    after = lags >= np.argmax(near, axis=1)[:, None]                         # from the shortest candidate
    breaks = after & ~near
    run_end = np.where(breaks.any(axis=1), np.argmax(breaks, axis=1), lags.size)
    first_run = after & (lags < run_end[:, None])
    best = np.argmax(np.where(first_run, normalised, -np.inf), axis=1)       # its local maximum
    rows = np.arange(len(best))
    peak = normalised[rows, best]
    left = normalised[rows, np.maximum(best - 1, 0)]
    right = normalised[rows, np.minimum(best + 1, normalised.shape[1] - 1)]
    curve = left - 2 * peak + right                                          # parabola through 3 lags
    shift = np.divide(0.5 * (left - right), curve, out=np.zeros_like(curve), where=curve < 0)
    f0 = rate / (lo + best + np.clip(shift, -0.5, 0.5))
    return np.where(peak > VOICING_THRESHOLD, f0, np.nan)


def speech_activity(energy_db: np.ndarray, fps: float) -> np.ndarray:
    """Step 4: bool [F], True while speaking (loud enough, short gaps closed, short bursts dropped)."""
    sound = energy_db[energy_db > DIGITAL_SILENCE_DB]
    floor, top = np.percentile(sound if sound.size else energy_db, [5, 95])
    threshold = max(top - ACTIVITY_RANGE_DB, floor + ACTIVITY_FRACTION * (top - floor))
    loud = (energy_db > min(threshold, top - LOUD_MARGIN_DB)) & (energy_db > DIGITAL_SILENCE_DB)
    closed = _drop_short_runs(loud, False, MIN_PAUSE_S * fps, inner_only=True)   # short gaps → speech
    return _drop_short_runs(closed, True, MIN_SPEECH_S * fps)                   # short bursts → silence


def _drop_short_runs(mask: np.ndarray, value: bool, shorter_than: float, inner_only: bool = False) -> np.ndarray:
    """``mask`` with every run of ``value`` shorter than ``shorter_than`` frames flipped (bool [F]).

    ``inner_only``: only runs with other values on both sides (a gap inside speech, not the silence
    before the first word or after the last).
    """
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask == value, [False]]).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]                                  # runs of `value`: [start, end)
    short = (ends - starts) < shorter_than
    if inner_only:
        short &= (starts > 0) & (ends < mask.size)
    out = mask.copy()
    for start, end in zip(starts[short], ends[short]):                       # a few runs per second
        out[start:end] = not value
    return out
