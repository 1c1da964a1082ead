"""A FLAME rig in Blender: an armature whose deformation of the head is FLAME's linear blend skinning.

What :func:`build_rig` makes from a :class:`~voca_addon.core.flame.flame_model.FlameModel`:

* an armature object ``VOCA rig`` parented to the head (so it follows the head object), with the bones
  ``root``, ``neck``, ``jaw``, ``eye_left``, ``eye_right`` (FLAME's kinematic tree) whose heads sit at the
  joints regressed for THIS head, ``J = 𝒥 · basis`` (the mesh's reference key, so an artist's head in
  FLAME's topology gets its own joints). Every bone's rest orientation is the identity of the mesh's
  frame (bones point along FLAME's +Y, "up"), so a bone's local rotation IS FLAME's joint rotation
  ``R(θ_k)`` and Blender's pose matrix minus rest equals FLAME's ``G'_k``;
* FLAME's skinning weights as vertex groups named after the bones, and an Armature modifier
  ``VOCA rig`` (vertex groups, no envelopes, no preserve-volume) that Blender evaluates as
  ``Σ_k w_ik G'_k v`` — FLAME's Eq. 1;
* optionally the 36 pose correctives ``B_P`` as shape keys ``FLAME pose <bone> <i><j>`` holding
  ``basis + P_n``, each driven by its bone's quaternion as ``(R(q) − I)_ij`` (simple expressions, no
  Python needed), so shape keys + modifier give ``Σ_k w_ik G'_k (T + B_P(θ))``;
* (:func:`build_eye_rig`, without a FLAME model) only the two eye bones at the eyeball centres, the
  eyeball vertices at weight 1, for gaze on any FLAME-topology head;
* optionally face-shape sliders: the first identity components as shape keys ``FLAME shape NN``
  (``basis + B_S[:, :, n]``, slider −3 … 3), on which the speech keys add their offsets unchanged.

Bones use quaternion rotation; :func:`key_bone_rotations` keys rotation vectors [F, 3] on a bone.
Ownership: the armature object and data carry ``voca_owned``; the head lists its vertex groups in
``voca_rig_groups`` and the Key lists corrective and slider keys in ``voca_rig_keys``;
:func:`remove_rig` removes exactly those (and their drivers), never an artist's data.

Not modelled: joints stay where they were regressed when an artist changes the face-shape sliders
afterwards (FLAME would re-regress them); VOCA's speech offsets are applied before skinning, as in VOCA's
``edit_sequences.py`` but with the joints of the neutral head rather than of each speech frame.

Contract: main thread only (``bpy``). Imports ``bpy``, numpy, :mod:`voca_addon.core` and :mod:`..compat`
(version differences) / :mod:`.writer` (ownership tags, bulk keyframes). Coordinates in mesh-local units.
"""
from __future__ import annotations

from typing import List, Optional

import bpy
import numpy as np

from ...core.errors import InputError, MeshError
from ...core.flame import flame_model
from ...core.flame.flame_model import FlameModel, JOINT_NAMES
from .. import compat, keyframes
from ..speech import writer

RIG_NAME = "VOCA rig"                 # armature object / data / modifier name
RIG_GROUPS = "voca_rig_groups"        # head object custom property: the vertex groups the rig made
RIG_KEYS = "voca_rig_keys"            # Key custom property: corrective and slider keys the rig made
RIG_OBJECT = "voca_rig"               # head object custom property: name of its rig object
BONE_LENGTH = 0.02                    # mesh units (FLAME: metres) from a bone's head to its tail
CORRECTIVE_PREFIX = "FLAME pose"
SLIDER_PREFIX = "FLAME shape"
SLIDER_RANGE = 3.0                    # face-shape sliders span ±3 standard deviations
CORRECTIVE_RANGE = 2.0                # (R − I)_ij lies within [−2, 2]
ACTION_SLOT = "VOCA rig"
RIG_KIND = "voca_rig_kind"            # rig object custom property: KIND_FLAME or KIND_EYES
KIND_FLAME, KIND_EYES = "flame", "eyes"
EYE_NAMES = JOINT_NAMES[3:]           # ("eye_left", "eye_right")
# (R(q) − I)_ij for a unit quaternion q = (w, x, y, z), row-major: FLAME's vec(R(θ)) − vec(I).
ROTATION_MINUS_IDENTITY = (
    "-2*(y*y+z*z)", "2*(x*y-w*z)", "2*(x*z+w*y)",
    "2*(x*y+w*z)", "-2*(x*x+z*z)", "2*(y*z-w*x)",
    "2*(x*z-w*y)", "2*(y*z+w*x)", "-2*(x*x+y*y)",
)


def find_rig(obj, kind: Optional[str] = None):
    """The head's rig armature object (made by :func:`build_rig` / :func:`build_eye_rig`), or None;
    with ``kind`` only a rig of that kind."""
    name = obj.get(RIG_OBJECT) if obj is not None else None
    rig = bpy.data.objects.get(name) if name else None
    if rig is None or rig.type != "ARMATURE" or not rig.get(writer.OWNED):
        return None
    return rig if kind is None or rig.get(RIG_KIND) == kind else None


def _reference_co(obj) -> np.ndarray:
    key = obj.data.shape_keys
    if key is not None:
        return writer.key_co(key.reference_key)
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def check_rig_target(obj, model: FlameModel) -> None:
    """Refuse (before any change) a head the rig cannot be built on.

    Raises
    ------
    MeshError
        Not a mesh, or not the model's vertex count.
    InputError
        Edit Mode, vertex groups with the bones' names that the add-on did not make, or the head has a
        rig already that is not ours.
    """
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the FLAME head.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    flame_model.check_topology(model, len(obj.data.vertices), f"the mesh '{obj.data.name}'")
    _check_group_names(obj, JOINT_NAMES)


def _check_group_names(obj, names) -> None:
    ours = set(obj.get(RIG_GROUPS, []))
    clash = [g.name for g in obj.vertex_groups if g.name in names and g.name not in ours]
    if clash:
        raise InputError(f"'{obj.name}' already has vertex groups named {', '.join(clash)}, which VOCA did "
                         "not make; rename them, then build the rig again.")


def build_rig(obj, model: FlameModel, correctives: bool = True, shape_sliders: int = 0):
    """Build (or rebuild) the FLAME rig of ``obj`` (module docstring). Returns the armature object.

    Raises
    ------
    MeshError, InputError
        See :func:`check_rig_target`; nothing is changed then.
    """
    check_rig_target(obj, model)
    if shape_sliders and not 0 < shape_sliders <= model.num_shape:
        raise InputError(f"face-shape sliders: choose 1..{model.num_shape} components, got {shape_sliders}.")
    remove_rig(obj)
    joints = flame_model.regress_joints(model, _reference_co(obj))          # [K, 3] for this head
    rig = _armature(obj, JOINT_NAMES, joints, model.parents, KIND_FLAME)
    try:
        _vertex_groups(obj, JOINT_NAMES, model.weights)
        modifier = obj.modifiers.new(RIG_NAME, "ARMATURE")
        modifier.object, modifier.use_vertex_groups, modifier.use_bone_envelopes = rig, True, False
        modifier.use_deform_preserve_volume = False
        if correctives:
            _corrective_keys(obj, rig, model.posedirs)
        if shape_sliders:
            _slider_keys(obj, flame_model.identity_sliders(model, shape_sliders))
    except BaseException:
        remove_rig(obj)
        raise
    return rig


def build_eye_rig(obj, left: np.ndarray, right: np.ndarray):
    """Eye bones only (no FLAME model): bones ``eye_left`` / ``eye_right`` at the eyeball centres, the
    eyeball vertices (int [N] each) in their vertex groups at weight 1. Returns the armature object.

    Raises
    ------
    MeshError, InputError
        Not a mesh / Edit Mode / an artist's vertex group with an eye bone's name; nothing is changed.
    """
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the FLAME head.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    _check_group_names(obj, EYE_NAMES)
    remove_rig(obj)
    co = _reference_co(obj).astype(np.float64)
    joints = np.stack([co[left].mean(axis=0), co[right].mean(axis=0)])
    weights = np.zeros((co.shape[0], 2))
    weights[left, 0] = weights[right, 1] = 1.0
    rig = _armature(obj, EYE_NAMES, joints, np.array([-1, -1]), KIND_EYES)
    try:
        _vertex_groups(obj, EYE_NAMES, weights)
        modifier = obj.modifiers.new(RIG_NAME, "ARMATURE")
        modifier.object, modifier.use_vertex_groups, modifier.use_bone_envelopes = rig, True, False
    except BaseException:
        remove_rig(obj)
        raise
    return rig


def _armature(obj, names, joints: np.ndarray, parents: np.ndarray, kind: str):
    """The armature object (child of ``obj``, identity local transform) with bones ``names`` at ``joints``."""
    data = bpy.data.armatures.new(RIG_NAME)
    rig = bpy.data.objects.new(RIG_NAME, data)
    rig[writer.OWNED] = data[writer.OWNED] = True
    rig[RIG_KIND] = kind
    for collection in obj.users_collection:
        collection.objects.link(rig)
    rig.parent = obj
    rig.matrix_parent_inverse.identity()
    obj[RIG_OBJECT] = rig.name
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for k, name in enumerate(names):
            bone = data.edit_bones.new(name)
            bone.head = joints[k].tolist()
            bone.tail = (joints[k] + (0.0, BONE_LENGTH, 0.0)).tolist()     # identity rest orientation
            bone.roll = 0.0
            if parents[k] >= 0:
                bone.parent = bones[parents[k]]
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
    for bone in rig.pose.bones:
        bone.rotation_mode = "QUATERNION"
    return rig


def _vertex_groups(obj, names, weights: np.ndarray) -> None:
    """FLAME's skinning weights as one vertex group per bone (nonzero weights only).

    Blender has no bulk setter for vertex weights; ``VertexGroup.add`` takes one weight for a list of
    vertices, so vertices are added per distinct weight value.
    """
    made: List[str] = []
    try:
        for k, name in enumerate(names):
            group = obj.vertex_groups.get(name) or obj.vertex_groups.new(name=name)
            made.append(group.name)
            column = weights[:, k].astype(np.float32)
            nonzero = np.flatnonzero(column)
            values, inverse = np.unique(column[nonzero], return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            splits = np.cumsum(np.bincount(inverse, minlength=values.size))[:-1]
            for value, members in zip(values, np.split(nonzero[order], splits)):
                group.add(members.tolist(), float(value), "REPLACE")
    finally:
        obj[RIG_GROUPS] = made


def _rig_key(obj, name: str, co: np.ndarray, lo: float, hi: float, created: list):
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
        obj.data.shape_keys[writer.OWNED] = True
    block = writer.new_key(obj, name, co, created)
    block.slider_min, block.slider_max, block.value = lo, hi, 0.0
    obj.data.shape_keys[RIG_KEYS] = list(obj.data.shape_keys.get(RIG_KEYS, [])) + [block.name]
    return block


def _corrective_keys(obj, rig, posedirs: np.ndarray) -> None:
    """36 shape keys ``basis + P_n``, each driven by ``(R(q_bone) − I)_ij`` of its bone."""
    ref = _reference_co(obj)
    created: list = []
    for n in range(posedirs.shape[2]):
        bone, element = JOINT_NAMES[1 + n // 9], n % 9
        name = f"{CORRECTIVE_PREFIX} {bone} {element // 3}{element % 3}"
        block = _rig_key(obj, name, ref + posedirs[:, :, n].astype(np.float32), -CORRECTIVE_RANGE,
                         CORRECTIVE_RANGE, created)
        driver = block.driver_add("value").driver
        driver.type = "SCRIPTED"
        for channel in "wxyz":
            var = driver.variables.new()
            var.name, var.type = channel, "TRANSFORMS"
            target = var.targets[0]
            target.id, target.bone_target = rig, bone
            target.transform_type, target.rotation_mode = f"ROT_{channel.upper()}", "QUATERNION"
            target.transform_space = "LOCAL_SPACE"
        driver.expression = ROTATION_MINUS_IDENTITY[element]


def _slider_keys(obj, sliders: np.ndarray) -> None:
    """Face-shape sliders: ``basis + B_S[:, :, n]`` per component, value 0, range ±3."""
    ref = _reference_co(obj)
    created: list = []
    for n, delta in enumerate(sliders):
        _rig_key(obj, f"{SLIDER_PREFIX} {n + 1:02d}", ref + delta, -SLIDER_RANGE, SLIDER_RANGE, created)


def pose_bones(rig, pose: np.ndarray) -> None:
    """Set the bones' rotations from FLAME rotation vectors ``pose`` [5, 3] (radians), unkeyed."""
    quats = rotvec_to_quaternion(np.asarray(pose, dtype=np.float64))
    for name, q in zip(JOINT_NAMES, quats):
        rig.pose.bones[name].rotation_quaternion = q.tolist()


def rotvec_to_quaternion(rotvec: np.ndarray) -> np.ndarray:
    """float64 [..., 4] unit quaternions (w, x, y, z), w ≥ 0, of rotation vectors [..., 3] (radians)."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = np.divide(rotvec, angle, out=np.zeros_like(rotvec), where=angle > 0)
    return np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], axis=-1)


def key_bone_rotations(rig, bone: str, frames: np.ndarray, rotvec: np.ndarray, group: str) -> None:
    """Key ``bone``'s quaternion from rotation vectors [F, 3] at scene ``frames`` [F] (owned action).

    Raises
    ------
    InputError
        The rig is animated by an action the add-on did not create.
    """
    anim_data = rig.animation_data or rig.animation_data_create()
    action = anim_data.action
    if action is not None and not action.get(writer.OWNED):
        raise InputError(f"The rig '{rig.name}' is animated by '{action.name}', which VOCA did not create; "
                         "unassign it, then run again.")
    if action is None:
        action = compat.new_action(f"VOCA_{rig.name}")
        action[writer.OWNED] = True
    compat.assign_action(anim_data, action, "OBJECT", ACTION_SLOT)
    quats = rotvec_to_quaternion(np.asarray(rotvec, dtype=np.float64)).astype(np.float32)
    path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion'
    for index in range(4):
        fcurve = compat.find_fcurve(anim_data, path, index)
        if fcurve is not None:
            compat.remove_fcurve(action, fcurve)
        fcurve = compat.new_fcurve(anim_data, path, index=index, group=group)
        keyframes.set_keyframes(fcurve, frames, quats[:, index], keyframes.LINEAR)


def remove_rig(obj) -> int:
    """Remove what :func:`build_rig` made on ``obj`` (rig object and data, its action, modifier, groups,
    corrective / slider keys and their drivers); returns how many items were removed."""
    if obj is None or obj.type != "MESH":
        return 0
    removed = 0
    key = obj.data.shape_keys
    if key is not None and RIG_KEYS in key:
        names = [str(n) for n in key[RIG_KEYS]]
        for name in names:
            if key.key_blocks.get(name) is not None:
                key.key_blocks[name].driver_remove("value")
        removed += writer.remove_key_blocks(obj, names)
        del key[RIG_KEYS]
        keep = key.animation_data is not None and (key.animation_data.action or key.animation_data.drivers)
        if key.get(writer.OWNED) and len(key.key_blocks) == 1 and not keep:
            obj.shape_key_clear()
    for name in list(obj.get(RIG_GROUPS, [])):
        group = obj.vertex_groups.get(name)
        if group is not None:
            obj.vertex_groups.remove(group)
            removed += 1
    obj.pop(RIG_GROUPS, None)
    modifier = obj.modifiers.get(RIG_NAME)
    if modifier is not None and modifier.type == "ARMATURE":
        obj.modifiers.remove(modifier)
        removed += 1
    rig = find_rig(obj)
    if rig is not None:
        removed += _remove_rig_object(rig)
    obj.pop(RIG_OBJECT, None)
    return removed


def _remove_rig_object(rig) -> int:
    action = rig.animation_data.action if rig.animation_data else None
    data = rig.data
    bpy.data.objects.remove(rig)
    if action is not None and action.get(writer.OWNED) and action.users == 0:
        bpy.data.actions.remove(action)
    if data is not None and data.get(writer.OWNED) and data.users == 0:
        bpy.data.armatures.remove(data)
    return 1


def rig_joints(rig) -> Optional[np.ndarray]:
    """float64 [5, 3]: the rest positions of the rig's bones (mesh-local), FLAME's joint order."""
    if rig is None:
        return None
    return np.array([rig.data.bones[name].head_local[:] for name in JOINT_NAMES], dtype=np.float64)
