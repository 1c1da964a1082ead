"""Blinks, head motion and gaze written into Blender from real speech: checked on the EVALUATED mesh and the
object's world matrix; removal restores the scene, a re-run replaces, bad inputs change nothing."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

bpy = pytest.importorskip("bpy")

from tests.core.flame.flame_format import reference_lbs, write_flame_format_model  # noqa: E402
from voca_addon.blender.liveliness import writer as lw, rig  # noqa: E402
from voca_addon.blender.speech import writer
from voca_addon.core.errors import InputError, MeshError  # noqa: E402
from voca_addon.core.living import gaze as core_gaze  # noqa: E402
from voca_addon.core.living.liveliness import Liveliness, LivelinessSettings, compute_liveliness  # noqa: E402

TOLERANCE = 1e-6        # metres: 1 µm
FRAMES = 120


@pytest.fixture(scope="module")
def model_file(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    return path, write_flame_format_model(path, shared_data, seed=5)


@pytest.fixture
def head(scene, flame):
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    bpy.context.view_layer.objects.active = obj
    return obj


@pytest.fixture
def live(shared_data, flame, scene):
    """Factory: a Liveliness computed from VOCA's test sentence at the scene's fps."""
    def make(**settings) -> Liveliness:
        audio = shared_data / "audio" / "test_sentence.wav"
        return compute_liveliness(LivelinessSettings(**settings), audio, writer.scene_fps(scene), FRAMES,
                                  flame.vertices)
    return make


@pytest.fixture
def eyelids(shared_data):
    return (str(shared_data / "flame" / "l_eyelid.npy"), str(shared_data / "flame" / "r_eyelid.npy"))


def _scene_state(obj):
    key = obj.data.shape_keys
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            [k.name for k in key.key_blocks] if key else None, [g.name for g in obj.vertex_groups],
            [m.name for m in obj.modifiers], tuple(obj.delta_rotation_euler), sorted(obj.keys()))


def test_liveliness_blink_adds_the_eyelid_shape_on_top_of_speech(head, scene, flame, make_anim, live, eyelids,
                                                                  evaluated, shared_data):
    anim = make_anim(frames=FRAMES, fps=writer.scene_fps(scene))
    writer.write_animation(head, anim, scene, start_frame=1)
    lively = _with_a_blink(live, blink_source=eyelids)
    lw.write_liveliness(head, scene, lively, start_frame=1)
    delta = np.load(eyelids[0]) + np.load(eyelids[1])
    speech = anim.vertices()
    peak = int(round(lively.blink.peaks_s[0] * lively.fps))
    open_frame = int(np.flatnonzero(lively.blink.weight == 0)[0])
    for f in (peak, open_frame, peak - 1):
        want = speech[f] + lively.blink.weight[f] * delta
        assert np.abs(evaluated(head, scene, f + 1) - want).max() < TOLERANCE
    curve = next(fc for fc in _key_fcurves(head) if "VOCA blink" in fc.data_path)
    assert curve.group.name == lw.BLINK_GROUP and len(curve.keyframe_points) == FRAMES


def _with_a_blink(live, **settings):
    """The first seed whose 5 s track holds a blink (a track may have none: ~1.3 are expected)."""
    for seed in range(20):
        lively = live(blinks=True, seed=seed, **settings)
        if lively.blink.peaks_s.size and lively.blink.peaks_s[0] * lively.fps >= 1:
            return lively
    raise AssertionError("no blink in 20 seeds")


def _key_fcurves(obj):
    from voca_addon.blender import compat
    return list(compat.action_fcurves(obj.data.shape_keys.animation_data.action))


def test_liveliness_blink_on_an_artists_marked_key_keeps_the_key(head, scene, live, eyelids, evaluated, flame):
    head.shape_key_add(name="Basis", from_mix=False)
    closed = head.shape_key_add(name="MyBlink", from_mix=False)
    delta = np.load(eyelids[0])
    closed.data.foreach_set("co", (flame.vertices + delta).astype(np.float32).ravel())
    lw.mark_as_blink(head, "MyBlink")
    lively = _with_a_blink(live)
    assert lively.blink_shape is None
    lw.write_liveliness(head, scene, lively, start_frame=1)
    peak = int(round(lively.blink.peaks_s[0] * lively.fps))
    assert np.abs(evaluated(head, scene, peak + 1) - (flame.vertices + delta)).max() < TOLERANCE
    lw.remove_liveliness(head)
    assert "MyBlink" in head.data.shape_keys.key_blocks and head.data.shape_keys.animation_data.action is None


@pytest.mark.parametrize("mode", ["XYZ", "ZXY", "QUATERNION"])
def test_liveliness_head_motion_without_rig_turns_the_head_in_its_own_frame(head, scene, live, flame, mode):
    head.rotation_mode = mode                                          # Blender converts the rotation
    scene.frame_set(1)
    rest = np.array(head.matrix_world)
    lively = live(head_motion=1.5, seed=3)
    lw.write_liveliness(head, scene, lively, start_frame=1)
    homogeneous = np.c_[flame.vertices, np.ones(len(flame.vertices))]
    worst = 0.0
    for f in (1, 40, 100):
        scene.frame_set(f)
        moved = homogeneous @ np.array(head.matrix_world).T
        turned = Rotation.from_rotvec(lively.head.rotation[f - 1]).apply(flame.vertices)
        want = np.c_[turned, np.ones(len(turned))] @ rest.T
        worst = max(worst, np.abs(moved - want).max() / writer.HEAD_SCALE)
    assert worst < TOLERANCE
    lw.remove_liveliness(head)
    scene.frame_set(40)
    np.testing.assert_allclose(np.array(head.matrix_world), rest, atol=1e-6)


def test_liveliness_with_rig_keys_the_neck_and_eyes(head, scene, live, flame, model_file, evaluated):
    path, arrays = model_file
    lively = live(head_motion=1.0, gaze=True, flame_model=str(path), rig=True, seed=4)
    lw.write_liveliness(head, scene, lively, start_frame=1)
    reference = {**arrays, "v_template": flame.vertices.astype(np.float64)}
    worst = 0.0
    for f in (1, 60, 110):
        pose = np.zeros((5, 3))
        pose[1] = lively.head.rotation[f - 1]
        pose[3:] = lively.gaze.rotation[f - 1]
        worst = max(worst, np.abs(evaluated(head, scene, f) - reference_lbs(reference, pose)).max())
    print(f"\nrig keyed from speech (neck + eyes + correctives): max {worst * 1e6:.3f} µm")
    assert worst < TOLERANCE


def test_liveliness_gaze_without_rig_rotates_only_the_eyeballs(head, scene, live, flame, evaluated):
    lively = live(gaze=True, seed=6)
    lw.write_liveliness(head, scene, lively, start_frame=1)
    left, right = core_gaze.eyeball_vertices(flame.vertices, flame.faces)
    eyes = np.zeros(len(flame.vertices), bool)
    eyes[left] = eyes[right] = True
    f = int(np.argmax(np.abs(lively.gaze.rotation[:, 0]).sum(axis=1)))     # a frame looking away
    got = evaluated(head, scene, f + 1)
    np.testing.assert_array_equal(got[~eyes], flame.vertices[~eyes].astype(np.float32))
    for k, idx in enumerate((left, right)):
        centre = flame.vertices[idx].mean(axis=0)
        want = Rotation.from_rotvec(lively.gaze.rotation[f, k]).apply(flame.vertices[idx] - centre) + centre
        assert np.abs(got[idx] - want).max() < TOLERANCE
    assert np.abs(got[left] - flame.vertices[left]).max() > 1e-4          # the eyes really moved


def test_liveliness_remove_and_rerun(head, scene, make_anim, live, eyelids, model_file, evaluated):
    anim = make_anim(frames=FRAMES, fps=writer.scene_fps(scene))
    writer.write_animation(head, anim, scene, start_frame=1)
    before = _scene_state(head)
    settings = dict(blinks=True, blink_source=eyelids, head_motion=1.0, gaze=True,
                    flame_model=str(model_file[0]), rig=True, shape_sliders=3)
    lw.write_liveliness(head, scene, live(**settings), start_frame=1)
    lw.write_liveliness(head, scene, live(**settings, seed=9), start_frame=1)             # re-run
    assert len([o for o in bpy.data.objects if o.type == "ARMATURE"]) == 1
    names = [k.name for k in head.data.shape_keys.key_blocks]
    assert names.count("VOCA blink") == 1 and len(names) == 51 + 1 + 1 + 36 + 3
    assert lw.remove_liveliness(head) > 0
    assert _scene_state(head) == before
    np.testing.assert_allclose(evaluated(head, scene, 5), anim.vertices()[4], atol=TOLERANCE)


def test_liveliness_everything_off_leaves_speech_parity(head, scene, make_anim, live, evaluated):
    anim = make_anim(frames=FRAMES, fps=writer.scene_fps(scene))
    writer.write_animation(head, anim, scene, start_frame=1)
    before = _scene_state(head)
    lively = live()
    assert lively.empty and lw.write_liveliness(head, scene, lively, start_frame=1) == []
    assert _scene_state(head) == before
    worst = max(np.abs(evaluated(head, scene, f + 1) - anim.vertices()[f]).max() for f in (0, 50, 119))
    print(f"\nspeech parity with everything off: max {worst * 1e6:.3f} µm")
    assert worst < TOLERANCE


def test_liveliness_bad_inputs_change_nothing(head, scene, live, eyelids, model_file, shared_data, tmp_path):
    from voca_addon.core.flame.meshio import read_mesh
    before = _scene_state(head)
    no_shape = live(blinks=True)
    with pytest.raises(InputError, match="Blinks need a blink shape"):
        lw.write_liveliness(head, scene, no_shape, start_frame=1)
    arkit = read_mesh(sorted((shared_data / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0])
    other = writer.build_head("ARKit", arkit.vertices, arkit.faces, scene.collection)
    with pytest.raises(MeshError, match="1220"):
        lw.write_liveliness(other, scene, live(blinks=True, blink_source=eyelids), start_frame=1)
    with pytest.raises(MeshError, match="5023 vertices but the mesh 'ARKit' has 1220"):
        lw.write_liveliness(other, scene, live(rig=True, flame_model=str(model_file[0])), start_frame=1)
    with pytest.raises(MeshError, match="separate part"):
        lw.write_liveliness(other, scene, live(gaze=True), start_frame=1)
    head.animation_data_create().action = bpy.data.actions.new("artist")
    head.animation_data.action.use_fake_user = True
    with pytest.raises(InputError, match="which VOCA did not create"):
        lw.write_liveliness(head, scene, live(head_motion=1.0), start_frame=1)
    head.animation_data.action = None
    head.rotation_mode = "AXIS_ANGLE"
    with pytest.raises(InputError, match="Axis Angle"):
        lw.write_liveliness(head, scene, live(head_motion=1.0), start_frame=1)
    head.rotation_mode = "XYZ"
    assert _scene_state(head)[2:] == before[2:]
    assert not other.vertex_groups and other.data.shape_keys is None and not other.modifiers


@pytest.mark.parametrize("with_rig", [False, True])
def test_liveliness_gaze_looks_at_an_empty_while_the_head_moves(head, scene, flame, model_file, shared_data,
                                                               with_rig):
    from mathutils import Vector
    from voca_addon.core.living.liveliness import load_assets
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    bpy.context.view_layer.update()
    target.location = head.matrix_world @ Vector((0.03, 0.05, 0.5))          # half a metre in front
    seed = next(s for s in range(50) if core_gaze.gaze_track(FRAMES, 24.0, seed=s).saccade_s[0] > 1.0)
    settings = LivelinessSettings(gaze=True, head_motion=2.0, look_at="Target", seed=seed,
                                  **({"flame_model": str(model_file[0]), "rig": True} if with_rig else {}))
    assets = load_assets(settings, flame.vertices)
    live = lw.plan(scene, head, settings, assets, shared_data / "audio" / "test_sentence.wav", FRAMES,
                   flame.vertices)
    lw.write_liveliness(head, scene, live, start_frame=1)
    armature = rig.find_rig(head)

    def aim_error(f):
        scene.frame_set(f)
        worst = 0.0
        for bone in rig.EYE_NAMES:
            world = armature.matrix_world @ armature.pose.bones[bone].matrix
            forward = (world.to_3x3() @ Vector((0.0, 0.0, 1.0))).normalized()
            ray = (target.matrix_world.translation - world.translation).normalized()
            worst = max(worst, np.degrees(forward.angle(ray)))
        return worst

    fixating = range(1, int(live.gaze.saccade_s[0] * live.fps) + 1)         # before the first saccade
    head_turn = np.degrees(np.linalg.norm(live.head.rotation[list(fixating)[-1] - 1] - live.head.rotation[0]))
    still = max(aim_error(f) for f in fixating)
    errors = [aim_error(f) for f in range(1, FRAMES + 1, 7)]
    print(f"\nlook-at {'with rig' if with_rig else 'eye rig'}: {len(fixating)} frames of fixation while the head "
          f"turns {head_turn:.1f}°: max {still:.4f}°; over the clip mean {np.mean(errors):.2f}°, max "
          f"{np.max(errors):.2f}° (saccades around the target)")
    assert still < 0.01 and head_turn > 0.2 and np.mean(errors) < 4 and np.max(errors) < 12


def test_liveliness_look_at_a_missing_object_is_refused(head, scene, flame, shared_data):
    settings = LivelinessSettings(gaze=True, look_at="Nowhere")
    with pytest.raises(InputError, match="look-at target 'Nowhere'"):
        lw.plan(scene, head, settings, None, shared_data / "audio" / "test_sentence.wav", FRAMES, flame.vertices)


def test_liveliness_failure_half_way_leaves_nothing(head, scene, live, eyelids, model_file, monkeypatch):
    before = _scene_state(head)

    def broken(*args, **kwargs):
        raise RuntimeError("injected")
    monkeypatch.setattr(rig, "build_eye_rig", broken)             # after the blink and the head motion
    with pytest.raises(RuntimeError, match="injected"):
        lw.write_liveliness(head, scene, live(blinks=True, blink_source=eyelids, head_motion=1.0, gaze=True),
                            start_frame=1)
    state = _scene_state(head)
    assert state[2:] == before[2:] and not bpy.data.armatures
    assert head.animation_data is None or head.animation_data.action is None
    assert head.data.shape_keys is None
