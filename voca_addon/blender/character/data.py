"""Blender data ↔ the Character stage: a target's arrays, landmarks from empties, the fit kept on the object.

- :func:`mesh_arrays` — mesh-local vertices float64 [V, 3] and triangles int [T, 3] (Blender's own
  ``loop_triangles``: quads and n-gons triangulated), bulk ``foreach_get``.
- :func:`pairs_from_empties` — empties named ``iBUG_<k>`` (k = 0..67, the iBUG landmark number) placed on
  the target: each pairs FLAME's landmark vertex k with the target vertex nearest to it.
- :func:`store_fit` / :func:`load_fit` — the :class:`~voca_addon.core.character.fit.Fit` as the object's
  ID property ``voca_fit`` (saved with the .blend), with a fingerprint of the vertices it was made for:
  a later Transfer or Drive uses it directly, and refuses it once the mesh changed.
- :func:`rig_keys` — the target's own keys to drive: ARKit-named ones when there are any (tolerant
  matching), else every key the add-on did not create.

Contract: main thread only (``bpy``); numpy + core; user errors raise VocaError subclasses.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
from scipy.spatial import cKDTree

from ...core.character import arkit, fit as fitting, landmarks as lm
from ...core.character.align import Similarity
from ...core.errors import InputError
from ..speech import writer

FIT_PROPERTY = "voca_fit"
EMPTY_NAME = re.compile(r"^iBUG[_ .-]?(\d+)(\.\d+)?$", re.I)


def mesh_arrays(obj):
    """(vertices float64 [V, 3] mesh-local, triangles int64 [T, 3]) of a mesh object's data."""
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", co)
    mesh.calc_loop_triangles()
    tris = np.empty(len(mesh.loop_triangles) * 3, np.int64)
    mesh.loop_triangles.foreach_get("vertices", tris)
    return co.reshape(-1, 3), tris.reshape(-1, 3)


def pairs_from_empties(obj, objects):
    """Landmark pairs from empties named ``iBUG_<k>``: (FLAME ids, target vertex ids), int64 [P]."""
    vertices, _ = mesh_arrays(obj)
    to_local = np.array(obj.matrix_world.inverted())
    flame_ids, points = [], []
    for empty in objects:
        match = EMPTY_NAME.match(empty.name) if empty.type == "EMPTY" else None
        if match and int(match.group(1)) < len(lm.FLAME_IBUG68):
            flame_ids.append(lm.FLAME_IBUG68[int(match.group(1))])
            world = np.append(np.array(empty.matrix_world.translation), 1.0)
            points.append((to_local @ world)[:3])
    if not flame_ids:
        raise InputError("no landmark empties found: add empties named iBUG_0 … iBUG_67 on the target's "
                         "face (the iBUG 68-point numbering), or choose a pairs file.")
    _, target_ids = cKDTree(vertices).query(np.array(points))
    return np.array(flame_ids, np.int64), np.asarray(target_ids, np.int64)


def fingerprint(vertices: np.ndarray) -> str:
    """SHA-1 of the float32 vertex coordinates (detects an edited mesh)."""
    return hashlib.sha1(np.ascontiguousarray(vertices, np.float32).tobytes()).hexdigest()


def store_fit(obj, fit: fitting.Fit, vertices: np.ndarray) -> None:
    """Keep ``fit`` on ``obj`` (ID property ``voca_fit``)."""
    s = fit.similarity
    obj[FIT_PROPERTY] = {
        "scale": float(s.scale), "rotation": s.rotation.ravel().tolist(), "translation": s.translation.tolist(),
        "flame": fit.flame.ravel().tolist(), "roles": fit.roles.tolist(), "eye_side": fit.eye_side.tolist(),
        "residuals": json.dumps(fit.residuals), "fingerprint": fingerprint(vertices)}


def load_fit(obj, vertices: np.ndarray, template_faces: np.ndarray) -> fitting.Fit:
    """The fit kept on ``obj``; InputError when there is none or the mesh changed since."""
    data = obj.get(FIT_PROPERTY)
    if data is None:
        raise InputError(f"'{obj.name}' has not been fitted yet: click Fit first.")
    if data["fingerprint"] != fingerprint(vertices):
        raise InputError(f"'{obj.name}' changed since it was fitted (vertices moved or added): click Fit again.")
    similarity = Similarity(float(data["scale"]), np.array(data["rotation"]).reshape(3, 3),
                            np.array(data["translation"]))
    return fitting.Fit(similarity, np.array(data["flame"]).reshape(-1, 3),
                       fitting.flame_surface(template_faces).astype(np.int32),
                       np.array(data["roles"], np.int8), np.array(data["eye_side"], np.int8),
                       json.loads(data["residuals"]))


def residuals(obj):
    """The stored fit's residual figures (dict), or None."""
    data = obj.get(FIT_PROPERTY)
    return json.loads(data["residuals"]) if data is not None else None


def rig_keys(obj):
    """(names, deltas float64 [K, V, 3]) of the keys to drive: ARKit-named ones, else all not VOCA's."""
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        raise InputError(f"'{obj.name}' has no shape keys of its own to drive; add its ARKit (or other) keys, "
                         "or use Transfer.")
    owned = set(key.get(writer.OWNED_KEYS, []))
    candidates = [b for b in key.key_blocks if b != key.reference_key and b.name not in owned]
    matched = arkit.match_arkit([b.name for b in candidates])
    blocks = [b for b in candidates if b.name in matched] or candidates
    if not blocks:
        raise InputError(f"'{obj.name}' has only VOCA's keys; add the character's own keys to drive them.")
    ref = writer.key_co(key.reference_key).astype(np.float64)
    deltas = np.stack([writer.key_co(b).astype(np.float64) - ref for b in blocks])
    return [b.name for b in blocks], deltas
