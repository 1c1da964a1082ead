"""Emotion shape keys and their F-curves: the emotion half of the Blender writer.

What it writes: one relative shape key per :class:`~voca_addon.core.emotion.emotions.Emotion`, named
``EMO <name>``, holding ``basis.co + strength · delta`` (slider 0 … 2, value 0), so a value of 1 evaluates
to ``basis + strength · delta`` and a value ``w`` to ``basis + w · strength · delta``. Their values are
keyed in the add-on's action (the same owned, slotted action :mod:`.writer` writes the speech curves
into, created through its ``write_action`` when there is none yet), in the F-curve group
``"VOCA emotions"``; the speech curves live in the group ``"VOCA"``. An artist's own shape key can be
marked as an emotion (:func:`mark_as_emotion`) and is then keyed the same way; it is never deleted.

Ownership (custom properties on the Key datablock; ``ShapeKey`` blocks cannot hold custom properties):
``voca_emotion_keys`` lists the emotion keys the add-on created — :func:`add_emotion_keys` updates and
:func:`remove_emotion_keys` deletes only those; ``voca_marked_emotions`` lists the artist's keys marked as
emotions (a renamed key loses its mark). :mod:`.writer` neither lists nor removes emotion keys, so a
re-run of the speech animation keeps them and their curves. The artist's curves are never touched:
keying refuses a key whose value is driven, keyed in an action the add-on did not create, or keyed by
hand outside the ``"VOCA emotions"`` group.

Every function validates before it changes anything; user errors raise
:class:`~voca_addon.core.errors.VocaError` subclasses and leave the scene as it was.

Contract: main thread only (``bpy``). Imports ``bpy``, numpy, :mod:`voca_addon.core` and :mod:`.writer`
(whose private helpers for keys, action and bulk keyframes it reuses). Frames are scene frames; deltas
float32 [V, 3] in mesh-local units.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import bpy
import numpy as np

from ...core.emotion import emotions as core_emotions
from ...core.emotion.emotions import Emotion
from ...core.errors import InputError, MeshError
from .. import compat, keyframes
from ..speech import writer

EMOTION_PREFIX = "EMO "                       # shape-key name = prefix + emotion name
OWNED_EMOTIONS = "voca_emotion_keys"          # Key custom property: the add-on's emotion keys
MARKED_EMOTIONS = "voca_marked_emotions"      # Key custom property: artist keys marked as emotions
MARKED_VALUES = "voca_marked_values"          # Key custom property: {marked key: its value before the add-on keyed it}
GROUP = "VOCA emotions"                       # F-curve group of emotion curves in the add-on's action
ACTION_PREFIX = "VOCA"                        # action "VOCA_<object>" and slot "VOCA", like the writer
SLIDER_MIN, SLIDER_MAX = 0.0, 2.0             # range of the add-on's emotion keys
FRAME_EPS = 1e-3                              # frames: keys this close to a keyed range are replaced
MAX_KEY_NAME = 63                             # Blender's shape-key name limit (bytes)


def key_name(emotion: str) -> str:
    """The shape-key name of the add-on's key for ``emotion``."""
    return EMOTION_PREFIX + emotion


def _key(obj):
    return obj.data.shape_keys if obj is not None and obj.type == "MESH" else None


def _listed(key, prop: str) -> List[str]:
    return [str(n) for n in key.get(prop, [])] if key is not None else []


def emotion_keys(obj) -> Dict[str, str]:
    """{emotion name: shape-key name} of the emotion keys on ``obj`` (the add-on's and marked ones)."""
    key = _key(obj)
    if key is None:
        return {}
    found = {}
    for name in _listed(key, MARKED_EMOTIONS):
        if name in key.key_blocks:
            found[name] = name
    for name in _listed(key, OWNED_EMOTIONS):
        if name in key.key_blocks:
            found[name[len(EMOTION_PREFIX):] if name.startswith(EMOTION_PREFIX) else name] = name
    return found


def resolve_key(obj, name: str) -> str:
    """The shape-key name for an emotion name (or an emotion key's own name) on ``obj``.

    Raises
    ------
    InputError
        ``obj`` has no emotion key of that name.
    """
    found = emotion_keys(obj)
    if name in found:
        return found[name]
    if name in found.values():
        return name
    have = ", ".join(sorted(found)) or "none"
    raise InputError(f"'{getattr(obj, 'name', None)}' has no emotion key '{name}' (it has: {have}). Choose "
                     "an emotion source (a FLAME model .pkl gives the built-in presets) or add it with Add "
                     "emotions, or select your own shape key and use Mark as emotion.")


def _check_mesh(obj) -> None:
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the head mesh.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and try again.")
    key = obj.data.shape_keys
    if key is not None and not key.use_relative:
        raise MeshError(f"The shape keys of '{obj.name}' are absolute (Relative unchecked); emotion keys are "
                        "relative. Enable Relative in the Shape Keys panel or use another mesh.")


def check_add(obj, emotions: Sequence[Emotion], strength: float = 1.0) -> tuple:
    """Validate :func:`add_emotion_keys`' arguments; returns the emotions as a tuple. Changes nothing."""
    _check_mesh(obj)
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and strength > 0):
        raise InputError(f"The emotion strength must be a number > 0, got {strength!r}.")
    emotions = core_emotions.validate(list(emotions), len(obj.data.vertices))
    if not emotions:
        raise InputError("No emotions to add: the source holds none.")
    key = _key(obj)
    owned = set(_listed(key, OWNED_EMOTIONS))
    for emotion in emotions:
        name = key_name(emotion.name)
        if len(name.encode("utf-8")) > MAX_KEY_NAME:
            raise InputError(f"The emotion name '{emotion.name}' is too long for a shape key "
                             f"('{name}' has more than {MAX_KEY_NAME} bytes). Rename it.")
        if key is not None and name in key.key_blocks and name not in owned:
            raise InputError(f"'{obj.name}' already has a shape key '{name}' that VOCA did not create; "
                             "rename it (VOCA never replaces your keys).")
    return emotions


def add_emotion_keys(obj, emotions: Sequence[Emotion], strength: float = 1.0) -> List[str]:
    """One relative shape key ``EMO <name>`` per emotion holding ``basis + strength · delta``.

    A key of the same name the add-on made before gets the new shape in place (its position in the
    key list, value and keyframes stay); keys the add-on did not make are refused, never replaced.
    Creates the Basis (tagged ``voca_owned``) on a mesh without keys.

    Parameters
    ----------
    obj : bpy.types.Object
        A mesh whose vertex count equals every emotion's delta rows.
    emotions : sequence of Emotion
    strength : float
        Scale of the deltas stored in the keys (> 0).

    Returns
    -------
    list of str
        The names of the keys written (created or updated), in the emotions' order.

    Raises
    ------
    MeshError, InputError
        See :func:`check_add`; nothing is changed then.
    """
    emotions = check_add(obj, emotions, strength)
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
        obj.data.shape_keys[writer.OWNED] = True
    key = obj.data.shape_keys
    ref = writer.key_co(key.reference_key)
    owned = _listed(key, OWNED_EMOTIONS)
    written, created = [], []
    for emotion in emotions:
        name = key_name(emotion.name)
        co = ref + np.asarray(emotion.delta, np.float32) * np.float32(strength)
        block = key.key_blocks.get(name) if name in owned else None
        if block is not None:                        # ours already: new shape, same place, keys kept
            block.relative_key = key.reference_key
            block.data.foreach_set("co", np.ascontiguousarray(co, np.float32).ravel())
        else:
            block = writer.new_key(obj, name, co, created)
            block.value = 0.0
        block.slider_min, block.slider_max = SLIDER_MIN, SLIDER_MAX
        written.append(block.name)
    key[OWNED_EMOTIONS] = [n for n in owned if n in key.key_blocks] + created
    return written


def mark_as_emotion(obj, name: str) -> None:
    """Mark the artist's shape key ``name`` as an emotion, so it can be chosen and keyed like one.

    Raises
    ------
    InputError
        No such key, the reference key, or one of the add-on's speech keys.
    """
    _check_mesh(obj)
    key = _key(obj)
    if key is None or name not in key.key_blocks:
        raise InputError(f"'{getattr(obj, 'name', None)}' has no shape key '{name}'.")
    if key.key_blocks[name] == key.reference_key:
        raise InputError(f"'{name}' is the reference (Basis) key; sculpt the emotion in another key.")
    if name in _listed(key, writer.OWNED_KEYS):
        raise InputError(f"'{name}' is one of VOCA's speech keys, not an emotion.")
    if name in _listed(key, OWNED_EMOTIONS) or name in _listed(key, MARKED_EMOTIONS):
        return
    key[MARKED_EMOTIONS] = _listed(key, MARKED_EMOTIONS) + [name]


def unmark_emotion(obj, name: str) -> bool:
    """Remove the emotion mark of the artist's key ``name`` (the key stays); True if it was marked."""
    key = _key(obj)
    marked = _listed(key, MARKED_EMOTIONS)
    if name not in marked:
        return False
    marked.remove(name)
    key[MARKED_EMOTIONS] = marked
    return True


# ---------------------------------------------------------------------------- keying

def check_keyable(obj, name: str, peak: float = 1.0) -> str:
    """Validate that the emotion ``name`` can be keyed on ``obj`` to ``peak``; returns its key name.

    Raises
    ------
    InputError
        No such emotion key; its value is driven, or keyed in an action VOCA did not create, or keyed
        by hand in VOCA's action; ``peak`` outside the key's slider range.
    """
    _check_mesh(obj)
    name = resolve_key(obj, name)
    key = obj.data.shape_keys
    block = key.key_blocks[name]
    if not (isinstance(peak, (int, float)) and math.isfinite(peak)
            and block.slider_min <= peak <= block.slider_max):
        raise InputError(f"The value {peak!r} is outside the slider range {block.slider_min:g} … "
                         f"{block.slider_max:g} of '{name}'; choose a value inside it or widen the range.")
    path = keyframes.value_path(name)
    anim_data = key.animation_data
    if anim_data is None:
        return name
    if anim_data.drivers.find(path) is not None:
        raise InputError(f"The value of '{name}' is driven by a driver, which would override the keys; "
                         "remove the driver or key another emotion.")
    action = anim_data.action
    if action is not None and not action.get(writer.OWNED):
        raise InputError(f"The shape keys of '{obj.name}' are animated by the action '{action.name}', "
                         "which VOCA did not create. Unassign it (Shape Key Editor) or push it to the NLA, "
                         "then try again; VOCA never overwrites an artist's action.")
    fcurve = _find_curve(key, name)
    if fcurve is not None and (fcurve.group is None or fcurve.group.name != GROUP):
        raise InputError(f"'{name}' is already keyed by hand in '{action.name}'; delete those keys or mark "
                         "another key as the emotion (VOCA never edits your curves).")
    return name


def key_emotion(obj, name: str, start: float, end: float, ramp: float, peak: float = 1.0) -> str:
    """Key the emotion's value from 0 at ``start`` up to ``peak`` and back to 0 at ``end``.

    Smoothstep ramps of ``ramp`` frames (:func:`voca_addon.core.emotion.emotions.ease_curve`, one LINEAR key per
    ramp frame). Keys the curve already had inside ``[start, end]`` are replaced; keys outside stay, so
    several stretches of one emotion can follow each other.

    Returns
    -------
    str
        The shape key's name.

    Raises
    ------
    InputError
        See :func:`check_keyable` and :func:`~voca_addon.core.emotion.emotions.ease_curve`; nothing changes then.
    """
    frames, values = core_emotions.ease_curve(float(start), float(end), float(ramp), float(peak))
    name = check_keyable(obj, name, peak)
    _merge_keys(_ensure_curve(obj, name), frames, values, float(start), float(end))
    return name


def key_emotion_at(obj, name: str, frame: float, value: float) -> str:
    """One LINEAR key of the emotion's value at ``frame`` (replacing a key at that frame)."""
    if not (isinstance(frame, (int, float)) and math.isfinite(frame)):
        raise InputError(f"The frame must be a finite number, got {frame!r}.")
    name = check_keyable(obj, name, value)
    frames, values = np.array([float(frame)]), np.array([float(value)])
    _merge_keys(_ensure_curve(obj, name), frames, values, float(frame), float(frame))
    return name


def _find_curve(key, name: str):
    """The F-curve of key ``name``'s value in the Key's action (its assigned slot), or None."""
    return compat.find_fcurve(key.animation_data, keyframes.value_path(name))


def _ensure_curve(obj, name: str):
    """The emotion's F-curve in the add-on's action (action, slot and curve created when missing)."""
    key = obj.data.shape_keys
    fcurve = _find_curve(key, name)
    if fcurve is not None:
        return fcurve
    if name in _listed(key, MARKED_EMOTIONS):       # the artist's slider value, given back on removal
        values = dict(key.get(MARKED_VALUES, {}))
        values.setdefault(name, float(key.key_blocks[name].value))
        key[MARKED_VALUES] = values
    writer.write_action(key, [], f"{ACTION_PREFIX}_{obj.name}", ACTION_PREFIX)
    return compat.new_fcurve(key.animation_data, keyframes.value_path(name), index=0, group=GROUP)


def _merge_keys(fcurve, frames: np.ndarray, values: np.ndarray, lo: float, hi: float) -> None:
    """Replace the curve's keys in ``[lo, hi]`` by (frames, values), LINEAR, in bulk."""
    points = fcurve.keyframe_points
    co = np.empty(len(points) * 2, np.float32)
    points.foreach_get("co", co)
    inside = np.flatnonzero((co[0::2] >= lo - FRAME_EPS) & (co[0::2] <= hi + FRAME_EPS))
    for index in inside[::-1]:                      # a few keys from an earlier keying of this range
        points.remove(points[int(index)], fast=True)
    kept = len(points)
    co = np.empty(kept * 2, np.float32)
    points.foreach_get("co", co)
    interpolation = np.empty(kept, np.int32)
    points.foreach_get("interpolation", interpolation)
    points.add(len(frames))
    new = np.column_stack([frames, values]).astype(np.float32).ravel()
    points.foreach_set("co", np.concatenate([co, new]))
    points.foreach_set("interpolation", np.concatenate(
        [interpolation, np.full(len(frames), keyframes.LINEAR, np.int32)]))
    fcurve.update()                                 # sorts the keys and recomputes handles


def _remove_curve(key, name: str) -> bool:
    """Delete the add-on's emotion curve of key ``name`` (only a curve in the GROUP); True if one was."""
    fcurve = _find_curve(key, name)
    if fcurve is None or fcurve.group is None or fcurve.group.name != GROUP:
        return False
    action = key.animation_data.action
    if not action.get(writer.OWNED):
        return False
    return compat.remove_fcurve(action, fcurve)


def remove_emotion_keys(obj) -> int:
    """Remove the add-on's emotion keys and every emotion curve it keyed (marked keys keep their mark and get
    back the value they had before the add-on keyed them).

    An owned action left without curves is deleted. Returns the number of keys removed.
    """
    key = _key(obj)
    if key is None:
        return 0
    owned = _listed(key, OWNED_EMOTIONS)
    for name in owned + _listed(key, MARKED_EMOTIONS):
        _remove_curve(key, name)
    values = dict(key.get(MARKED_VALUES, {}))
    for name, value in values.items():              # a marked key holds its last keyed value without the curve
        block = key.key_blocks.get(name)
        if block is not None and _find_curve(key, name) is None:
            block.value = value
    if MARKED_VALUES in key:
        del key[MARKED_VALUES]
    removed = writer.remove_key_blocks(obj, owned)
    if OWNED_EMOTIONS in key:
        del key[OWNED_EMOTIONS]
    _drop_empty_action(key)
    anim_data = key.animation_data
    busy = anim_data is not None and (anim_data.action or anim_data.drivers or anim_data.nla_tracks)
    if key.get(writer.OWNED) and len(key.key_blocks) == 1 and not busy:
        obj.shape_key_clear()           # only the Basis the add-on created is left
    return removed


def _drop_empty_action(key) -> None:
    anim_data = key.animation_data
    action = anim_data.action if anim_data else None
    if action is None or not action.get(writer.OWNED) or action.users > 1:
        return
    if next(compat.action_fcurves(action), None) is None:
        anim_data.action = None
        bpy.data.actions.remove(action)
