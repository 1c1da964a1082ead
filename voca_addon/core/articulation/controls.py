"""Articulation knobs (Audio2Face-style), applied non-destructively from VOCA's exact weights.

``apply_controls(anim, track, settings)`` starts from ``anim.exact()`` every time: speech strength
``s`` scales the motion about the rest face (bias and weights × s; the Blender layer keeps the bias
key's data and keys its value to ``s``), temporal smoothing is a centred Gaussian (σ = ``smoothing_ms``)
on the weights, and the corrective keys are solved again on that motion (their fields always come from
VOCA's exact motion, so the key shapes do not change with the knobs), scaled by ``closure_strength``,
with ``mouth_close`` added to the closure key's weight (negative opens; never past the floor).

Contract: numpy + scipy.ndimage; pure; the defaults return exactly ``add_corrections(anim, track)``
(``anim.exact()`` with closures off).
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..animation.shapekeys import ShapeKeyAnimation
from ..errors import InputError
from .closures import KNOB_REFITS, REFITS, add_corrections, check_flame, check_offset, check_track, \
    fit_and_solve

SPEECH_STRENGTH_RANGE = (0.0, 3.0)
CLOSURE_STRENGTH_RANGE = (0.0, 3.0)
MOUTH_CLOSE_RANGE = (-2.0, 2.0)       # added to the closure key's weight (1 = 10 mm of mean opening)
SMOOTHING_RANGE_MS = (0.0, 500.0)


@dataclass(frozen=True)
class ArticulationSettings:
    """The knobs; the defaults change nothing.

    Attributes
    ----------
    closures : bool
        Lip closure (p/b/m) and tuck (f/v) keys on.
    closure_strength : float
        Scales the corrective weights (0 – 3).
    speech_strength : float
        Scales VOCA's motion about the rest face (0 – 3).
    mouth_close : float
        Added to the closure key's weight (−2 – 2; negative opens).
    smoothing_ms : float
        σ of a centred Gaussian on VOCA's weights over time, milliseconds (0 – 500; 0 = off).
    """

    closures: bool = True
    closure_strength: float = 1.0
    speech_strength: float = 1.0
    mouth_close: float = 0.0
    smoothing_ms: float = 0.0

    def __post_init__(self):
        for name, (low, high) in (("closure_strength", CLOSURE_STRENGTH_RANGE),
                                  ("speech_strength", SPEECH_STRENGTH_RANGE),
                                  ("mouth_close", MOUTH_CLOSE_RANGE), ("smoothing_ms", SMOOTHING_RANGE_MS)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
                raise InputError(f"{name.replace('_', ' ')} must be a number from {low:g} to {high:g}, got {value!r}.")

    @property
    def is_default(self) -> bool:
        return (self.closure_strength, self.speech_strength, self.mouth_close, self.smoothing_ms) == (1, 1, 0, 0)


def _motion(exact: ShapeKeyAnimation, settings: ArticulationSettings) -> ShapeKeyAnimation:
    """VOCA's motion with speech strength and smoothing applied (no corrections)."""
    weights, bias = exact.weights, exact.bias
    if settings.smoothing_ms > 0:
        sigma = settings.smoothing_ms * 1e-3 * exact.fps                         # frames
        weights = gaussian_filter1d(weights.astype(np.float64), sigma, axis=0, mode="nearest")
    if settings.speech_strength != 1.0:
        weights = weights * settings.speech_strength
        bias = bias * np.float32(settings.speech_strength)
    if weights is exact.weights and bias is exact.bias:
        return exact
    return ShapeKeyAnimation(exact.basis, bias.astype(np.float32), np.asarray(weights, np.float32), exact.fps,
                             exact.template, exact.names)


def apply_controls(anim: ShapeKeyAnimation, track, settings: ArticulationSettings,
                   offset: Optional[np.ndarray] = None) -> ShapeKeyAnimation:
    """The knobs applied to VOCA's exact weights, corrections solved again on the result.

    Parameters
    ----------
    anim : ShapeKeyAnimation
        FLAME topology; its corrections (if any) are ignored: the knobs start from ``anim.exact()``.
    track : PhoneTrack or None
        None: no corrective keys (as with ``settings.closures`` off).
    settings : ArticulationSettings
    offset : float [V, 3], optional
        A static displacement the face also carries (an emotion's delta), as in ``add_corrections``.

    Returns
    -------
    ShapeKeyAnimation
        With knob-modified ``bias``/``weights`` and (closures on, a track given) the corrections.
    """
    exact = anim.exact()
    if settings.is_default and settings.closures and track is not None:
        return add_corrections(exact, track, 1.0, offset)
    motion = _motion(exact, settings)
    if not settings.closures or track is None:
        return motion
    check_flame(exact.num_vertices)
    check_track(exact, track)
    offset = check_offset(exact, offset)
    refits = REFITS if motion is exact else KNOB_REFITS
    corrections = fit_and_solve(motion, track, settings.closure_strength, settings.mouth_close, offset, refits)
    return motion.with_corrections(corrections)
