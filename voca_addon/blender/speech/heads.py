"""Which FLAME head a run animates, and its rest shape (the animation's template when the head exists).

Used by the headless ``animate`` command and available to the operators: a scene that already holds a
FLAME head needs no template file, because VOCA's output is ``template + offsets`` and the head's own
rest shape (its Basis shape key, else its mesh) is that template.

Contract: main thread only (``bpy`` objects are passed in; ``bpy`` itself is not imported here).
Units: the mesh's own (FLAME: metres, Y up); float64 [V, 3] arrays.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...core.errors import InputError
from . import pipeline


def rest_shape(obj) -> np.ndarray:
    """float64 [V, 3]: ``obj``'s rest shape (its Basis shape key, else its mesh vertices)."""
    keys = obj.data.shape_keys
    points = keys.reference_key.data if keys is not None and keys.reference_key is not None else obj.data.vertices
    flat = np.empty(len(points) * 3, np.float32)
    points.foreach_get("co", flat)
    return flat.reshape(-1, 3).astype(np.float64)


def find_head(context, scene, name: Optional[str] = None):
    """The head named ``name``; else the active usable FLAME head, else the scene's only one, else None.

    Raises
    ------
    InputError
        ``name`` is not a usable head, or several heads and none active (the user must name one).
    """
    if name:
        obj = scene.objects.get(name)
        problem = pipeline.target_problem(obj) if obj is not None else f"The scene has no object '{name}'."
        if problem:
            raise InputError(problem)
        return obj
    active = context.view_layer.objects.active if context.scene == scene else None
    if active is not None and pipeline.target_problem(active) is None:
        return active
    heads = [o for o in scene.objects if pipeline.target_problem(o) is None]
    if len(heads) > 1:
        raise InputError(f"The scene has {len(heads)} FLAME heads ({', '.join(o.name for o in heads)}) and "
                         "none is active; choose one with --object NAME.")
    return heads[0] if heads else None


def find_or_add_head(context, scene, template, name: Optional[str] = None):
    """:func:`find_head`, else a new head from the template (:func:`pipeline.ensure_head`)."""
    return find_head(context, scene, name) or pipeline.ensure_head(context, template)
