"""Landmark empties the add-on places: an automatic guess as 68 empties ``iBUG_0`` … ``iBUG_67`` on a target.

- :func:`landmark_empties` — the scene's empties that :func:`voca_addon.blender.character.data.pairs_from_empties` reads (names
  ``iBUG_<k>``), split into the add-on's own (tagged ``voca_owned``) and the artist's.
- :func:`check_no_artist_empties` — refuses (InputError) when the artist made any of them: a guess never
  replaces or mixes with hand-placed landmarks.
- :func:`place_empties` — one empty per landmark k at the target vertex ``vertex_ids[k]`` (world position),
  in the add-on-owned collection ``VOCA landmarks <target>``, display size a small share of the head; the
  add-on's previous landmark empties in the scene are removed (last, so a failure before leaves them).

The empties are plain, unparented objects at world positions: dragging one and clicking Fit pairs FLAME's
landmark k with the target vertex nearest to where it now is.

Contract: main thread only (``bpy``); call :func:`place_empties` inside :func:`..transaction.all_or_nothing`
(created objects and collections are removed again on failure).
"""
from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ...core.errors import InputError
from .data import EMPTY_NAME, mesh_arrays
from ..speech.writer import OWNED

COLLECTION_PREFIX = "VOCA landmarks "    # + the target's name
LANDMARKS_OF = "voca_landmarks_of"      # custom property on each placed empty: the target's name then
DISPLAY_SHARE = 0.008                   # empty display size: this share of the head's world bounding-box diagonal
DISPLAY_TYPE = "SPHERE"


def landmark_empties(scene):
    """(the add-on's, the artist's) empties in ``scene`` named ``iBUG_<k>``: two lists of objects."""
    found = [o for o in scene.objects if o.type == "EMPTY" and EMPTY_NAME.match(o.name)]
    return [o for o in found if o.get(OWNED)], [o for o in found if not o.get(OWNED)]


def check_no_artist_empties(scene) -> None:
    """InputError when the scene holds ``iBUG_<k>`` empties that the add-on did not create."""
    artists = landmark_empties(scene)[1]
    if artists:
        names = ", ".join(sorted(o.name for o in artists)[:3]) + (", …" if len(artists) > 3 else "")
        raise InputError(f"the scene already has {len(artists)} landmark empt{'y' if len(artists) == 1 else 'ies'} "
                         f"you made ({names}); Guess Landmarks never replaces yours. Fit from them, or delete "
                         "or rename them to guess.")


def _collection(scene, target_name: str):
    """The add-on's landmark collection for ``target_name`` in ``scene`` (created and linked if needed).

    One already in this scene is reused; one linked only to another scene (or to none) is not: linking it
    here would bring that scene's empties along as duplicates (``iBUG_k.001``: one FLAME landmark in two
    pairs), so a new one is made (``VOCA landmarks <target>.001``) and the other scene keeps its own."""
    name = COLLECTION_PREFIX + target_name
    collection = bpy.data.collections.get(name)
    if collection is None or not collection.get(OWNED) or collection.library is not None or \
            collection not in scene.collection.children_recursive:
        collection = bpy.data.collections.new(name)
        collection[OWNED] = True
        scene.collection.children.link(collection)
    return collection


def world_points(obj, vertex_ids) -> np.ndarray:
    """World positions float64 [P, 3] of the mesh vertices ``vertex_ids`` of ``obj``."""
    vertices = mesh_arrays(obj)[0][np.asarray(vertex_ids)]
    matrix = np.array(obj.matrix_world)
    return vertices @ matrix[:3, :3].T + matrix[:3, 3]


def place_empties(scene, obj, vertex_ids) -> int:
    """Empties ``iBUG_<k>`` at the world positions of ``obj``'s vertices ``vertex_ids[k]``; returns how many
    of the add-on's earlier landmark empties were replaced. Call :func:`check_no_artist_empties` first."""
    points = world_points(obj, vertex_ids)
    every = world_points(obj, np.arange(len(obj.data.vertices)))
    size = float(np.linalg.norm(every.max(axis=0) - every.min(axis=0)))          # the head's diagonal
    collection = _collection(scene, obj.name)                    # never brings another scene's empties
    old = landmark_empties(scene)[0]                             # this scene's, the collection linked
    created = []
    for k, point in enumerate(points):
        empty = bpy.data.objects.new(f"iBUG_{k}", None)          # ``iBUG_<k>.001`` while an old one lives
        empty.empty_display_type = DISPLAY_TYPE
        empty.empty_display_size = max(size * DISPLAY_SHARE, 1e-6)
        empty.matrix_world = Matrix.Translation(point.tolist())  # location and matrix: right before a redraw
        empty[OWNED], empty[LANDMARKS_OF] = True, obj.name
        collection.objects.link(empty)
        created.append(empty)
    stale = {c for o in old for c in o.users_collection if c.get(OWNED) and c != collection}
    for empty in old:
        bpy.data.objects.remove(empty)
    for collection_left in stale:
        if not len(collection_left.all_objects):
            bpy.data.collections.remove(collection_left)
    for k, empty in enumerate(created):
        empty.name = f"iBUG_{k}"
    return len(old)
