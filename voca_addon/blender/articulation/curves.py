"""The curves and key shapes :mod:`voca_addon.blender.articulation.writer` rewrites, each only when its data changed and never
over an artist's edit.

A curve (or correction key shape) is written with one ``foreach_set``; its float32 data's digest
(``digests[name]``, BLAKE2b, kept in the Key's stored group) records what the add-on last wrote. New data whose
digest equals the recorded one is not even read; otherwise the current data are read once: a digest that
differs from the recorded one means the artist edited it, and it is left (and named by the caller). So does a
keyframe whose interpolation is no longer the one the add-on wrote (an artist's Bezier, whose handles a
rewrite of the values alone would leave stale between the frames).

Contract: main thread only (``bpy``). Imports ``bpy`` (through :mod:`..compat`, :mod:`..keyframes`), numpy and
:mod:`.writer`. Arrays: float32.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .. import compat, keyframes
from ..speech import writer

SHAPE = "shape:"                        # digest name prefix of a correction key's shape
DELETED = " (deleted)"                  # an edited-list suffix: a curve the add-on wrote, deleted by the artist


def digest(points: np.ndarray) -> str:
    """BLAKE2b (12 bytes, hex) of ``points`` as float32 (no copy when they are float32 already)."""
    return hashlib.blake2b(np.ascontiguousarray(points, np.float32), digest_size=12).hexdigest()


def shape_edited(block, digests: dict, current: "str | None" = None) -> bool:
    """Whether the add-on wrote ``block``'s shape and it was sculpted since (``current``: its digest, when
    already computed)."""
    recorded = digests.get(SHAPE + block.name)
    return recorded is not None and (current or digest(writer.key_co(block))) != recorded


def curve_edited(fcurve, name: str, digests: dict, interpolation: int, current: "str | None" = None) -> bool:
    """Whether the add-on wrote ``name``'s curve and it was edited since: other points (``current``: their
    digest, when already computed), or a key of another interpolation than the add-on's."""
    if name not in digests:
        return False
    points = current or digest(keyframes.curve_points(fcurve))
    return points != digests[name] or keyframes.interpolations_other_than(fcurve, interpolation)


def write_shape(block, target: np.ndarray, digests: dict, edited: list) -> int:
    """Give a correction key ``target`` (float32 [V, 3]: the Basis + the field solved for this phone track;
    it follows the track, not the knobs), unless the artist sculpted the key since: then it is left and
    named like an edited curve. Data hashing like what the add-on last wrote are not read."""
    name = SHAPE + block.name
    new = digest(target)
    if digests.get(name) == new:
        return 0                        # unchanged (or sculpted since: left) — no read
    current = digest(writer.key_co(block))
    if current == new:
        digests[name] = new
        return 0
    if shape_edited(block, digests, current):
        edited.append(f"{block.name} (shape)")
        return 0
    block.data.foreach_set("co", np.ascontiguousarray(target, np.float32).ravel())
    digests[name] = new
    return 1


def support(weights: np.ndarray) -> tuple:
    """(frame offsets float64 [N], values float32 [N]) to key: the non-zero frames and one zero key on each
    side of every run of them (LINEAR between keys gives the exact zeros elsewhere); one zero key when the
    curve is zero throughout."""
    nonzero = weights != 0
    keep = nonzero.copy()
    keep[1:] |= nonzero[:-1]
    keep[:-1] |= nonzero[1:]
    if not keep.any():
        keep[0] = True
    index = np.flatnonzero(keep)
    return index.astype(np.float64), weights[index]


def write_curve(key, name: str, frames, values, interpolation: int, group: str, digests: dict,
                edited: list, force: bool = False) -> int:
    """Key ``name``'s curve to (frames, values) unless the artist edited it since the add-on last wrote it.

    A curve the add-on wrote (its digest is recorded) and the artist deleted counts as an edit: it stays
    deleted and is named ``"NAME (deleted)"`` in ``edited``, unless ``force`` (the Re-apply button) brings it
    back. Returns 1 when the curve was (re)written, else 0. The new points' digest is recorded in ``digests``.
    """
    anim_data = key.animation_data
    path = keyframes.value_path(name)
    fcurve = compat.find_fcurve(anim_data, path)
    new = np.empty((len(frames), 2), np.float32)
    new[:, 0], new[:, 1] = frames, values
    new_digest = digest(new)
    if fcurve is not None and digests.get(name) == new_digest:
        return 0                        # what the add-on last wrote: unchanged (or edited: left) — no read
    if fcurve is None and name in digests and not force:
        edited.append(name + DELETED)
        return 0
    if fcurve is not None:
        current = keyframes.curve_points(fcurve)
        was = digest(current)
        if curve_edited(fcurve, name, digests, interpolation, was):
            edited.append(name)
            return 0
        if was == new_digest:
            digests[name] = new_digest
            return 0
        if len(fcurve.keyframe_points) == len(new) and np.array_equal(current[:, 0], new[:, 0]):
            fcurve.keyframe_points.foreach_set("co", new.ravel())      # same frames: still sorted; no
            # fcurve.update(): it would only move the handles, which LINEAR / CONSTANT keys do not use (1 ms)
            digests[name] = new_digest
            return 1
        if not len(fcurve.keyframe_points):             # samples (a long clip): back to keys, then none
            fcurve.convert_to_keyframes(int(current[0, 0]), int(current[-1, 0]) + 1)
        fcurve.keyframe_points.clear()      # the same curve, emptied: a new one is not evaluated by 4.5's
    else:                                   # depsgraph until its relations are rebuilt
        fcurve = compat.new_fcurve(anim_data, path, index=0, group=group)
    keyframes.set_keyframes(fcurve, new[:, 0].astype(np.float64), new[:, 1], interpolation)
    digests[name] = digest(keyframes.curve_points(fcurve))
    return 1


__all__ = ["SHAPE", "support", "write_curve", "write_shape", "digest", "curve_edited", "shape_edited"]
