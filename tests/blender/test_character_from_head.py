"""The Character panel driven straight from a FLAME head that Animate from audio animated: the ARKit face
(real data, its 68 landmark pairs) gets the head's motion on the head's frames at the scene's rate, equal
to the core transfer of the engine's animation; a re-run of Animate + Transfer / Drive replaces the
character's animation; the sound strip, the frame range and the head are untouched; bad heads refused.
Models: the random-weight VOCA / DeepSpeech fixtures in the official formats (the real weights are not
distributable)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

import voca_addon  # noqa: E402
from voca_addon.blender.character import (data as character_io, source as character_source,
                                          writer as character_writer)  # noqa: E402
from voca_addon.blender import compat, keyframes, preferences
from voca_addon.blender.speech import pipeline, writer
from voca_addon.core import engine  # noqa: E402
from voca_addon.core.character import keyfiles, keysolve, landmarks as lm, transfer  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402
from voca_addon.core.models import modelfiles  # noqa: E402

TOLERANCE = 2e-6            # metres: float32 rounding of keys holding ~0.1 m coordinates
FPS, START = 25, 11         # the scene's rate and start frame: not VOCA's 60 fps, not frame 1


@pytest.fixture
def paths(shared_data, voca_ckpt, ds_small_pb):
    return dict(voca=Path(voca_ckpt), deepspeech=Path(ds_small_pb), template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test.wav", arkit=shared_data / "arkit")


@pytest.fixture
def addon(scene, paths, model_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path / "no-default-models"))
    voca_addon.register()
    entry = bpy.context.preferences.addons.new()
    entry.module = preferences.ADDON_ID
    prefs = entry.preferences
    prefs.voca_path, prefs.deepspeech_path = str(paths["voca"]), str(paths["deepspeech"])
    prefs.template_path = str(paths["template"])
    scene.voca.audio_path = str(paths["wav"])
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start = START
    yield scene
    entry = bpy.context.preferences.addons.get(preferences.ADDON_ID)
    if entry is not None:
        bpy.context.preferences.addons.remove(entry)
    voca_addon.unregister()


@pytest.fixture
def rig(addon, paths, tmp_path):
    """The FLAME head (active) and the fitted ARKit face as the target, the head as the source."""
    head = pipeline.ensure_head(bpy.context, str(paths["template"]))
    head.voca_articulation.closures = False     # VOCA's exact result (lip closures: test_articulation*.py)
    mesh = meshio.read_mesh(paths["arkit"] / "ARKit_blendshapes" / "Neutral.obj")
    face = character_writer.build_target("Face", mesh.vertices, mesh.faces, addon.collection)
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(paths["arkit"] / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(paths["arkit"] / "ARKit_landmarks.txt", dtype=int))
    settings = addon.voca_character
    settings.target, settings.pairs_path = face, str(pairs)
    settings.source, settings.source_head = "HEAD", head
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    template = meshio.read_mesh(paths["template"])
    return head, face, mesh, character_io.load_fit(face, mesh.vertices, template.faces)


@pytest.fixture(scope="module")
def engine_anim(tmp_path_factory):
    """``core.engine.run`` on the test audio with the fixture models, per speaking style (memoised)."""
    cache, models = {}, tmp_path_factory.mktemp("engine-model-cache")

    def run(paths, condition=3):
        if condition not in cache:
            ds = modelfiles.load_deepspeech(paths["deepspeech"], cache=models)
            voca = modelfiles.load_voca(paths["voca"], cache=models)
            cache[condition] = engine.run(paths["wav"], ds, voca, meshio.read_mesh(paths["template"]).vertices,
                                          condition)
        return cache[condition]
    return run


def animate(head, condition="3"):
    bpy.context.view_layer.objects.active = head
    bpy.context.scene.voca.condition = condition
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}


def scene_state():
    scene = bpy.context.scene
    return (sorted((s.name, s.channel, s.frame_final_start, s.frame_final_end) for s in versions.strips_all(scene)),
            (scene.frame_start, scene.frame_end), writer.scene_fps(scene))


def assert_plays(face, expected, frames, evaluated):
    """The face's evaluated mesh at scene frame START + i == frame i of ``expected``."""
    scene = bpy.context.scene
    for i in frames:
        error = np.abs(evaluated(face, scene, START + i) - expected.vertices([i])[0]).max()
        assert error <= TOLERANCE, f"frame {i}: {error:.3g} m"


def test_character_from_head_reads_back_the_engines_animation(rig, paths, engine_anim):
    head, *_ = rig
    animate(head)
    motion = character_source.head_animation(head, bpy.context.scene)
    want = engine_anim(paths).resampled(FPS)
    assert motion.start_frame == START and motion.end_frame == bpy.context.scene.frame_end
    assert motion.animation.fps == FPS and motion.animation.names == want.names
    np.testing.assert_allclose(motion.animation.vertices(), want.vertices(), atol=TOLERANCE)


def test_character_from_head_transfer_equals_the_core_transfer(rig, paths, engine_anim, evaluated):
    head, face, mesh, fit = rig
    animate(head)
    before = scene_state()
    head_keys = [b.name for b in head.data.shape_keys.key_blocks]
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    assert scene_state() == before                        # sound strip, frame range, rate untouched
    assert [b.name for b in head.data.shape_keys.key_blocks] == head_keys
    expected = transfer.transfer(engine_anim(paths).resampled(FPS), fit, mesh.vertices, mesh.faces)
    assert face.data.shape_keys.animation_data.action.get(writer.OWNED)
    assert_plays(face, expected, [0, 1, expected.num_frames // 2, expected.num_frames - 1], evaluated)


def test_character_from_head_rerun_replaces_the_characters_animation(rig, paths, engine_anim, evaluated):
    head, face, mesh, fit = rig
    animate(head)
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    keys = [b.name for b in face.data.shape_keys.key_blocks]
    actions, curves = len(bpy.data.actions), len(versions.fcurves(face.data.shape_keys.animation_data.action))
    animate(head, "5")                                    # another speaking style: other motion
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    assert [b.name for b in face.data.shape_keys.key_blocks] == keys
    assert len(bpy.data.actions) == actions
    assert len(versions.fcurves(face.data.shape_keys.animation_data.action)) == curves == 51
    expected = transfer.transfer(engine_anim(paths, 5).resampled(FPS), fit, mesh.vertices, mesh.faces)
    assert_plays(face, expected, [0, expected.num_frames // 3, expected.num_frames - 1], evaluated)


def test_character_from_head_drives_its_arkit_keys_on_the_heads_frames(rig, paths, engine_anim):
    head, face, mesh, fit = rig
    keys = keyfiles.read_key_folder(paths["arkit"] / "ARKit_blendshapes", mesh)
    character_writer.add_rig_keys(face, keys.rest, keys.names, keys.deltas)
    animate(head)
    before = scene_state()
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    assert scene_state() == before
    motion = transfer.transfer(engine_anim(paths).resampled(FPS), fit, mesh.vertices, mesh.faces)
    solution = keysolve.solve_keys(motion, keys.deltas, keys.names)
    anim_data = face.data.shape_keys.animation_data
    jaw = keys.names.index("jawOpen")
    points = np.array([p.co[:] for p in compat.find_fcurve(
        anim_data, keyframes.value_path("jawOpen")).keyframe_points])
    np.testing.assert_array_equal(points[:, 0], START + np.arange(motion.num_frames))
    np.testing.assert_allclose(points[:, 1], solution.weights[:, jaw], atol=1e-4)
    animate(head, "5")                                    # re-run both: the curves are replaced
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    assert len(versions.fcurves(anim_data.action)) == 51
    motion = transfer.transfer(engine_anim(paths, 5).resampled(FPS), fit, mesh.vertices, mesh.faces)
    solution = keysolve.solve_keys(motion, keys.deltas, keys.names)
    values = np.array([p.co[1] for p in compat.find_fcurve(
        anim_data, keyframes.value_path("jawOpen")).keyframe_points])
    np.testing.assert_allclose(values, solution.weights[:, jaw], atol=1e-4)


def run_op(name):
    try:
        return getattr(bpy.ops.voca, name)()
    except RuntimeError as exc:
        return str(exc)


def test_character_from_head_refuses_heads_it_cannot_read(rig, paths):
    head, face, *_ = rig
    settings = bpy.context.scene.voca_character
    assert "has no VOCA animation: run Animate from audio" in run_op("character_transfer")
    bpy.context.scene.voca.mode = "per_frame"
    animate(head)
    assert "per-frame keys" in run_op("character_transfer")
    bpy.context.scene.voca.mode = "shape_keys"
    animate(head)
    settings.target = head
    assert "the same object" in run_op("character_transfer")
    settings.target = face
    artist = bpy.data.actions.new("artist")
    head.data.shape_keys.animation_data.action = artist
    assert "not keyed by VOCA's action" in run_op("character_transfer")
    assert face.data.shape_keys is None and character_io.residuals(face) is not None


def test_character_from_head_reads_samples_and_edited_curves_as_blender_plays_them(rig, paths):
    """A long clip's curves are stored as samples (keyframes.py); an artist may delete a keyframe: the head
    is read back as it plays, frame by frame."""
    head, *_ = rig
    animate(head)
    scene, key = bpy.context.scene, head.data.shape_keys
    first = character_source.head_animation(head, scene).animation
    names = list(key[writer.OWNED_KEYS])
    compat.find_fcurve(key.animation_data, keyframes.value_path(names[0])).convert_to_samples(START, scene.frame_end + 1)
    edited = compat.find_fcurve(key.animation_data, keyframes.value_path(names[1]))
    edited.keyframe_points.remove(edited.keyframe_points[40])          # frame START + 40 now interpolated
    motion = character_source.head_animation(head, scene)
    assert motion.start_frame == START and motion.animation.num_frames == first.num_frames
    np.testing.assert_array_equal(motion.animation.weights[:, 0], first.weights[:, 0])
    w = first.weights[:, 1]
    np.testing.assert_allclose(motion.animation.weights[:, 1],
                               np.r_[w[:40], (w[39] + w[41]) / 2, w[41:]], atol=1e-6)
    played = [edited.evaluate(START + i) for i in (39, 40, 41)]
    np.testing.assert_allclose(motion.animation.weights[39:42, 1], played, atol=1e-6)


def test_character_from_head_carries_its_emotion_and_blinks(rig, paths, shared_data, evaluated):
    """A head animated with an emotion, blinks and head motion: the reading is everything its shape keys
    play (the head's own evaluated mesh, every frame checked), and the character replays its transfer;
    head motion (the object's rotation) stays on the head."""
    head, face, mesh, fit = rig
    props = bpy.context.scene.voca
    props.emotion, props.emotion_source = "happy", str(shared_data / "emotions" / "seed_emotion_offsets.npz")
    living = props.living
    living.blinks, living.head_motion = True, True
    living.blink_source = ",".join(str(shared_data / "flame" / f) for f in ("l_eyelid.npy", "r_eyelid.npy"))
    animate(head)
    motion = character_source.head_animation(head, bpy.context.scene)
    assert {"EMO happy", "blink"} <= set(motion.animation.names)
    played = motion.animation.vertices()
    for i in range(0, motion.animation.num_frames, 7):
        np.testing.assert_allclose(evaluated(head, bpy.context.scene, START + i), played[i], atol=TOLERANCE)
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    assert {"VOCA_EMO happy", "VOCA_blink"} <= {b.name for b in face.data.shape_keys.key_blocks}
    expected = transfer.transfer(motion.animation, fit, mesh.vertices, mesh.faces)
    assert_plays(face, expected, [0, 30, expected.num_frames // 2, expected.num_frames - 1], evaluated)
    assert face.animation_data is None                    # the head's rotation is not the character's


class Counting:
    """An F-curve that counts its ``evaluate`` calls (everything else is the curve's)."""

    def __init__(self, fcurve):
        self._fcurve, self.calls = fcurve, 0

    def __getattr__(self, name):
        return getattr(self._fcurve, name)

    def evaluate(self, frame):
        self.calls += 1
        return self._fcurve.evaluate(frame)


def test_character_from_head_reads_keyed_emotions_and_modifiers_as_blender_plays_them(rig, evaluated):
    """An emotion keyed by hand with a few LINEAR keys (before, inside and after the clip's frames, one off the
    frame grid), a key with CONSTANT keys, one with LINEAR extrapolation and a speech curve with a Noise
    modifier: the reading equals the head's evaluated mesh at every frame; only the Noise curve and the
    extrapolated frames ask Blender frame by frame."""
    head, *_ = rig
    animate(head)
    scene, key = bpy.context.scene, head.data.shape_keys
    anim_data, n = key.animation_data, scene.frame_end - START + 1
    basis = writer.key_co(key.reference_key)

    def keyed(name, points, interpolation, shift):
        block = head.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set("co", (basis + np.float32(shift) * basis[:, [1, 2, 0]]).ravel())
        fcurve = compat.new_fcurve(anim_data, keyframes.value_path(name))
        keyframes.set_keyframes(fcurve, *np.array(points, np.float64).T, interpolation)
        return block, fcurve

    _, linear = keyed("EMO calm", [(START - 6, 0.0), (START + n // 4, 0.8), (START + n / 3 + 0.3, 0.35),
                                   (START + n - 12, 0.6)], keyframes.LINEAR, 0.05)
    _, constant = keyed("EMO stern", [(START + 5, 0.2), (START + n / 2 + 0.5, 0.9), (START + n - 20, 0.1)],
                        keyframes.CONSTANT, -0.04)
    _, rising = keyed("EMO rising", [(START + n // 2 - 10, 0.4), (START + n // 2 + 10, 0.5)], keyframes.LINEAR,
                      0.03)
    rising.extrapolation = "LINEAR"
    names = list(key[writer.OWNED_KEYS])
    noisy = compat.find_fcurve(anim_data, keyframes.value_path(names[2]))
    noise = noisy.modifiers.new("NOISE")
    noise.strength, noise.scale = 2.0, 3.0
    motion = character_source.head_animation(head, scene)
    assert motion.start_frame == START and motion.animation.num_frames == n
    assert {"EMO calm", "EMO stern", "EMO rising"} <= set(motion.animation.names)
    played = motion.animation.vertices()
    for i in range(n):
        np.testing.assert_allclose(evaluated(head, scene, START + i), played[i], atol=TOLERANCE,
                                   err_msg=f"frame {START + i}")
    frames = START + np.arange(n, dtype=np.float64)
    for fcurve, name, calls in ((linear, "EMO calm", 0), (constant, "EMO stern", 0), (noisy, names[2], n),
                                (rising, "EMO rising", n - 21)):
        counting = Counting(fcurve)
        values = character_source._values(counting, key.key_blocks[name], frames)
        want = np.clip([fcurve.evaluate(f) for f in frames], key.key_blocks[name].slider_min,
                       key.key_blocks[name].slider_max)
        np.testing.assert_allclose(values, want, atol=1e-6, err_msg=name)
        assert counting.calls == calls, name
