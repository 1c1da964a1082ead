"""Emotion keys in Blender: added from the seed offsets and from EmoVOCA target meshes, keyed with ease,
artist keys marked; checked on the EVALUATED mesh and on the F-curves; refusals change nothing."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

import voca_addon  # noqa: E402
from voca_addon.blender.emotion import writer as emotion_writer  # noqa: E402
from voca_addon.blender.speech import writer
from voca_addon.core.emotion import sources as emotion_sources  # noqa: E402
from voca_addon.core.emotion import emotions as core_emotions  # noqa: E402
from voca_addon.core.emotion.emotions import Emotion  # noqa: E402
from voca_addon.core.errors import InputError, MeshError  # noqa: E402
from voca_addon.core.flame.meshio import read_mesh  # noqa: E402

TOLERANCE = 1e-6        # metres: 1 µm
EMOVOCA = ("emotions", "emovoca_COMA_CH01")


@pytest.fixture
def head(scene, flame):
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    bpy.context.view_layer.objects.active = obj
    return obj


@pytest.fixture
def offsets(shared_data):
    return shared_data / "emotions" / "seed_emotion_offsets.npz"


@pytest.fixture
def registered(scene):
    voca_addon.register()
    yield
    voca_addon.unregister()


def seed_deltas(path) -> dict:
    with np.load(path) as z:
        names, offsets = [str(n) for n in z["names"]], z["offsets"]
    neutral = offsets[names.index("neutral")]
    return {n: offsets[i] - neutral for i, n in enumerate(names) if n != "neutral"}


def set_value(obj, key_name, value):
    obj.data.shape_keys.key_blocks[key_name].value = value


def curves_of(obj):
    action = obj.data.shape_keys.animation_data.action
    return versions.fcurves(action)


def state(obj) -> tuple:
    key = obj.data.shape_keys
    names = [kb.name for kb in key.key_blocks] if key else []
    action = key.animation_data.action if key and key.animation_data else None
    curves = [(fc.data_path, len(fc.keyframe_points)) for fc in curves_of(obj)] if action else []
    return names, curves, len(bpy.data.actions)


def test_emotions_from_seed_offsets_evaluate_exactly(head, scene, flame, offsets, evaluated):
    deltas = seed_deltas(offsets)
    created = emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets), strength=0.7)
    assert created == [f"EMO {n}" for n in deltas]
    key = head.data.shape_keys
    assert list(key[emotion_writer.OWNED_EMOTIONS]) == created and key[writer.OWNED]
    block = key.key_blocks["EMO happy"]
    assert (block.slider_min, block.slider_max, block.value) == (0.0, 2.0, 0.0)
    assert block.relative_key == key.reference_key
    base = flame.vertices.astype(np.float32)
    np.testing.assert_allclose(evaluated(head, scene, 1), base, atol=TOLERANCE)
    for name in ("happy", "angry"):
        set_value(head, f"EMO {name}", 1.0)
        error = np.abs(evaluated(head, scene, 1) - (base + 0.7 * deltas[name])).max()
        assert error <= TOLERANCE, f"{name}: {error:.3g} m"
        set_value(head, f"EMO {name}", 0.0)
    assert emotion_writer.emotion_keys(head) == {n: f"EMO {n}" for n in deltas}


def test_emotions_re_adding_updates_in_place(head, offsets):
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["happy", "sad"]))
    emotion_writer.key_emotion(head, "happy", 1, 40, 5, 1.0)
    before = state(head)
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["happy"]), strength=2.0)
    assert state(head) == before                       # same keys, same place, keyframes kept
    key = head.data.shape_keys
    shape = writer.key_co(key.key_blocks["EMO happy"]) - writer.key_co(key.reference_key)
    assert np.abs(shape - 2.0 * seed_deltas(offsets)["happy"]).max() <= TOLERANCE


def test_emotions_from_emovoca_target_meshes(head, scene, shared_data, tmp_path, evaluated, flame):
    plys = sorted(shared_data.joinpath(*EMOVOCA).glob("*.ply"))
    neutral = plys[0]                              # EmoVOCA ships no neutral: one expression serves as it
    emotions = emotion_sources.load_emotions(shared_data.joinpath(*EMOVOCA), neutral=neutral)
    assert [e.name for e in emotions] == [p.stem for p in plys[1:]]
    created = emotion_writer.add_emotion_keys(head, emotions)
    assert len(created) == len(plys) - 1 and len(head.data.shape_keys.key_blocks) == len(plys)
    reference = read_mesh(neutral).vertices
    for path in (plys[1], plys[-1]):
        set_value(head, f"EMO {path.stem}", 1.0)
        expected = flame.vertices + (read_mesh(path).vertices - reference)
        assert np.abs(evaluated(head, scene, 1) - expected).max() <= TOLERANCE
        set_value(head, f"EMO {path.stem}", 0.0)
    # the folder rule: a file named neutral.* is the reference when no neutral is given
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / "neutral.ply").symlink_to(neutral)
    (folder / "smile.ply").symlink_to(plys[8])
    (only,) = emotion_sources.load_emotions(folder)
    np.testing.assert_array_equal(only.delta, (read_mesh(plys[8]).vertices - reference).astype(np.float32))
    with pytest.raises(InputError, match="no neutral.obj"):
        emotion_sources.load_emotions(shared_data.joinpath(*EMOVOCA))


def test_key_emotion_over_a_range_with_ease(head, scene, offsets):
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["happy"]))
    name = emotion_writer.key_emotion(head, "happy", 10, 60, 8, 1.5)
    assert name == "EMO happy"
    (fcurve,) = curves_of(head)
    assert fcurve.group.name == emotion_writer.GROUP and head.data.shape_keys.animation_data.action[writer.OWNED]
    frames, values = core_emotions.ease_curve(10, 60, 8, 1.5)
    co = np.empty(len(fcurve.keyframe_points) * 2, np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 2), np.column_stack([frames, values]), atol=1e-6)
    assert {kp.interpolation for kp in fcurve.keyframe_points} == {"LINEAR"}
    assert fcurve.evaluate(10) == 0 and fcurve.evaluate(60) == 0
    assert fcurve.evaluate(18) == pytest.approx(1.5) and fcurve.evaluate(35) == pytest.approx(1.5)
    assert fcurve.evaluate(14) == pytest.approx(1.5 * (0.5 ** 2 * (3 - 2 * 0.5)))    # smoothstep mid-ramp
    scene.frame_set(35)
    assert head.data.shape_keys.key_blocks["EMO happy"].value == pytest.approx(1.5)
    # a second stretch keeps the first; keying the first again replaces only its keys
    emotion_writer.key_emotion(head, "happy", 100, 120, 4, 0.5)
    emotion_writer.key_emotion(head, "happy", 10, 60, 8, 1.5)
    assert len(fcurve.keyframe_points) == len(frames) + len(core_emotions.ease_curve(100, 120, 4, 0.5)[0])
    assert fcurve.evaluate(35) == pytest.approx(1.5) and fcurve.evaluate(110) == pytest.approx(0.5)
    emotion_writer.key_emotion_at(head, "happy", 80, 0.25)
    assert fcurve.evaluate(80) == pytest.approx(0.25) and len(fcurve.keyframe_points) == len(frames) + 10 + 1


def test_mark_an_artist_key_and_key_it(head, scene, flame, evaluated):
    head.shape_key_add(name="Basis", from_mix=False)
    smile = head.shape_key_add(name="Smile", from_mix=False)
    delta = np.zeros_like(flame.vertices, dtype=np.float32)
    delta[:, 1] = 0.002
    smile.data.foreach_set("co", (flame.vertices.astype(np.float32) + delta).ravel())
    with pytest.raises(InputError, match="has no emotion key 'Smile'"):
        emotion_writer.key_emotion(head, "Smile", 1, 20, 4)
    smile.value = 0.3                                       # the artist's own setting of the slider
    emotion_writer.mark_as_emotion(head, "Smile")
    emotion_writer.mark_as_emotion(head, "Smile")          # twice is once
    assert emotion_writer.emotion_keys(head) == {"Smile": "Smile"}
    emotion_writer.key_emotion(head, "Smile", 1, 20, 4, peak=1.0)
    emotion_writer.key_emotion(head, "Smile", 30, 50, 4, peak=1.0)     # a second stretch: the 0.3 stays recorded
    assert np.abs(evaluated(head, scene, 10) - (flame.vertices + delta)).max() <= TOLERANCE
    with pytest.raises(InputError, match="Basis"):
        emotion_writer.mark_as_emotion(head, "Basis")
    assert emotion_writer.remove_emotion_keys(head) == 0    # the artist's key stays, our curve goes
    key = head.data.shape_keys
    # found by a trial run: the key stayed at the value it had when the curve went (1.0 mid-stretch)
    assert key.key_blocks["Smile"].value == pytest.approx(0.3) and "voca_marked_values" not in key
    assert [kb.name for kb in key.key_blocks] == ["Basis", "Smile"] and key.animation_data.action is None
    assert not len(bpy.data.actions) and emotion_writer.unmark_emotion(head, "Smile")
    assert emotion_writer.emotion_keys(head) == {}


def test_emotion_refusals_change_nothing(head, scene, flame, offsets):
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["sad"]))
    key = head.data.shape_keys
    before = state(head)
    with pytest.raises(MeshError, match="moves 10 vertices but the mesh has 5023"):
        emotion_writer.add_emotion_keys(head, [Emotion("tiny", np.zeros((10, 3), np.float32), "test")])
    with pytest.raises(InputError, match="slider range"):
        emotion_writer.key_emotion(head, "sad", 1, 20, 4, peak=3.0)
    with pytest.raises(InputError, match="end frame > start frame"):
        emotion_writer.key_emotion(head, "sad", 20, 20, 4)
    artist = head.shape_key_add(name="EMO happy", from_mix=False)
    with pytest.raises(InputError, match="VOCA did not create"):
        emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["happy"]))
    head.shape_key_remove(artist)
    fcurve = key.key_blocks["EMO sad"].driver_add("value")
    with pytest.raises(InputError, match="driven by a driver"):
        emotion_writer.key_emotion(head, "sad", 1, 20, 4)
    key.animation_data.drivers.remove(fcurve)
    key.key_blocks["EMO sad"].keyframe_insert("value", frame=1)       # an artist's own action
    with pytest.raises(InputError, match="did not create"):
        emotion_writer.key_emotion(head, "sad", 1, 20, 4)
    bpy.data.actions.remove(key.animation_data.action)
    assert state(head) == before


def test_hand_keyed_curve_in_voca_action_is_refused(head, offsets):
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["sad", "fear"]))
    emotion_writer.key_emotion(head, "sad", 1, 30, 4)                 # creates VOCA's action
    head.data.shape_keys.key_blocks["EMO fear"].keyframe_insert("value", frame=5)   # lands in it, by hand
    before = state(head)
    with pytest.raises(InputError, match="keyed by hand"):
        emotion_writer.key_emotion(head, "fear", 1, 30, 4)
    assert state(head) == before


def test_speech_rerun_keeps_emotion_keys_and_curves(head, scene, make_anim, offsets, evaluated):
    anim = make_anim()
    writer.write_animation(head, anim, scene, 1)
    emotion_writer.add_emotion_keys(head, emotion_sources.load_emotions(offsets, ["happy"]))
    emotion_writer.key_emotion(head, "happy", 1, 50, 5)
    before = state(head)
    writer.write_animation(head, anim, scene, 1)
    assert sorted(state(head)[1]) == sorted(before[1]) and len(bpy.data.actions) == 1
    frame = 20
    expected = anim.resampled(24).vertices([frame - 1])[0] + seed_deltas(offsets)["happy"]
    assert np.abs(evaluated(head, scene, frame) - expected).max() <= TOLERANCE
    assert emotion_writer.remove_emotion_keys(head) == 1
    assert writer.remove_animation(head) == 52 and head.data.shape_keys is None
    assert not len(bpy.data.actions)


def test_emotion_operators(registered, head, scene, offsets, shared_data):
    with pytest.raises(RuntimeError, match="Choose an emotion source"):
        bpy.ops.voca.add_emotions()
    assert bpy.ops.voca.add_emotions(source=str(offsets), names="happy, sad", strength=0.5) == {"FINISHED"}
    assert sorted(emotion_writer.emotion_keys(head)) == ["happy", "sad"]
    with pytest.raises(RuntimeError, match="no emotion named 'joy'"):
        bpy.ops.voca.add_emotions(source=str(offsets), names="joy")
    emovoca = shared_data.joinpath(*EMOVOCA)
    with pytest.raises(RuntimeError, match="needs its neutral mesh"):
        bpy.ops.voca.add_emotions(source=str(emovoca / "Smile2_30.ply"))
    assert bpy.ops.voca.add_emotions(source=str(emovoca / "Smile2_30.ply"),
                                     neutral=str(emovoca / "Sad1_30.ply")) == {"FINISHED"}
    assert "Smile2_30" in emotion_writer.emotion_keys(head)
    scene.frame_current = 30
    scene.voca.emotion = "happy"
    assert bpy.ops.voca.key_emotion(value=0.8) == {"FINISHED"}
    assert bpy.ops.voca.key_emotion(use_range=True, frame_start=40, frame_end=80, ease=5) == {"FINISHED"}
    fcurve = emotion_writer._find_curve(head.data.shape_keys, "EMO happy")
    assert fcurve.evaluate(30) == pytest.approx(0.8) and fcurve.evaluate(60) == pytest.approx(1.0)
    head.active_shape_key_index = 0
    with pytest.raises(RuntimeError, match="Basis cannot be an emotion"):
        bpy.ops.voca.mark_emotion()
    head.shape_key_add(name="Frown", from_mix=False)
    head.active_shape_key_index = len(head.data.shape_keys.key_blocks) - 1
    assert bpy.ops.voca.mark_emotion() == {"FINISHED"} and "Frown" in emotion_writer.emotion_keys(head)
    assert bpy.ops.voca.mark_emotion(unmark=True) == {"FINISHED"}
    assert "Frown" not in emotion_writer.emotion_keys(head)
