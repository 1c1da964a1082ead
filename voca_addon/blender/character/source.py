"""A FLAME head animated by Animate from audio, read back as the animation it plays: the Character
stage's source without a file.

Animate from audio (and Import sequence) write, through :mod:`.writer` in its ``'shape_keys'`` mode, on a
5023-vertex head: keys ``<P>_<name>`` holding ``Basis + s_k · basis[k]``, their LINEAR curves
``weights[:, k] / s_k`` on every scene frame of the clip (resampled to the scene's rate), and the key
``<P>_bias`` (``Basis + bias``) held at 1, all in an add-on-owned action; the key names are listed in the
Key's ``voca_owned_keys`` (bias last) and the scales ``s_k`` in ``voca_key_scales``. :func:`head_animation`
inverts that::

    basis[k] = (key_k − Basis) / s_k        weights[:, k] = s_k · curve_k(frame), frame = first … last
    bias     = (bias key − Basis) · its value (a constant curve)
    fps      = the scene's rate             start = the first keyed frame

so Transfer / Drive key the character on the head's own frames, at the scene's rate, from the same
numbers the head plays (float32 rounding). A curve edited off the frame grid is read as Blender plays it:
CONSTANT / LINEAR keys in bulk, Bezier keys and any curve with modifiers (Noise, Cycles…) evaluated by
Blender at each frame; a bias curve that is not constant becomes one more basis row (``bias``); a muted key
counts 0. Every other key the head's VOCA action animates — the emotion keys (``EMO <name>``, its own or
ones marked as emotions), the blink (``VOCA blink`` → ``blink``) — becomes one more row (key − its
relative key) with its curve over the same frames, so the reading is everything the head's shape keys
play over the clip. The lip closures (the keys listed in the Key's ``voca_correction_keys``:
``voca_lips_close`` / ``voca_lips_tuck``) are read the same way but kept apart, as the animation's
``corrections`` (transferred as corrections, VOCA's rows stay exact; muted with the closures off: 0). Head and eye motion (object / bone rotations) and the FLAME rig's correctives
(drivers) are not shape-key curves and stay on the head. The sound strip, the head and its action are
only read.

Contract: main thread only (``bpy``); user errors raise :class:`~voca_addon.core.errors.InputError`;
nothing is changed. Units: the head's mesh units (FLAME: metres), float32 arrays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...core.animation.shapekeys import Corrections, ShapeKeyAnimation
from ...core.errors import InputError
from .. import compat, keyframes
from ..speech import writer
from ..articulation.writer import CORRECTION_KEYS

BIAS_NAME = re.compile(r"^(?P<prefix>.+)_bias(\.\d+)?$")       # the writer's bias key (Blender may add .001)


@dataclass(frozen=True)
class HeadMotion:
    """The speech animation a head plays: ``animation`` at the scene's rate, its first ``start_frame``."""

    animation: ShapeKeyAnimation
    start_frame: int
    head_name: str

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.animation.num_frames - 1


def head_problem(obj) -> Optional[str]:
    """Why ``obj`` cannot be a source head (reads properties only), or None."""
    if obj is None:
        return "pick the FLAME head animated by Animate from audio (Head), or choose a sequence file."
    if obj.type != "MESH" or len(obj.data.vertices) != writer.FLAME_VERTICES:
        return (f"'{obj.name}' is not a FLAME head ({writer.FLAME_VERTICES} vertices); pick the head "
                "Animate from audio animated.")
    key = obj.data.shape_keys
    owned = list(key.get(writer.OWNED_KEYS, [])) if key is not None else []
    if not owned:
        return f"'{obj.name}' has no VOCA animation: run Animate from audio on it first, or choose a sequence file."
    if BIAS_NAME.match(owned[-1]) is None:
        return (f"'{obj.name}' holds VOCA's per-frame keys, which cannot be retargeted: run Animate from "
                "audio again with Mode 'Shape keys'.")
    action = key.animation_data.action if key.animation_data else None
    if action is None or not action.get(writer.OWNED):
        return (f"the VOCA keys of '{obj.name}' are not keyed by VOCA's action (it was unassigned or "
                "replaced): run Animate from audio on it again.")
    return None


def _points(fcurve) -> np.ndarray:
    """(frame, value) of a curve's keyframes, or of its samples for a long clip: float64 [N, 2]."""
    return keyframes.curve_points(fcurve).astype(np.float64)


EXACT_KEY = 0.02        # frames: a key this near an integer frame, not on it, is left to Blender (which takes a key
                        # within its search threshold, 1e-4 or BEZT_BINARYSEARCH_THRESH 0.01, as the frame's own)


def _bulk(fcurve, frames: np.ndarray) -> Optional[np.ndarray]:
    """A curve without modifiers at ``frames``, in numpy, as Blender evaluates it; None where only Blender can
    (a Bezier or easing segment, keys sharing a frame or sitting just off an integer frame).

    CONSTANT keys hold their value up to the next key, LINEAR ones interpolate, samples (``FPoint``) interpolate
    between integer frames; a key exactly on a frame gives its value. Before the first and after the last key
    Blender holds the end value (constant extrapolation); with the curve's LINEAR extrapolation those frames
    are left to ``evaluate``."""
    points = _points(fcurve)
    if not len(points):
        return None
    x, y = points[:, 0], points[:, 1]
    if np.any(np.diff(x) <= 0):
        return None
    values = np.interp(frames, x, y)                     # LINEAR between keys, the end values outside
    if len(fcurve.keyframe_points):
        ipo = np.empty(len(x), np.int32)
        fcurve.keyframe_points.foreach_get("interpolation", ipo)
        if not np.all(np.isin(ipo[:-1], (keyframes.CONSTANT, keyframes.LINEAR))):   # the last key's: unused
            return None
        off = np.abs(x - np.round(x))
        if np.any((off > 0) & (off < EXACT_KEY)):
            return None
        start = np.clip(np.searchsorted(x, frames, side="right") - 1, 0, len(x) - 1)   # the segment's key
        step = ipo[start] == keyframes.CONSTANT
        values[step] = y[start[step]]
    outside = (frames < x[0]) | (frames > x[-1])
    if fcurve.extrapolation != "CONSTANT" and np.any(outside):
        values[outside] = [fcurve.evaluate(float(f)) for f in frames[outside]]
    return values


def _values(fcurve, block, frames: np.ndarray) -> np.ndarray:
    """The key's value at each frame as Blender plays it: float32 [F].

    The writer's per-frame curve is read as it is, CONSTANT / LINEAR keys are evaluated in bulk
    (:func:`_bulk`); ``FCurve.evaluate`` runs per frame only for Bezier keys and for a curve with modifiers
    (Noise, Cycles…: only Blender knows what they do)."""
    if block.mute:
        return np.zeros(len(frames), np.float32)
    if fcurve is None or fcurve.mute:
        return np.full(len(frames), block.value, np.float32)
    values = None
    if not len(fcurve.modifiers):
        points = _points(fcurve)
        if len(points) == len(frames) and np.array_equal(points[:, 0], frames):
            values = points[:, 1]                               # the writer's grid: its exact values
        else:
            values = _bulk(fcurve, frames)
    if values is None:
        values = np.array([fcurve.evaluate(float(f)) for f in frames])
    return np.clip(values, block.slider_min, block.slider_max).astype(np.float32)


def _clip_frames(anim_data, names) -> np.ndarray:
    """Every scene frame from the first to the last keyed frame of the speech curves (float64 [F])."""
    firsts, lasts = [], []
    for name in names:
        fcurve = compat.find_fcurve(anim_data, keyframes.value_path(name))
        if fcurve is not None and not fcurve.mute:
            points = _points(fcurve)
            if len(points):
                firsts.append(points[0, 0])
                lasts.append(points[-1, 0])
    if not firsts:
        raise InputError("the head's VOCA keys have no keyframes left: run Animate from audio on it again.")
    return np.arange(round(min(firsts)), round(max(lasts)) + 1, dtype=np.float64)


def _delta(block) -> np.ndarray:
    """What a key adds at value 1: its shape minus its relative key's, float32 [V, 3]."""
    return writer.key_co(block) - writer.key_co(block.relative_key)


def _other_name(name: str, prefix: str) -> str:
    """A non-speech key's name on the character: ``EMO happy`` stays, ``VOCA blink`` becomes ``blink``."""
    own = prefix.rstrip("_") + " "
    return name[len(own):] if name.startswith(own) else name


def head_animation(obj, scene) -> HeadMotion:
    """The speech animation ``obj`` plays (see the module docstring); InputError when it has none."""
    problem = head_problem(obj)
    if problem:
        raise InputError(problem)
    key = obj.data.shape_keys
    owned = list(key[writer.OWNED_KEYS])
    prefix = BIAS_NAME.match(owned[-1]).group("prefix") + "_"
    missing = [n for n in owned if key.key_blocks.get(n) is None]
    if missing:
        raise InputError(f"the VOCA key '{missing[0]}' of '{obj.name}' was deleted or renamed: run Animate "
                         "from audio on it again.")
    scales, anim_data = dict(key.get(writer.KEY_SCALES, {})), key.animation_data
    frames = _clip_frames(anim_data, owned[:-1])
    rows, columns, names = [], [], []
    corrective = {str(n) for n in key.get(CORRECTION_KEYS, [])}
    fixes = ([], [], [])                                        # the lip closures: rows, columns, names

    def add(block, name: str, scale: float = 1.0, into=(rows, columns, names)) -> None:
        fcurve = compat.find_fcurve(anim_data, keyframes.value_path(block.name))
        into[0].append(_delta(block) / np.float32(scale))
        into[1].append(_values(fcurve, block, frames) * np.float32(scale))
        into[2].append(name)

    for name in owned[:-1]:                                     # the speech keys, in the writer's order
        add(key.key_blocks[name], name[len(prefix):] if name.startswith(prefix) else name,
            float(scales.get(name, 1.0)))
    for block in key.key_blocks:                                # emotion keys, the blink: keyed in VOCA's action
        if block != key.reference_key and block.name not in owned and \
                compat.find_fcurve(anim_data, keyframes.value_path(block.name)) is not None:
            add(block, *((block.name, 1.0, fixes) if block.name in corrective else (_other_name(block.name, prefix),)))
    bias_block = key.key_blocks[owned[-1]]
    bias_values = _values(compat.find_fcurve(anim_data, keyframes.value_path(owned[-1])), bias_block, frames)
    if np.all(bias_values == bias_values[0]):
        bias = _delta(bias_block) * bias_values[0]
    else:                                                       # an edited bias curve: one more row
        bias = np.zeros_like(rows[0])
        add(bias_block, "bias")
    corrections = None if not fixes[0] else Corrections(
        np.stack(fixes[0]).astype(np.float32), np.stack(fixes[1], axis=1).astype(np.float32), tuple(fixes[2]))
    anim = ShapeKeyAnimation(np.stack(rows).astype(np.float32), bias.astype(np.float32),
                             np.stack(columns, axis=1).astype(np.float32), writer.scene_fps(scene),
                             writer.key_co(key.reference_key), tuple(names), corrections)
    return HeadMotion(anim, int(frames[0]), obj.name)
