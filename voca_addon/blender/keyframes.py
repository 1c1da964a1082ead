"""F-curve keyframes in bulk, and compact samples for long clips.

Every curve the add-on writes goes through :func:`set_keyframes`: one ``keyframe_points.add`` and one
``foreach_set`` per attribute (the data path glTF's importer uses too), never a Python loop per key.

A Blender keyframe (``BezTriple``) takes 72 bytes, and saving a ``.blend`` needs about as much again
while it writes: an hour of speech at 60 fps is 216,000 keys on each of 50 curves, about 0.8 GB in
memory and 1.5 GB at the save's peak (measured with bpy 5.0.1). A curve with a key on every integer
frame, LINEAR between them, is exactly what Blender's *samples* (``FPoint``, 16 bytes each) hold:
Blender evaluates samples by linear interpolation between integer frames, so a curve converted with
``FCurve.convert_to_samples`` evaluates to the same value at every frame and every subframe from frame 0
on (Blender finds a subframe's samples by truncating the frame number, which is one frame off below 0).
Curves longer than :data:`COMPACT_FRAMES` that start at frame 0 or later are therefore converted, one
curve at a time (the transient keys of one curve are 15 MB for an hour). They show as a line in the Graph
Editor; *Channel › Samples to Keys* turns them back into editable keys.

Contract: main thread only (``bpy``); numpy arrays in, nothing returned.
"""
from __future__ import annotations

import bpy
import numpy as np

CONSTANT, LINEAR = 0, 1          # integer values of the Keyframe.interpolation enum (foreach_set)
COMPACT_FRAMES = 18_000          # keys per curve above which a per-frame curve becomes samples (5 min at 60 fps)


def value_path(key_name: str) -> str:
    """RNA path of a shape key's value, relative to the Key datablock."""
    return f'key_blocks["{bpy.utils.escape_identifier(key_name)}"].value'


def set_keyframes(fcurve, frames: np.ndarray, values: np.ndarray, interpolation: int,
                  compact: bool | None = None) -> bool:
    """All keyframes of a curve in one ``add`` + ``foreach_set`` (frames sorted ascending).

    Parameters
    ----------
    fcurve : bpy.types.FCurve
        A curve without keys.
    frames : ndarray [N]
        Scene frames, ascending.
    values : ndarray [N]
    interpolation : int
        :data:`CONSTANT` or :data:`LINEAR`.
    compact : bool or None
        Store the curve as samples (see the module docstring). ``None``: when it has more than
        :data:`COMPACT_FRAMES` keys. Only a LINEAR curve keyed on consecutive integer frames from frame 0
        on is converted (elsewhere samples would not evaluate the same).

    Returns
    -------
    bool
        Whether the curve was stored as samples.
    """
    points = fcurve.keyframe_points
    points.add(len(frames))
    co = np.empty((len(frames), 2), dtype=np.float32)
    co[:, 0], co[:, 1] = frames, values
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", np.full(len(frames), interpolation, dtype=np.int32))
    fcurve.update()
    if compact is None:
        compact = len(frames) > COMPACT_FRAMES
    if not (compact and interpolation == LINEAR and _every_frame(frames)):
        return False
    fcurve.convert_to_samples(int(frames[0]), int(frames[-1]) + 1)      # the end frame is exclusive
    return True


def _every_frame(frames: np.ndarray) -> bool:
    """Consecutive integer frames from 0 on (at least two)."""
    frames = np.asarray(frames, dtype=np.float64)
    return (len(frames) > 1 and frames[0] >= 0 and bool(np.all(frames == np.round(frames)))
            and bool(np.all(np.diff(frames) == 1.0)))


def interpolations_other_than(fcurve, interpolation: int) -> bool:
    """Whether any keyframe of ``fcurve`` has another interpolation than ``interpolation`` (an artist set
    Bezier, say; samples have none)."""
    points = fcurve.keyframe_points
    if not len(points):
        return False
    kinds = np.empty(len(points), np.int32)
    points.foreach_get("interpolation", kinds)
    return bool((kinds != interpolation).any())


def curve_points(fcurve) -> np.ndarray:
    """(frame, value) of a curve's keyframes or samples, float32 [N, 2]."""
    points = fcurve.keyframe_points if len(fcurve.keyframe_points) else fcurve.sampled_points
    co = np.empty(len(points) * 2, np.float32)
    points.foreach_get("co", co)
    return co.reshape(-1, 2)
