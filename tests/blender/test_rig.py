"""The FLAME rig in Blender: the EVALUATED mesh under random neck, jaw and eye poses equals FLAME's skinning
from an independent numpy reference (tests/core/flame/flame_format.py), correctives and speech keys too;
removal leaves the head as it was; bad inputs change nothing."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.core.flame.flame_format import reference_lbs, write_flame_format_model  # noqa: E402
from voca_addon.blender.liveliness import rig  # noqa: E402
from voca_addon.blender.speech import writer
from voca_addon.core.errors import InputError, MeshError  # noqa: E402
from voca_addon.core.flame import flame_model  # noqa: E402

TOLERANCE = 1e-6        # metres: 1 µm


@pytest.fixture(scope="module")
def model_file(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    return path, write_flame_format_model(path, shared_data, seed=3)


@pytest.fixture
def head(scene, flame):
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    bpy.context.view_layer.objects.active = obj
    return obj


def _arrays_on_head(arrays, vertices):
    """The model's arrays with the head's own vertices as T̄ (the rig regresses joints from the head)."""
    return {**arrays, "v_template": np.asarray(vertices, dtype=np.float64)}


def _random_pose(rng):
    pose = np.zeros((5, 3))
    pose[1:] = rng.uniform(-0.35, 0.35, size=(4, 3))          # neck, jaw, eyes (root stays: the object)
    return pose


@pytest.mark.parametrize("correctives", [False, True])
def test_rig_parity_random_poses(head, scene, flame, model_file, evaluated, correctives):
    path, arrays = model_file
    model = flame_model.load_flame_model(path)
    armature = rig.build_rig(head, model, correctives=correctives)
    reference = _arrays_on_head(arrays, flame.vertices)
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(5):
        pose = _random_pose(rng)
        rig.pose_bones(armature, pose)
        got = evaluated(head, scene, scene.frame_current)
        want = reference_lbs(reference, pose, correctives=correctives)
        errors.append(np.abs(got - want).max())
    print(f"\nrig parity ({'with' if correctives else 'without'} correctives), 5 random poses: "
          f"max {max(errors) * 1e6:.3f} µm")
    assert max(errors) < TOLERANCE


def test_rig_parity_with_speech_keys_and_keyed_neck(head, scene, flame, model_file, evaluated, make_anim):
    path, arrays = model_file
    model = flame_model.load_flame_model(path)
    anim = make_anim(frames=10, fps=scene.render.fps)
    writer.write_animation(head, anim, scene, start_frame=1)
    armature = rig.build_rig(head, model, correctives=True)
    rng = np.random.default_rng(1)
    neck = rng.uniform(-0.3, 0.3, size=(10, 3))
    rig.key_bone_rotations(armature, "neck", np.arange(1, 11, dtype=np.float64), neck, "VOCA head")
    reference = _arrays_on_head(arrays, flame.vertices)
    neutral_joints = arrays["J_regressor"].toarray() @ flame.vertices.astype(np.float64)
    vertices = anim.vertices()
    worst = 0.0
    for f in (1, 4, 10):
        pose = np.zeros((5, 3))
        pose[1] = neck[f - 1]
        # the speech frame is skinned with the joints of the neutral head (rig module docstring)
        want = reference_lbs({**reference, "v_template": vertices[f - 1].astype(np.float64)}, pose,
                             joints=neutral_joints)
        worst = max(worst, np.abs(evaluated(head, scene, f) - want).max())
    print(f"\nrig + speech keys + keyed neck: max {worst * 1e6:.3f} µm")
    assert worst < TOLERANCE


def test_rig_neck_rotation_moves_forehead_far_more_than_neck_base(head, scene, flame, model_file, evaluated,
                                                                  shared_data):
    model = flame_model.load_flame_model(model_file[0])
    armature = rig.build_rig(head, model, correctives=False)
    with open(shared_data / "flame" / "FLAME_masks.pkl", "rb") as handle:
        masks = pickle.load(handle, encoding="latin1")
    pose = np.zeros((5, 3))
    pose[1] = (0.25, 0.0, 0.0)                                          # a 14° nod
    rig.pose_bones(armature, pose)
    moved = np.linalg.norm(evaluated(head, scene, scene.frame_current) - flame.vertices, axis=1)
    neck = np.asarray(masks["neck"])
    base = neck[flame.vertices[neck, 1] < np.percentile(flame.vertices[neck, 1], 10)]
    print(f"\n14° nod: forehead moves {moved[masks['forehead']].mean() * 1e3:.1f} mm, neck base "
          f"{moved[base].mean() * 1e3:.2f} mm")
    assert moved[masks["forehead"]].mean() > 10 * moved[base].mean()


def test_rig_shape_sliders_and_removal(head, scene, flame, model_file, evaluated):
    path, arrays = model_file
    model = flame_model.load_flame_model(path)
    groups_before = [g.name for g in head.vertex_groups]
    rig.build_rig(head, model, correctives=True, shape_sliders=5)
    key = head.data.shape_keys
    slider = key.key_blocks["FLAME shape 03"]
    slider.value = 1.5
    got = evaluated(head, scene, scene.frame_current)
    np.testing.assert_allclose(got, flame.vertices + 1.5 * arrays["shapedirs"][:, :, 2], atol=TOLERANCE)
    assert rig.remove_rig(head) > 0
    assert [g.name for g in head.vertex_groups] == groups_before and head.data.shape_keys is None
    assert not any(o.type == "ARMATURE" for o in bpy.data.objects) and not bpy.data.armatures
    assert not head.modifiers
    np.testing.assert_allclose(evaluated(head, scene, 1), flame.vertices, atol=1e-7)


def test_rig_rebuild_replaces_the_rig(head, model_file):
    model = flame_model.load_flame_model(model_file[0])
    rig.build_rig(head, model, correctives=True)
    rig.build_rig(head, model, correctives=True)
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 1
    assert len(head.data.shape_keys.key_blocks) == 37 and len(head.vertex_groups) == 5
    assert len(head.modifiers) == 1


def test_rig_refuses_wrong_heads_and_changes_nothing(scene, model_file, shared_data):
    from voca_addon.core.flame.meshio import read_mesh
    model = flame_model.load_flame_model(model_file[0])
    arkit = read_mesh(sorted((shared_data / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0])
    other = writer.build_head("ARKit", arkit.vertices, arkit.faces, scene.collection)
    with pytest.raises(MeshError, match="5023 vertices but the mesh 'ARKit' has 1220"):
        rig.build_rig(other, model)
    assert not other.vertex_groups and not other.modifiers and len(bpy.data.objects) == 1


def test_rig_refuses_an_artists_vertex_group_of_a_bone_name(head, model_file):
    model = flame_model.load_flame_model(model_file[0])
    head.vertex_groups.new(name="jaw")
    with pytest.raises(InputError, match="already has vertex groups named jaw"):
        rig.build_rig(head, model)
    assert [g.name for g in head.vertex_groups] == ["jaw"] and not head.modifiers
    assert len(bpy.data.objects) == 1
