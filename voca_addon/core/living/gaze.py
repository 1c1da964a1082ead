"""Eye motion: fixations and saccades (main-sequence timing), optionally around a look-at target.

Steps, per frame at ``fps``:

1. *Fixations.* Durations gamma(``FIXATION_SHAPE``) with mean ``FIXATION_MEAN_S``, at least
   ``FIXATION_MIN_S`` (conversational gaze shifts every ≈ 0.5–2 s).
2. *Saccade targets.* Amplitude ``A`` exponential with mean ``AMPLITUDE_MEAN_DEG`` (small saccades
   dominate; capped at ``AMPLITUDE_MAX_DEG``), direction uniform with vertical components scaled by
   ``VERTICAL_SCALE``; each target is pulled back toward the centre by ``CENTRE_PULL`` and kept inside
   the comfortable range ``±RANGE_DEG``. The centre is straight ahead, or the look-at target.
3. *Main sequence.* A saccade of amplitude A lasts ``D = 21 ms + 2.2 ms/° · A`` (Carpenter 1988) and
   follows a minimum-jerk profile ``s(τ) = 10τ³ − 15τ⁴ + 6τ⁵`` (peak speed ``1.875 A / D``).
4. *Look-at.* With a target point (head coordinates, metres), each eye's centre direction is its own
   ray to the target (``yaw = atan2(dx, dz)``, ``pitch = atan2(−dy, √(dx² + dz²))``), so the eyes
   converge; saccades become small excursions (``LOOK_AT_AMPLITUDE_DEG``) around it.

Output: rotation vectors float32 [F, 2, 3] radians, eye 0 = left (+X), eye 1 = right, in FLAME's head
frame (an eye looks along +Z; + about X looks down, + about Y looks to the subject's left): FLAME's eye
poses (``pose[:, 3]``, ``pose[:, 4]``) or rotations of the eyeball vertex groups about their centres.
:func:`eyeball_vertices` finds FLAME's eyeballs (its two small separate mesh parts).

Contract: numpy + stdlib (no scipy: Blender's Python lacks it); pure functions, any thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from ..errors import InputError, MeshError

FIXATION_MEAN_S = 0.9       # s, mean fixation duration in conversation
FIXATION_SHAPE = 2.0        # gamma shape of fixation durations
FIXATION_MIN_S = 0.15       # s
AMPLITUDE_MEAN_DEG = 6.0    # °, mean saccade amplitude
AMPLITUDE_MAX_DEG = 20.0    # °
LOOK_AT_AMPLITUDE_DEG = 1.5  # °, mean excursion around a look-at target
VERTICAL_SCALE = 0.6        # vertical saccades are smaller than horizontal ones
CENTRE_PULL = 0.3           # share of the way back to the centre before each saccade
RANGE_DEG = (25.0, 20.0)    # ° (yaw, pitch) comfortable range around the centre
MAIN_SEQUENCE_MS = (21.0, 2.2)  # D = 21 ms + 2.2 ms/° · A


@dataclass(frozen=True)
class Gaze:
    """``rotation`` float32 [F, 2, 3] eye rotation vectors (radians), ``fps``, and the saccades made:
    ``saccade_s`` float64 [N] start times, ``amplitude_deg`` [N], ``duration_s`` [N]."""

    rotation: np.ndarray
    fps: float
    saccade_s: np.ndarray
    amplitude_deg: np.ndarray
    duration_s: np.ndarray


def look_at_angles(eye_centres: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Step 4: float64 [..., 2, 2] (yaw, pitch) radians of each eye's ray to ``target`` [..., 3]."""
    d = np.asarray(target, dtype=np.float64)[..., None, :] - np.asarray(eye_centres, dtype=np.float64)
    yaw = np.arctan2(d[..., 0], d[..., 2])
    pitch = np.arctan2(-d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    return np.stack([yaw, pitch], axis=-1)


def saccade_plan(duration_s: float, rng: np.random.Generator, mean_amplitude_deg: float) -> tuple:
    """Steps 1–2: start times [N] s, and gaze offsets [N + 1, 2] (yaw, pitch) degrees from the centre."""
    count = int(duration_s / FIXATION_MEAN_S * 2 + 4)
    fix = np.maximum(rng.gamma(FIXATION_SHAPE, FIXATION_MEAN_S / FIXATION_SHAPE, count), FIXATION_MIN_S)
    starts = np.cumsum(fix)
    starts = starts[starts < duration_s]
    amplitude = np.minimum(rng.exponential(mean_amplitude_deg, starts.size), AMPLITUDE_MAX_DEG)
    angle = rng.uniform(0, 2 * np.pi, starts.size)
    steps = amplitude[:, None] * np.stack([np.cos(angle), VERTICAL_SCALE * np.sin(angle)], axis=1)
    offsets = np.zeros((starts.size + 1, 2))
    for i, step in enumerate(steps):                                         # a few per second: tiny loop
        offsets[i + 1] = np.clip((1 - CENTRE_PULL) * offsets[i] + step, -np.array(RANGE_DEG), RANGE_DEG)
    return starts, offsets


def gaze_track(num_frames: int, fps: float, seed: int = 0, eye_centres: Optional[np.ndarray] = None,
               target: Optional[np.ndarray] = None) -> Gaze:
    """Eye rotations per frame (module docstring's steps 1–4).

    Parameters
    ----------
    num_frames : int
    fps : float
    seed : int
    eye_centres : float [2, 3], optional
        Left and right eye centres (head coordinates, metres); needed with ``target``.
    target : float [3] or [F, 3], optional
        Look-at point(s) in head coordinates (metres).

    Raises
    ------
    InputError
        Bad frame count / fps, a target without eye centres, a target behind or inside the eyes.
    """
    if not (num_frames > 0 and fps > 0):
        raise InputError("gaze: frames and fps must be positive.")
    rng = np.random.default_rng(seed)
    centre = np.zeros((num_frames, 2, 2))
    if target is not None:
        if eye_centres is None or np.shape(eye_centres) != (2, 3):
            raise InputError("gaze: a look-at target needs the two eye centres [2, 3].")
        target = np.broadcast_to(np.asarray(target, dtype=np.float64), (num_frames, 3))
        if np.any(target[:, 2] <= np.max(np.asarray(eye_centres)[:, 2])):
            raise InputError("gaze: the look-at target must be in front of the face (beyond the eyes "
                             "along the face's forward axis). Move the target in front of the head.")
        centre = look_at_angles(eye_centres, target)                        # [F, 2, 2]
    mean_amplitude = AMPLITUDE_MEAN_DEG if target is None else LOOK_AT_AMPLITUDE_DEG
    starts, offsets = saccade_plan(num_frames / fps, rng, mean_amplitude)
    amplitude = np.linalg.norm(np.diff(offsets, axis=0), axis=1)
    duration = (MAIN_SEQUENCE_MS[0] + MAIN_SEQUENCE_MS[1] * amplitude) / 1000.0
    angles = centre + np.radians(offset_curve(num_frames, fps, starts, duration, offsets))[:, None, :]
    rotvec = yaw_pitch_rotvec(angles[..., 0], angles[..., 1])                # [F, 2, 3]
    return Gaze(rotvec.astype(np.float32), float(fps), starts, amplitude, duration)


def yaw_pitch_rotvec(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Rotation vectors [..., 3] of ``R_Y(yaw) · R_X(pitch)`` (pitch applied first), radians.

    As quaternions: ``q = (cos a cos b, cos a sin b, sin a cos b, −sin a sin b)`` with a = yaw/2,
    b = pitch/2; then θ = 2 atan2(|v|, w) along v / |v|.
    """
    a, b = np.asarray(yaw, np.float64) / 2, np.asarray(pitch, np.float64) / 2
    w = np.cos(a) * np.cos(b)
    v = np.stack([np.cos(a) * np.sin(b), np.sin(a) * np.cos(b), -np.sin(a) * np.sin(b)], axis=-1)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2 * np.arctan2(norm, w[..., None])
    return np.divide(v * angle, norm, out=np.zeros_like(v), where=norm > 0)


def offset_curve(num_frames: int, fps: float, starts, durations, offsets) -> np.ndarray:
    """Step 3: float64 [F, 2] gaze offset per frame, minimum-jerk saccades between fixations."""
    t = np.arange(num_frames) / fps
    if starts.size == 0:
        return np.broadcast_to(offsets[0], (num_frames, 2)).copy()
    index = np.searchsorted(starts, t, side="right")                         # saccades begun by t
    previous = np.maximum(index - 1, 0)
    tau = np.clip((t - starts[previous]) / durations[previous], 0, 1)
    s = 10 * tau ** 3 - 15 * tau ** 4 + 6 * tau ** 5                         # minimum jerk
    before, after = offsets[previous], offsets[index]
    return np.where((index > 0)[:, None], before + s[:, None] * (after - before), offsets[0])


def eyeball_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple:
    """FLAME's eyeballs: (left, right) int64 vertex indices, the two smallest separate mesh parts.

    Raises
    ------
    MeshError
        The mesh has no two separate eyeball parts (not a FLAME head).
    """
    labels = mesh_parts(vertices.shape[0], faces)
    count = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels, minlength=count)
    if count < 3:
        raise MeshError(f"the head has {count} separate part(s); FLAME's eyes are two separate parts. "
                        "Eye motion without a rig needs a FLAME head (Add FLAME head) or a FLAME rig.")
    small = np.argsort(sizes)[:2]
    parts = [np.flatnonzero(labels == k) for k in small]
    parts.sort(key=lambda idx: -vertices[idx, 0].mean())                    # left eye at +X first
    return parts[0], parts[1]


def mesh_parts(num_vertices: int, faces: np.ndarray) -> np.ndarray:
    """int64 [V] connected-part label of every vertex (0 … parts − 1), by min-label propagation along the
    triangles' edges with pointer jumping (a handful of vectorised passes for a head mesh)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    labels = np.arange(num_vertices)
    while True:
        low = np.minimum(labels[edges[:, 0]], labels[edges[:, 1]])
        new = labels.copy()
        np.minimum.at(new, edges[:, 0], low)
        np.minimum.at(new, edges[:, 1], low)
        np.minimum.at(new, labels, new)                                      # a root takes its part's low
        new = new[new]                                                       # pointer jumping
        if np.array_equal(new, labels):
            return np.unique(labels, return_inverse=True)[1]
        labels = new
