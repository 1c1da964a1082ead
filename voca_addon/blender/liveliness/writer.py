"""Blinks, head motion and gaze in Blender: the living-face half of the writer.

What :func:`write_liveliness` writes from a :class:`~voca_addon.core.living.liveliness.Liveliness`
(scene frames ``start … start + F − 1``, one key per frame, LINEAR):

* **Blink**: a relative shape key ``VOCA blink`` holding ``basis + Δ_blink`` (slider 0 … 1), or the
  artist's key marked as the blink (:func:`mark_as_blink`; never deleted), whose value is keyed in the
  add-on's owned action of the Key (the speech's action, group ``VOCA blink``).
* **Head motion**: on the ``neck`` bone's quaternion when the head has a FLAME rig (:mod:`voca_addon.blender.liveliness.rig`), else
  on the head object's *delta* rotation (the artist's own rotation channels stay free):
  ``D(t) = R · R_head(t) · R⁻¹`` with ``R`` the object's rotation, so the head turns in its own frame
  about its origin, in an owned action of the object. The delta rotation's earlier value is restored on
  removal. Axis-angle objects are refused (no delta rotation in that mode).
* **Gaze**: on the eye bones — the FLAME rig's, else an eye-only rig (:func:`voca_addon.blender.liveliness.rig.build_eye_rig`) at the
  eyeballs found in the mesh (FLAME topology).
* **FLAME rig**: built first when ``live.model`` is set (correctives and face-shape sliders as asked).

Ownership: the Key lists ``voca_liveliness_keys`` (the blink key it made) and ``voca_marked_blink``
(an artist key marked as blink); the object keeps ``voca_delta_rotation`` (the value to restore) and its
owned action; the rig is :mod:`voca_addon.blender.liveliness.rig`'s. :func:`remove_liveliness` removes exactly that. A re-run
replaces it (:func:`write_liveliness` removes first). :func:`check_liveliness` refuses bad inputs before
anything changes.

Contract: main thread only (``bpy``). Imports ``bpy``, numpy, mathutils, :mod:`voca_addon.core`,
:mod:`..compat` (every version difference), :mod:`.writer`, :mod:`voca_addon.blender.liveliness.rig`.
"""
from __future__ import annotations

from typing import List, Optional

import bpy
import numpy as np

from ...core.errors import InputError, MeshError
from ...core.flame import flame_model
from ...core.living import gaze as core_gaze
from ...core.living import liveliness as core_liveliness
from ...core.living.liveliness import Liveliness, LivelinessAssets, LivelinessSettings
from .. import compat, keyframes
from . import rig
from ..speech import writer

BLINK_KEY = "VOCA blink"
BLINK_GROUP = "VOCA blink"
HEAD_GROUP = "VOCA head"
EYE_GROUP = "VOCA eyes"
LIVELY_KEYS = "voca_liveliness_keys"        # Key custom property: keys made here
MARKED_BLINK = "voca_marked_blink"          # Key custom property: the artist's key used as the blink
DELTA_BACKUP = "voca_delta_rotation"        # object custom property: delta rotation before keying
OBJECT_SLOT = "VOCA head"
DELTA_PATHS = ("delta_rotation_euler", "delta_rotation_quaternion")


def _key(obj):
    return obj.data.shape_keys if obj is not None and obj.type == "MESH" else None


def blink_key_name(obj) -> Optional[str]:
    """The key the blink is keyed on: the artist's marked key, else the add-on's ``VOCA blink``, else None."""
    key = _key(obj)
    if key is None:
        return None
    marked = key.get(MARKED_BLINK)
    if marked and key.key_blocks.get(marked) is not None:
        return str(marked)
    return BLINK_KEY if BLINK_KEY in list(key.get(LIVELY_KEYS, [])) else None


def mark_as_blink(obj, name: str) -> None:
    """Use the artist's shape key ``name`` as the blink (its value is keyed; the key is never deleted).

    Raises
    ------
    InputError
        No such key, or it is the Basis or one of the add-on's keys.
    """
    key = _key(obj)
    block = key.key_blocks.get(name) if key is not None else None
    if block is None or block == key.reference_key:
        raise InputError(f"'{getattr(obj, 'name', None)}' has no shape key '{name}' to use as the blink "
                         "(the Basis cannot be). Choose one of its shape keys.")
    if name in list(key.get(writer.OWNED_KEYS, [])) or name in list(key.get(LIVELY_KEYS, [])):
        raise InputError(f"'{name}' is one of VOCA's own keys; mark an artist's key as the blink.")
    key[MARKED_BLINK] = name


# ---------------------------------------------------------------------------- the pipeline's hooks

def check_target(obj, settings: Optional[LivelinessSettings]) -> None:
    """Main thread, before the worker starts: what can be refused without the tracks (changes nothing).

    Raises
    ------
    InputError
        Blinks with no shape to use (no source, no FLAME model, no marked key), or the settings' files /
        ranges (:func:`voca_addon.core.living.liveliness.check_settings`).
    """
    if settings is None or not settings.enabled:
        return
    core_liveliness.check_settings(settings)
    if settings.blinks and not settings.blink_source and not settings.flame_model:
        key = _key(obj)
        marked = key.get(MARKED_BLINK) if key is not None else None
        if not (marked and key.key_blocks.get(marked) is not None):
            raise InputError("Blinks need a blink shape: give a FLAME model (--flame-model), eyelid deltas or a "
                             "closed-eye mesh (--blink-source), or mark one of the head's shape keys as the blink.")


def plan(scene, obj, settings: Optional[LivelinessSettings], assets: Optional[LivelinessAssets], audio_path,
         num_frames: int, template) -> Optional[Liveliness]:
    """Main thread, before anything is written: the tracks at the scene's frame rate, checked against
    ``obj`` (:func:`check_liveliness`). None when the settings ask for nothing."""
    if settings is None:
        return None
    look_at = _look_at(obj, settings, assets) if settings.gaze and settings.look_at else None
    live = core_liveliness.compute_liveliness(settings, audio_path, writer.scene_fps(scene), num_frames,
                                              template, assets, look_at)
    check_liveliness(obj, live)
    return live


def _look_at(obj, settings: LivelinessSettings, assets: Optional[LivelinessAssets]):
    """The look-at object's position in the head's mesh coordinates, with the eyes' and the head's pivots.

    Raises
    ------
    InputError
        No object of that name, or it is the head itself.
    """
    target = bpy.data.objects.get(settings.look_at)
    if target is None or target == obj:
        raise InputError(f"The look-at target '{settings.look_at}' is not an object of this file (other than "
                         "the head); add an empty to look at and give its name.")
    bpy.context.view_layer.update()                             # current world matrices of both objects
    point = np.array(obj.matrix_world.inverted() @ target.matrix_world.translation, dtype=np.float64)
    if settings.rig and assets is not None and assets.model is not None:
        joints = flame_model.regress_joints(assets.model, rig._reference_co(obj))
        return core_liveliness.LookAt(point, joints[3:5], joints[1])
    left, right = _eyeballs(obj)
    co = rig._reference_co(obj).astype(np.float64)
    return core_liveliness.LookAt(point, np.stack([co[left].mean(0), co[right].mean(0)]), np.zeros(3))


def has_liveliness(obj) -> bool:
    """True when ``obj`` carries anything :func:`write_liveliness` made (reads properties only)."""
    key = _key(obj)
    return bool(obj is not None and (obj.get(rig.RIG_OBJECT) or obj.get(DELTA_BACKUP) is not None
                                     or (key is not None and (key.get(LIVELY_KEYS) or key.get(rig.RIG_KEYS)))))


# ---------------------------------------------------------------------------- checks

def check_liveliness(obj, live: Liveliness) -> None:
    """Everything :func:`write_liveliness` would refuse, checked before any change.

    Raises
    ------
    MeshError
        Not a mesh; a blink shape, FLAME model or eyes that do not fit the mesh.
    InputError
        Edit Mode; no blink shape and no marked key; an artist's action on the Key or the object; an
        axis-angle head object (head motion without a rig).
    """
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the head.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    count = len(obj.data.vertices)
    if live.model is not None:
        rig.check_rig_target(obj, live.model)
        if live.shape_sliders > live.model.num_shape:
            raise InputError(f"The FLAME model has {live.model.num_shape} identity components; choose at most "
                             f"that many face-shape sliders (got {live.shape_sliders}).")
    if live.blink is not None:
        _check_blink(obj, live, count)
    has_rig = live.model is not None or rig.find_rig(obj, rig.KIND_FLAME) is not None
    if live.head is not None and not has_rig:
        _check_object_animation(obj)
    if live.gaze is not None and not has_rig:
        _eyeballs(obj)


def _check_blink(obj, live: Liveliness, count: int) -> None:
    key = _key(obj)
    if live.blink_shape is not None and live.blink_shape.delta.shape != (count, 3):
        raise MeshError(f"The blink shape ({live.blink_shape.source}) has {live.blink_shape.delta.shape[0]} "
                        f"vertices but '{obj.data.name}' has {count}; choose a blink source for this head.")
    if live.blink_shape is None and not (key is not None and key.get(MARKED_BLINK)
                                         and key.key_blocks.get(key[MARKED_BLINK]) is not None):
        raise InputError("Blinks need a blink shape: give a FLAME model (--flame-model), eyelid deltas or a "
                         "closed-eye mesh (--blink-source), or mark one of the head's shape keys as the blink.")
    action = key.animation_data.action if key is not None and key.animation_data else None
    if action is not None and not action.get(writer.OWNED):
        raise InputError(f"The shape keys of '{obj.name}' are animated by '{action.name}', which VOCA did not "
                         "create; unassign it, then run again.")


def _check_object_animation(obj) -> None:
    action = obj.animation_data.action if obj.animation_data else None
    if action is not None and not action.get(writer.OWNED):
        raise InputError(f"'{obj.name}' is animated by the action '{action.name}', which VOCA did not create; "
                         "head motion without a rig keys the object. Unassign it, or build a FLAME rig (--rig).")
    if obj.rotation_mode == "AXIS_ANGLE":
        raise InputError(f"'{obj.name}' uses Axis Angle rotation, which has no delta rotation; switch it to "
                         "XYZ Euler or Quaternion, or build a FLAME rig (--rig).")


def _eyeballs(obj):
    """(left, right) eyeball vertex indices of the mesh (its two smallest separate parts)."""
    mesh = obj.data
    mesh.calc_loop_triangles()
    tris = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", tris)
    return core_gaze.eyeball_vertices(rig._reference_co(obj).astype(np.float64), tris.reshape(-1, 3))


# ---------------------------------------------------------------------------- writing

def write_liveliness(obj, scene, live: Liveliness, start_frame: int) -> List[str]:
    """Write ``live`` on ``obj`` from ``start_frame`` (module docstring); returns one line per part.

    The previous living-face data on ``obj`` is removed first; an empty ``live`` only removes. A failure
    half-way removes what was written so far (vertex groups, modifier and rig included) and re-raises.
    """
    check_liveliness(obj, live)
    remove_liveliness(obj)
    if live.empty:
        return []
    try:
        return _write_parts(obj, live, start_frame + np.arange(live.num_frames, dtype=np.float64))
    except BaseException:
        remove_liveliness(obj)
        raise


def _write_parts(obj, live: Liveliness, frames: np.ndarray) -> List[str]:
    lines = []
    if live.model is not None:
        rig.build_rig(obj, live.model, live.correctives, live.shape_sliders)
        lines.append(f"FLAME rig ({'with' if live.correctives else 'without'} pose correctives"
                     + (f", {live.shape_sliders} face-shape sliders)" if live.shape_sliders else ")"))
    armature = rig.find_rig(obj, rig.KIND_FLAME)
    if live.blink is not None:
        lines.append(f"blink on '{_write_blink(obj, live, frames)}'")
    if live.head is not None:
        if armature is not None:
            rig.key_bone_rotations(armature, "neck", frames, live.head.rotation, HEAD_GROUP)
            lines.append("head motion on the rig's neck bone")
        else:
            _write_object_rotation(obj, frames, live.head.rotation)
            lines.append(f"head motion on '{obj.name}' (delta rotation)")
    if live.gaze is not None:
        eyes = armature or rig.build_eye_rig(obj, *_eyeballs(obj))
        for k, bone in enumerate(rig.EYE_NAMES):
            rig.key_bone_rotations(eyes, bone, frames, live.gaze.rotation[:, k], EYE_GROUP)
        lines.append("gaze on the eye bones")
    return lines


def _write_blink(obj, live: Liveliness, frames: np.ndarray) -> str:
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
        obj.data.shape_keys[writer.OWNED] = True
    key = obj.data.shape_keys
    name = blink_key_name(obj) if live.blink_shape is None else None
    if name is None:
        created: list = []
        block = writer.new_key(obj, BLINK_KEY, writer.key_co(key.reference_key) + live.blink_shape.delta,
                                created)
        block.slider_min, block.slider_max, block.value = 0.0, 1.0, 0.0
        key[LIVELY_KEYS] = list(key.get(LIVELY_KEYS, [])) + created
        name = block.name
    if key.animation_data is None or key.animation_data.action is None:
        writer.write_action(key, [], f"VOCA_{obj.name}", "VOCA")
    anim_data = key.animation_data
    compat.assign_action(anim_data, anim_data.action, "KEY", "VOCA")
    fcurve = compat.new_fcurve(anim_data, keyframes.value_path(name), index=0, group=BLINK_GROUP)
    keyframes.set_keyframes(fcurve, frames, live.blink.weight, keyframes.LINEAR)
    return name


def _write_object_rotation(obj, frames: np.ndarray, rotvec: np.ndarray) -> None:
    """Key the object's delta rotation ``D(t) = R · R_head(t) · R⁻¹`` (module docstring)."""
    base = np.array(obj.matrix_basis.to_3x3().normalized(), dtype=np.float64)
    # R · R(θ) · R⁻¹ is the rotation by the same angle about the turned axis: its rotation vector is R θ
    delta = np.asarray(rotvec, dtype=np.float64) @ base.T                   # [F, 3]
    quaternion = obj.rotation_mode == "QUATERNION"
    path = DELTA_PATHS[1] if quaternion else DELTA_PATHS[0]
    obj[DELTA_BACKUP] = list(getattr(obj, path))
    if quaternion:
        values = rig.rotvec_to_quaternion(delta)                            # (w, x, y, z), w ≥ 0
    else:
        values = _eulers(flame_model.rodrigues(delta), obj.rotation_mode)
    anim_data = obj.animation_data or obj.animation_data_create()
    action = anim_data.action
    if action is None:
        action = compat.new_action(f"VOCA_{obj.name}")
        action[writer.OWNED] = True
    compat.assign_action(anim_data, action, "OBJECT", OBJECT_SLOT)
    for index in range(values.shape[1]):
        fcurve = compat.new_fcurve(anim_data, path, index=index, group=HEAD_GROUP)
        keyframes.set_keyframes(fcurve, frames, values[:, index].astype(np.float32), keyframes.LINEAR)


def _eulers(matrices: np.ndarray, order: str) -> np.ndarray:
    """float64 [F, 3] Euler angles (Blender's X, Y, Z channels) in ``order`` of rotation matrices [F, 3, 3],
    each compatible with the previous one (no ±2π jumps) — mathutils, Blender's own conversion."""
    from mathutils import Matrix
    out, previous = np.empty((matrices.shape[0], 3)), None
    for f, m in enumerate(matrices):                                         # conversion only, no bpy data
        euler = Matrix(m.tolist()).to_euler(order, previous) if previous else Matrix(m.tolist()).to_euler(order)
        out[f], previous = euler[:], euler
    return out


# ---------------------------------------------------------------------------- removal

def remove_liveliness(obj) -> int:
    """Remove the blink key and curve, the head motion, the rig (and gaze with it); returns items removed."""
    if obj is None or obj.type != "MESH":
        return 0
    removed = _remove_blink(obj) + _remove_object_rotation(obj)
    return removed + rig.remove_rig(obj)


def _remove_blink(obj) -> int:
    key = _key(obj)
    if key is None:
        return 0
    removed = 0
    name = blink_key_name(obj)
    anim_data = key.animation_data
    if name is not None and anim_data is not None and anim_data.action is not None \
            and anim_data.action.get(writer.OWNED):
        fcurve = compat.find_fcurve(anim_data, keyframes.value_path(name))
        if fcurve is not None and fcurve.group is not None and fcurve.group.name == BLINK_GROUP:
            removed += compat.remove_fcurve(anim_data.action, fcurve)
    owned = [str(n) for n in key.get(LIVELY_KEYS, [])]
    removed += writer.remove_key_blocks(obj, owned)
    if LIVELY_KEYS in key:
        del key[LIVELY_KEYS]
    action = anim_data.action if anim_data is not None else None
    if action is not None and action.get(writer.OWNED) and action.users <= 1 \
            and next(compat.action_fcurves(action), None) is None:
        anim_data.action = None
        bpy.data.actions.remove(action)
    busy = anim_data is not None and (anim_data.action or anim_data.drivers or anim_data.nla_tracks)
    if key.get(writer.OWNED) and len(key.key_blocks) == 1 and not busy:
        obj.shape_key_clear()
    return removed


def _remove_object_rotation(obj) -> int:
    anim_data = obj.animation_data
    action = anim_data.action if anim_data is not None else None
    removed = 0
    if action is not None and action.get(writer.OWNED):
        for fcurve in [fc for fc in compat.action_fcurves(action) if fc.data_path in DELTA_PATHS]:
            removed += compat.remove_fcurve(action, fcurve)
        if next(compat.action_fcurves(action), None) is None and action.users <= 1:
            anim_data.action = None
            bpy.data.actions.remove(action)
    backup = obj.get(DELTA_BACKUP)
    if backup is not None:
        path = DELTA_PATHS[1] if len(backup) == 4 else DELTA_PATHS[0]
        setattr(obj, path, [float(v) for v in backup])
        del obj[DELTA_BACKUP]
    return removed
