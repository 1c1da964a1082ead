"""Head motion from the speech: nods on emphasis, turns and tilts between phrases, slow drift.

Speakers move their heads with their prosody: the head dips on stressed, loud syllables and rises with
the pitch (Yehia, Kuratate, Vatikiotis-Bateson 2002 found head motion and F0 correlated at r ≈ 0.7;
Munhall et al. 2004 "visual prosody"), shifts its posture at phrase boundaries, and drifts slowly. The
steps, per frame at ``fps``:

1. *Speech signals.* Loudness ``l(t) ∈ [0, 1]`` (energy between the noise floor and the loud frames,
   0 in pauses) and the pitch contour ``p(t)`` in semitones re the speaker's median F0 (unvoiced
   frames inside speech interpolated, 0 in pauses).
2. *Nods* (rotation about X, + = chin down): ``NOD_RAD · ê(t) − RAISE_RAD_PER_ST · p(t)`` where the
   emphasis ``ê`` is the loudness rise ``max(dl/dt, 0)`` smoothed over ``EMPHASIS_S`` and scaled to unit
   peak (robust: its 99th percentile).
3. *Phrase posture* (turn about Y, tilt about Z): a new target ``N(0, TURN_RAD)``, ``N(0, TILT_RAD)``
   as each phrase begins (speech onset after a pause), held and eased with time constant ``POSTURE_S``.
4. *Drift*: Gaussian noise low-passed at ``DRIFT_HZ`` on all three axes, ``DRIFT_RAD`` standard deviation.
5. *Strength and smoothness.* The sum times ``strength``, low-passed (Butterworth, order 2,
   zero-phase ``filtfilt``) at ``1 / (2π · smoothness_s)`` Hz.

Output: rotation vectors float32 [F, 3] radians in FLAME's head frame (X right, Y up, Z forward): the
neck pose of a FLAME rig (``pose[:, 1]``), or the head object's rotation when there is no rig.

Contract: numpy + stdlib (+ :mod:`.prosody`); pure functions, any thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .prosody import DIGITAL_SILENCE_DB, Prosody

NOD_RAD = 0.09              # rad (≈ 5.2°) of chin-down per unit emphasis
RAISE_RAD_PER_ST = 0.005    # rad (≈ 0.29°) of head-up per semitone of pitch above the median
EMPHASIS_S = 0.12           # s, smoothing of the loudness rise (about a syllable)
TURN_RAD = 0.06             # rad (≈ 3.4°) standard deviation of the posture's turn per phrase
TILT_RAD = 0.035            # rad (≈ 2.0°) standard deviation of the posture's tilt per phrase
POSTURE_S = 0.4             # s, smoothing of the move to a new posture
DRIFT_S = 1.0               # s, smoothing of the slow drift (−3 dB at ≈ 0.19 Hz)
DRIFT_RAD = 0.02            # rad (≈ 1.1°) standard deviation of the drift per axis
SMOOTHNESS_S = 0.08         # s, default smoothing (−3 dB at ≈ 2.3 Hz)
MAX_STRENGTH = 5.0
GAUSS_TRUNCATE = 4.0        # the Gaussian kernel reaches ±4 standard deviations


@dataclass(frozen=True)
class HeadMotion:
    """``rotation`` float32 [F, 3]: rotation vectors (radians, FLAME's head frame), at ``fps``."""

    rotation: np.ndarray
    fps: float


def speech_signals(prosody: Prosody) -> tuple:
    """Step 1: loudness float64 [F] in [0, 1] and pitch contour float64 [F] in semitones."""
    energy = prosody.energy_db
    sound = energy[energy > DIGITAL_SILENCE_DB]                              # zeros in the file are no floor
    floor, top = np.percentile(sound if sound.size else energy, [5, 95])
    loudness = np.where(prosody.speaking, np.clip((energy - floor) / max(top - floor, 1e-6), 0, 1), 0.0)
    voiced = np.isfinite(prosody.f0_hz)
    if not voiced.any():
        return loudness, np.zeros_like(loudness)
    semitones = 12.0 * np.log2(prosody.f0_hz[voiced] / np.median(prosody.f0_hz[voiced]))
    frames = np.arange(energy.size)
    contour = np.interp(frames, frames[voiced], semitones)
    return loudness, np.where(prosody.speaking, contour, 0.0)


def _smooth(x: np.ndarray, seconds: float, fps: float) -> np.ndarray:
    """Zero-phase Gaussian low-pass of ``x`` [F] or [F, C] along frames, σ = ``seconds`` (edges reflected)."""
    sigma = seconds * fps
    if sigma < 0.5 or x.shape[0] < 2:
        return x
    half = int(np.ceil(GAUSS_TRUNCATE * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    columns = x.reshape(x.shape[0], -1)
    padded = np.pad(columns, ((half, half), (0, 0)), mode="symmetric")
    out = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(columns.shape[1])], axis=1)
    return out.reshape(x.shape)


def emphasis(loudness: np.ndarray, fps: float) -> np.ndarray:
    """Step 2's ``ê``: float64 [F], the smoothed loudness rise scaled to unit (99th-percentile) peak."""
    rise = np.maximum(np.gradient(loudness) * fps, 0.0)
    smooth = _smooth(rise, EMPHASIS_S, fps)
    scale = np.percentile(smooth, 99)
    return np.clip(smooth / scale, 0, 1.5) if scale > 0 else np.zeros_like(smooth)


def phrase_posture(prosody: Prosody, rng: np.random.Generator) -> np.ndarray:
    """Step 3: float64 [F, 2] (turn, tilt) held per phrase and eased between phrases."""
    starts = np.flatnonzero(np.diff(prosody.speaking.astype(np.int8)) == 1) + 1    # phrase onsets
    boundaries = np.concatenate([[0], starts, [prosody.num_frames]])
    targets = rng.standard_normal((boundaries.size - 1, 2)) * (TURN_RAD, TILT_RAD)
    held = np.repeat(targets, np.diff(boundaries), axis=0)
    return _smooth(held, POSTURE_S, prosody.fps)


def drift(num_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Step 4: float64 [F, 3] slow noise, ``DRIFT_RAD`` standard deviation per axis."""
    noise = _smooth(rng.standard_normal((num_frames, 3)), DRIFT_S, fps)
    std = noise.std(axis=0)
    return noise / np.where(std > 0, std, 1.0) * DRIFT_RAD


def head_motion(prosody: Prosody, strength: float = 1.0, smoothness_s: float = SMOOTHNESS_S,
                seed: int = 0) -> HeadMotion:
    """Head rotation per frame from the speech's prosody (module docstring's steps 1–5).

    Parameters
    ----------
    prosody : Prosody
        The speech at the animation's fps (:func:`..prosody.analyse`).
    strength : float
        0 = still, 1 = the defaults above, up to ``MAX_STRENGTH``.
    smoothness_s : float
        Seconds; larger is smoother and slower (0 = no extra smoothing).
    seed : int

    Raises
    ------
    InputError
        ``strength`` or ``smoothness_s`` out of range.
    """
    if not (0.0 <= strength <= MAX_STRENGTH) or not (0.0 <= smoothness_s <= 5.0):
        raise InputError(f"head motion: strength must be within 0..{MAX_STRENGTH} (got {strength}) and "
                         f"smoothness within 0..5 s (got {smoothness_s}).")
    rng = np.random.default_rng(seed)
    fps, frames = prosody.fps, prosody.num_frames
    loudness, pitch = speech_signals(prosody)
    rotation = np.zeros((frames, 3))
    rotation[:, 0] = NOD_RAD * emphasis(loudness, fps) - RAISE_RAD_PER_ST * pitch    # step 2
    rotation[:, 1:] = phrase_posture(prosody, rng)                                    # step 3
    rotation += drift(frames, fps, rng)                                               # step 4
    rotation = _smooth(rotation * strength, smoothness_s, fps)                        # step 5
    return HeadMotion(rotation.astype(np.float32), float(fps))
