"""The living face end to end, as a user runs it: ``python -m voca_addon animate ... --blinks --head-motion S
--gaze --flame-model PKL --rig``; the saved scene is reopened and its EVALUATED mesh compared with FLAME's
skinning (independent reference) of the speech + blink; bad inputs give one message and no file; the
operator's Remove and undo take it all away."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_headless import animate_args, engine_output, m, open_blend, run  # noqa: E402,F401
from tests.core.flame.flame_format import reference_lbs, write_flame_format_model  # noqa: E402
from tests.core.test_cli import assert_user_error  # noqa: E402

TOLERANCE = 1e-6            # metres: 1 µm


@pytest.fixture(scope="module")
def flame_pkl(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    return path, write_flame_format_model(path, shared_data, seed=7)


def _eyelids(m):
    return ",".join(str(m["data"] / "flame" / f) for f in ("l_eyelid.npy", "r_eyelid.npy"))


def _quat_to_rotvec(q):
    return Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_rotvec()


def test_liveliness_headless_all_on_matches_flame_skinning(m, tmp_path, flame_pkl, engine_output):
    path, arrays = flame_pkl
    out = tmp_path / "lively.blend"
    seed = _seed_with_a_blink(m, engine_output.num_frames)
    r = run(*animate_args(m, out, "--blink-source", _eyelids(m), "--head-motion", "1.2", "--gaze",
                          "--flame-model", path, "--rig", "--seed", seed), cache=m["cache"])
    assert r.returncode == 0, r.stderr
    assert "blink on 'VOCA blink'" in r.stdout and "neck bone" in r.stdout and "eye bones" in r.stdout
    scene, head = open_blend(out)
    rig = bpy.data.objects["VOCA rig"]
    template = np.asarray(arrays["v_template"])
    delta = sum(np.load(p) for p in _eyelids(m).split(","))
    neutral = {**arrays}
    joints = arrays["J_regressor"].toarray() @ _flame_sample(m)
    speech = engine_output.vertices()
    weights = []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        weights.append(head.data.shape_keys.key_blocks["VOCA blink"].value)
    peak = scene.frame_start + int(np.argmax(weights))
    assert max(weights) == pytest.approx(1.0)                        # the test sentence holds a blink
    worst = 0.0
    for f in (1, 50, peak - 2, peak, 200, 280):
        scene.frame_set(f)
        weight = head.data.shape_keys.key_blocks["VOCA blink"].value
        pose = np.zeros((5, 3))
        for k, bone in ((1, "neck"), (3, "eye_left"), (4, "eye_right")):
            pose[k] = _quat_to_rotvec(rig.pose.bones[bone].rotation_quaternion)
        shaped = {**neutral, "v_template": speech[f - scene.frame_start].astype(np.float64) + weight * delta}
        want = reference_lbs(shaped, pose, joints=joints)
        worst = max(worst, np.abs(evaluated_vertices(head, scene, f) - want).max())
    print(f"\nheadless, everything on: max {worst * 1e6:.3f} µm from FLAME skinning of speech + blink")
    assert worst < TOLERANCE and template.shape == (5023, 3)


def _seed_with_a_blink(m, frames):
    """The first seed whose blink track for the clip (60 fps, the new scene's rate) holds a blink."""
    from voca_addon.core.living.liveliness import LivelinessSettings, compute_liveliness
    for seed in range(20):
        live = compute_liveliness(LivelinessSettings(blinks=True, blink_source=tuple(_eyelids(m).split(",")),
                                                     seed=seed), m["wav"], 60.0, frames, _flame_sample(m))
        if live.blink.peaks_s.size:
            return seed
    raise AssertionError("no blink in 20 seeds")


def _flame_sample(m):
    from voca_addon.core.flame.meshio import read_mesh
    return read_mesh(m["template"]).vertices.astype(np.float64)


def test_liveliness_headless_everything_off_keeps_speech_parity(m, tmp_path, engine_output):
    out = tmp_path / "plain.blend"
    r = run(*animate_args(m, out), cache=m["cache"])
    assert r.returncode == 0, r.stderr
    scene, head = open_blend(out)
    assert not [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert "VOCA blink" not in head.data.shape_keys.key_blocks and head.animation_data is None
    speech = engine_output.vertices()
    worst = max(np.abs(evaluated_vertices(head, scene, f) - speech[f - scene.frame_start]).max()
                for f in (1, 100, 250))
    print(f"\nheadless, everything off: speech parity max {worst * 1e6:.3f} µm")
    assert worst < TOLERANCE


@pytest.mark.parametrize("flags, message", [
    (("--rig",), "needs the FLAME model"),
    (("--blinks",), "Blinks need a blink shape"),
    (("--head-motion", "7"), "Head-motion strength"),
    (("--blink-source", ""), "--blink-source is empty"),
    (("--blinks", "--seed", "-1"), "is not a seed: give a whole number from 0"),
])
def test_liveliness_headless_bad_flags_give_one_message(m, tmp_path, flags, message):
    out = tmp_path / "x.blend"
    r = run(*animate_args(m, out, *flags), cache=m["cache"])
    assert_user_error(r, message)
    assert not out.exists()


def test_liveliness_headless_not_a_flame_model_or_other_topology(m, tmp_path):
    out = tmp_path / "x.blend"
    masks = m["data"] / "flame" / "FLAME_masks.pkl"                 # a FLAME file, but not a model
    r = run(*animate_args(m, out, "--flame-model", masks, "--rig"), cache=m["cache"])
    assert_user_error(r, "is not a FLAME model: it has no v_template")
    arkit = sorted((m["data"] / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0]
    r = run(*animate_args(m, out, "--blink-source", arkit), cache=m["cache"])
    assert_user_error(r, "1220 vertices but the head has 5023")
    assert not out.exists()


def test_liveliness_headless_rerun_replaces(m, tmp_path, flame_pkl):
    first, second = tmp_path / "a.blend", tmp_path / "b.blend"
    flags = ("--blink-source", _eyelids(m), "--head-motion", "1", "--gaze", "--flame-model", flame_pkl[0], "--rig")
    assert run(*animate_args(m, first, *flags), cache=m["cache"]).returncode == 0
    r = run(*animate_args(m, second, *flags, "--seed", "5", "--scene", first), cache=m["cache"])
    assert r.returncode == 0, r.stderr
    scene, head = open_blend(second)
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 1
    names = [k.name for k in head.data.shape_keys.key_blocks]
    assert names.count("VOCA blink") == 1 and len(head.vertex_groups) == 5
    r = run(*animate_args(m, tmp_path / "c.blend", "--scene", second), cache=m["cache"])   # a plain re-run
    scene, head = open_blend(tmp_path / "c.blend")
    assert not [o for o in bpy.data.objects if o.type == "ARMATURE"] and not head.vertex_groups
    assert "VOCA blink" not in head.data.shape_keys.key_blocks


def test_liveliness_headless_look_at_an_empty_in_the_scene(m, tmp_path):
    from mathutils import Vector
    bpy.ops.wm.read_factory_settings(use_empty=True)
    from voca_addon.blender.speech import writer
    from voca_addon.core.flame.meshio import read_mesh
    flame = read_mesh(m["template"])
    head = writer.build_head("FLAME", flame.vertices, flame.faces, bpy.context.scene.collection)
    target = bpy.data.objects.new("Target", None)
    bpy.context.scene.collection.objects.link(target)
    bpy.context.view_layer.update()
    target.location = head.matrix_world @ Vector((-0.05, 0.0, 0.4))
    scene_file, out = tmp_path / "with_target.blend", tmp_path / "out.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_file))
    r = run(*animate_args(m, out, "--scene", scene_file, "--gaze", "--look-at", "Target"), cache=m["cache"])
    assert r.returncode == 0, r.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out), load_ui=False)
    scene, rig, target = bpy.context.scene, bpy.data.objects["VOCA rig"], bpy.data.objects["Target"]
    scene.frame_set(scene.frame_start)
    for bone in ("eye_left", "eye_right"):
        world = rig.matrix_world @ rig.pose.bones[bone].matrix
        forward = (world.to_3x3() @ Vector((0.0, 0.0, 1.0))).normalized()
        assert np.degrees(forward.angle((target.matrix_world.translation - world.translation).normalized())) < 0.01
    r = run(*animate_args(m, tmp_path / "x.blend", "--scene", scene_file, "--gaze", "--look-at", "Nowhere"),
            cache=m["cache"])
    assert_user_error(r, "look-at target 'Nowhere'")
