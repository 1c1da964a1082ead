"""What the artist's file holds, as plain JSON, to prove a run changed nothing (or exactly what it should).

Runs INSIDE Blender (imported by :mod:`gui_driver`). :func:`snapshot` lists every object, mesh, shape key
(name, value, mute, relative key, a digest of its coordinates), action (name, users, every F-curve's
data path and keyframe points), sequencer strip and sound, and the scene's frame range and rate.
UI state is left out on purpose: the current frame (the suite scrubs it) and ``scene.voca``'s progress
fields. Version differences (legacy vs slotted actions, ``sequences`` vs ``strips``) go through the
installed add-on's ``blender.compat``.

Contract: imports ``bpy``, ``numpy`` and the installed add-on's compat module; main thread only.
"""
from __future__ import annotations

import hashlib
import importlib

import bpy
import numpy as np

ADDON = "bl_ext.user_default.voca_addon"


def compat():
    return importlib.import_module(ADDON + ".blender.compat")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _key_blocks(mesh) -> list:
    key = mesh.shape_keys
    if key is None:
        return []
    out = []
    for block in key.key_blocks:
        co = np.empty(len(block.data) * 3, np.float32)
        block.data.foreach_get("co", co)
        out.append([block.name, round(block.value, 6), block.mute, block.relative_key.name, _digest(co)])
    action = key.animation_data.action.name if key.animation_data and key.animation_data.action else None
    return [action, sorted(key.keys()), out]


def _object(obj) -> dict:
    data = obj.data
    entry = {"type": obj.type, "data": data.name if data else None,
             "matrix": _digest(np.array(obj.matrix_world, np.float32)), "props": sorted(obj.keys())}
    if obj.type == "MESH":
        co = np.empty(len(data.vertices) * 3, np.float32)
        data.vertices.foreach_get("co", co)
        entry.update(vertices=len(data.vertices), co=_digest(co), keys=_key_blocks(data))
    return entry


def _action(action) -> dict:
    curves = []
    for fc in compat().action_fcurves(action):
        co = np.empty(len(fc.keyframe_points) * 2, np.float32)
        fc.keyframe_points.foreach_get("co", co)
        curves.append([fc.data_path, fc.array_index, len(fc.keyframe_points), _digest(co)])
    return {"users": action.users, "props": sorted(action.keys()), "fcurves": sorted(curves)}


def _strips(scene) -> list:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return sorted([s.name, s.type, s.channel, s.frame_start, s.frame_final_end, sorted(s.keys())]
                  for s in compat().all_sequencer_strips(editor))


SNAPSHOT_FRAME = 1                  # shape-key values are read at this frame


def snapshot() -> dict:
    """The artist-visible state of the file (JSON-ready); shape-key values at :data:`SNAPSHOT_FRAME`."""
    scene = bpy.context.window_manager.windows[0].scene
    kept = scene.frame_current
    scene.frame_set(SNAPSHOT_FRAME)
    try:
        return _snapshot(scene, bpy.context.window_manager.windows[0].view_layer)
    finally:
        scene.frame_set(kept)


def _snapshot(scene, layer) -> dict:
    return {
        "objects": {o.name: _object(o) for o in bpy.data.objects},
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "keys": sorted(k.name for k in bpy.data.shape_keys),
        "actions": {a.name: _action(a) for a in bpy.data.actions},
        "sounds": sorted(s.name for s in bpy.data.sounds),
        "strips": _strips(scene),
        "scene": [scene.name, scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base],
        "active": getattr(layer.objects.active, "name", None),
    }


def changes(before: dict, after: dict) -> list:
    """The top-level entries that differ between two snapshots, with both values (empty when equal)."""
    return [[name, before.get(name), after.get(name)] for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)]


def evaluated_vertices(obj_name: str, frame: int) -> np.ndarray:
    """The head's mesh after shape keys at ``frame``: float32 [V, 3], mesh-local (FLAME metres)."""
    scene = bpy.context.window_manager.windows[0].scene
    scene.frame_set(frame)
    obj = bpy.data.objects[obj_name]
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)
