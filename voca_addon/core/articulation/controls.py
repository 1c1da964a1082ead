"""Articulation knobs (Audio2Face-style), applied non-destructively from VOCA's exact weights.

``apply_controls(anim, track, settings)`` starts from ``anim.exact()`` every time: speech strength
``s`` scales the motion about the rest face (bias and weights × s; the Blender layer keeps the bias
key's data and keys its value to ``s``), temporal smoothing is a centred Gaussian (σ = ``smoothing_ms``)
on the weights, and the corrective keys are fitted again on that motion (speech strength and smoothing
change the key shapes; closure strength and mouth close change only their weights), scaled by
``closure_strength``, with ``mouth_close`` added to the closure key's weight (negative opens; never past the
floor).

**Speed** (issue 18: a knob on 60 s at 60 fps in < 0.1 s). The key shapes depend only on the motion (VOCA's
exact weights under speech strength and smoothing), the phone track and the offset, not on closure strength or
mouth close: the last :data:`FIT_CACHE` fits are kept, keyed by a SHA-256 digest of everything they depend on
(weights, bias, basis, template, rate, phones, offset, refits), so a closure knob only solves the weights again
(the same arithmetic on the same inputs: results equal bit for bit to a fresh fit). Returned arrays are copies.

Contract: numpy + scipy.ndimage; pure (a cache of results only); the defaults return exactly
``add_corrections(anim, track)`` (``anim.exact()`` with closures off).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import hashlib
import math
import threading
from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..animation.shapekeys import Corrections, ShapeKeyAnimation
from ..errors import InputError
from .closures import KNOB_REFITS, REFITS, check_flame, check_offset, check_track, corrections_for, fit

SPEECH_STRENGTH_RANGE = (0.0, 3.0)
CLOSURE_STRENGTH_RANGE = (0.0, 3.0)
MOUTH_CLOSE_RANGE = (-2.0, 2.0)       # added to the closure key's weight (1 = 10 mm of mean opening)
SMOOTHING_RANGE_MS = (0.0, 500.0)
FIT_CACHE = 4                         # fits kept (two heads, or a head's last speech settings)
_FITS: "OrderedDict[str, tuple]" = OrderedDict()
_FITS_LOCK = threading.Lock()


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
    motion = _motion(exact, settings)
    if not settings.closures or track is None:
        return motion
    check_flame(exact.num_vertices)
    check_track(exact, track)
    offset = check_offset(exact, offset)
    refits = REFITS if motion is exact else KNOB_REFITS
    fields, corrections, vectors = _fit(motion, track, offset, refits)
    if settings.closure_strength != 1.0 or settings.mouth_close != 0.0:
        corrections = corrections_for(motion, track, fields, settings.closure_strength, settings.mouth_close,
                                      offset, vectors)
    else:
        corrections = Corrections(corrections.basis.copy(), corrections.weights.copy(), corrections.names)
    return motion.with_corrections(corrections)


def _digest(motion: ShapeKeyAnimation, track, offset: Optional[np.ndarray], refits: int) -> str:
    """SHA-256 of everything :func:`~.closures.fit` depends on (≈ 4 MB for VOCA's 50 keys: a few ms)."""
    h = hashlib.sha256()                     # SHA-NI: ≈ 2 ms for 4 MB (BLAKE2b ≈ 5)
    for array in (motion.weights, motion.bias, motion.basis, motion.template):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array)
    if offset is not None:
        h.update(b"offset")
        h.update(np.ascontiguousarray(offset, np.float64))
    h.update(repr((float(motion.fps), int(refits),
                   [(p.phone, float(p.start), float(p.end)) for p in track.phones])).encode())
    return h.hexdigest()


def _fit(motion: ShapeKeyAnimation, track, offset: Optional[np.ndarray], refits: int) -> tuple:
    """:func:`~.closures.fit` of ``motion``, from the cache when the same inputs were fitted lately."""
    digest = _digest(motion, track, offset, refits)
    with _FITS_LOCK:
        if digest in _FITS:
            _FITS.move_to_end(digest)
            return _FITS[digest]
    result = fit(motion, track, offset, refits)
    with _FITS_LOCK:
        _FITS[digest] = result
        while len(_FITS) > FIT_CACHE:
            _FITS.popitem(last=False)
    return result


def clear_fit_cache() -> None:
    """Forget the kept fits (tests; memory: ≈ 1.5 MB per fit of 60 s)."""
    with _FITS_LOCK:
        _FITS.clear()
