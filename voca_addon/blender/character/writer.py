"""Blender side of retargeting: a target mesh object, its own keys, and F-curves for solved weights.

- :func:`build_target` makes a mesh object from arrays (vertex order kept), Y-up data stood upright
  like the FLAME head, in the target's own units (scale 1).
- :func:`add_rig_keys` adds the rig's keys (from its key OBJs) with their own names; they are the
  rig's, not the add-on's: Remove never deletes them.
- :func:`drive_keys` keys per-frame weights of existing keys as LINEAR F-curves in ONE add-on-owned
  action (through :mod:`.writer`'s action code and :mod:`..compat`), resampled to the scene's rate; it
  refuses an action the add-on did not create. It replaces what the add-on animated on the object before
  (a Transfer, an earlier Drive) and records the driven keys with their values from before on the Key
  (:data:`..speech.writer.DRIVEN_KEYS`), so that Remove takes exactly its curves and gives the values back.
- :func:`check_target_object` refuses a target object retargeting cannot animate safely: not a mesh,
  no faces, modifiers, an armature parent, or keys animated by the artist's own action.

The transferred motion itself (a :class:`ShapeKeyAnimation` on the target) is written by
:func:`..speech.writer.write_animation`, like any VOCA animation (which replaces a previous Drive the same way:
its curves removed, the keys' values given back); its corrections (the lip closures transferred from FLAME) by
:func:`write_corrections`: keys of their own beside VOCA's, owned, in the same action.

Contract: main thread only (``bpy``); bulk ``foreach_set``; user errors raise VocaError subclasses
before anything is changed.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import InputError, MeshError
from .. import compat, keyframes
from ..speech import writer


def build_target(name: str, vertices: np.ndarray, faces: np.ndarray, collection=None):
    """A mesh object of the target (vertex order kept, units kept, Y-up data stood upright)."""
    obj = writer.build_head(name, vertices, faces, collection)
    obj.scale = (1.0, 1.0, 1.0)
    return obj


def check_target_object(obj) -> None:
    """Refuse a target that retargeting cannot animate safely (MeshError / InputError)."""
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; pick the character's head mesh.")
    if not len(obj.data.polygons):
        raise MeshError(f"'{obj.name}' has no faces; retargeting needs a surface mesh of the head.")
    if len(obj.modifiers):
        names = ", ".join(m.name for m in obj.modifiers)
        raise InputError(f"'{obj.name}' has modifiers ({names}); apply or remove them first so the "
                         "fitted mesh is the one you see.")
    if obj.parent is not None and obj.parent.type == "ARMATURE" or obj.find_armature() is not None:
        raise InputError(f"'{obj.name}' is deformed by an armature; retarget onto the unposed mesh "
                         "(a copy without the armature) and bind the keys afterwards.")
    key = obj.data.shape_keys
    action = key.animation_data.action if key is not None and key.animation_data else None
    if action is not None and not action.get(writer.OWNED):
        raise InputError(f"the shape keys of '{obj.name}' are animated by the action '{action.name}', "
                         "which VOCA did not create. Unassign it or push it to the NLA, then run again.")


def add_rig_keys(obj, rest: np.ndarray, names, deltas: np.ndarray) -> None:
    """Add Basis (= ``rest``) if needed and one key per name holding ``rest + delta``."""
    if obj.data.shape_keys is None:
        basis = obj.shape_key_add(name="Basis", from_mix=False)
        basis.data.foreach_set("co", np.asarray(rest, np.float32).ravel())
    ref = obj.data.shape_keys.reference_key
    for name, delta in zip(names, deltas):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.relative_key = ref
        block.data.foreach_set("co", (np.asarray(rest) + delta).astype(np.float32).ravel())


def resample_weights(weights: np.ndarray, fps: float, scene_fps: float) -> np.ndarray:
    if fps == scene_fps:
        return weights
    n = max(1, int(round(len(weights) / fps * scene_fps)))
    t_in, t_out = np.arange(len(weights)) / fps, np.arange(n) / scene_fps
    return np.stack([np.interp(t_out, t_in, weights[:, k]) for k in range(weights.shape[1])], axis=1)


def drive_keys(obj, names, weights: np.ndarray, fps: float, scene, start_frame: int, prefix: str = "VOCA"):
    """Key ``weights`` [F, K] (in [0, 1]) on the existing keys ``names`` of ``obj``; returns the action.

    What the add-on animated on ``obj`` before goes first, as Remove would take it
    (:func:`..speech.writer.remove_animation`, the Basis kept): a Transfer's keys and curves, an earlier
    Drive's curves (its keys given their values back). Then each key of ``names`` is recorded with its value
    (:data:`..speech.writer.DRIVEN_KEYS`) and keyed in the add-on's action.
    """
    key = obj.data.shape_keys
    missing = [n for n in names if key is None or key.key_blocks.get(n) is None]
    if missing:
        raise InputError(f"'{obj.name}' has no shape key named {', '.join(missing[:5])}; add the keys first.")
    check_target_object(obj)
    ours = sorted(set(key.get(writer.OWNED_KEYS, [])).intersection(names))
    if ours:
        raise InputError(f"{', '.join(ours[:5])} of '{obj.name}' are VOCA's own keys; drive the character's own keys.")
    _refuse_artist_curves(obj, key, names)
    values = resample_weights(np.asarray(weights, np.float32), float(fps), writer.scene_fps(scene)).astype(np.float32)
    writer.remove_animation(obj, keep_basis=True)             # a re-run, or Drive after Transfer: replaces
    key[writer.DRIVEN_KEYS] = {n: float(key.key_blocks[n].value) for n in names}
    action = key.animation_data.action if key.animation_data else None
    if action is not None:                  # left: a Drive saved before the record (its curves are replaced)
        paths = {keyframes.value_path(n) for n in names}
        for fcurve in [fc for fc in compat.action_fcurves(action) if fc.data_path in paths]:
            compat.remove_fcurve(action, fcurve)
    frames = start_frame + np.arange(len(values), dtype=np.float64)
    curves = [(name, frames, values[:, k], writer.LINEAR) for k, name in enumerate(names)]
    return writer.write_action(key, curves, f"{prefix}_keys_{obj.name}", prefix)


def _refuse_artist_curves(obj, key, names) -> None:
    """InputError, before anything changes, when the artist keyed one of ``names`` by hand in the add-on's action
    (Insert Keyframe while VOCA's action is assigned): Drive would replace their keys. A curve is the add-on's
    when it animates a key the add-on made or drives (:data:`..speech.writer.DRIVEN_KEYS`); an action with
    neither record holds a Drive saved before the record, whose curves are all the add-on's."""
    action = key.animation_data.action if key.animation_data else None
    if action is None:
        return
    driven, made = writer.driven_keys(key), set(key.get(writer.OWNED_KEYS, []))
    if not driven and not made:
        return
    wanted = {keyframes.value_path(n): n for n in names}
    theirs = sorted(wanted[fc.data_path] for fc in compat.action_fcurves(action)
                    if fc.data_path in wanted and wanted[fc.data_path] not in driven)
    if theirs:
        raise InputError(f"{', '.join(repr(n) for n in theirs[:5])} of '{obj.name}' "
                         f"{'holds' if len(theirs) == 1 else 'hold'} keyframes of yours in the "
                         f"add-on's action '{action.name}', which Drive Its Keys would replace: move them to an action "
                         "of your own (or delete them), then Drive again.")


def write_corrections(obj, anim, scene, start_frame: int, prefix: str = "VOCA") -> list:
    """After :func:`..speech.writer.write_animation` wrote ``anim`` on ``obj``: its corrections as their own keys.

    Each correction (``voca_lips_close``, ``voca_lips_tuck``: transferred from FLAME) becomes a key relative
    to the Basis holding ``Basis + its basis``, keyed LINEAR at the scene's rate only where its weight is
    not zero (and one zero key each side), in the animation's owned action; the keys are listed as the
    add-on's, so Remove and a re-run delete them with VOCA's. VOCA's own keys stay exact (mute these to see
    VOCA's exact motion). Returns the names of the keys made (none without corrections).
    """
    c = anim.resampled(writer.scene_fps(scene)).corrections
    if c is None or not len(c.names):
        return []
    from ..articulation.writer import support
    key = obj.data.shape_keys
    ref = writer.key_co(key.reference_key)
    created, curves = [], []
    try:
        for k, name in enumerate(c.names):
            block = writer.new_key(obj, name, ref + c.basis[k], created)
            block.slider_min, block.slider_max = -writer.SLIDER_LIMIT, writer.SLIDER_LIMIT
            frames, values = support(np.asarray(c.weights[:, k], np.float32))
            curves.append((block.name, start_frame + frames, values, writer.LINEAR))
    finally:
        key[writer.OWNED_KEYS] = list(key.get(writer.OWNED_KEYS, [])) + created
    writer.write_action(key, curves, f"{prefix}_{obj.name}", prefix)
    return created
