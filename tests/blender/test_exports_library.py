"""The dialogue library: every clip on one head, an action per clip, NLA strips, markers, sound strips.

Clips: VOCA (random-weight model, official format) on real VOCASET sentences of different lengths.
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_exports import read_glb  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.exports import engines as exports
from voca_addon.blender.speech import writer
from voca_addon.core import batch  # noqa: E402
from voca_addon.core.errors import InputError  # noqa: E402
from voca_addon.core.models import modelfiles  # noqa: E402

TOLERANCE = 1e-6        # metres


@pytest.fixture(scope="module")
def clips(shared_data, voca_ckpt, ds_small_pb, model_cache, flame):
    wavs = sorted((shared_data / "audio" / "vocaset" / "FaceTalk_170809_00138_TA").glob("sentence0*.wav"))[:3]
    requests = [batch.ClipRequest(f"line_{k + 1}", str(w), 3 + k) for k, w in enumerate(wavs)]
    ds = modelfiles.load_deepspeech(ds_small_pb, model_cache)
    outcomes = batch.animate_group(requests, ds, modelfiles.load_voca(voca_ckpt, model_cache), flame.vertices)
    assert len({o.animation.num_frames for o in outcomes}) == 3
    return [exports.LibraryClip(o.request.name, o.animation, o.request.audio_path) for o in outcomes]


def test_exports_library_an_action_per_clip_on_the_nla_with_markers(clips, flame, tmp_path):
    report = exports.build_library(clips, flame, tmp_path / "dialogue.blend", gap=30)
    scene = bpy.context.scene
    assert [a.name for a in report.actions] == ["line_1", "line_2", "line_3"]
    assert all(a.use_fake_user and a.get(writer.OWNED) for a in report.actions)
    starts = [r[0] for r in report.ranges]
    lengths = [c.animation.num_frames for c in clips]
    assert starts == [1, 1 + lengths[0] + 30, 1 + lengths[0] + lengths[1] + 60]
    key = report.head.data.shape_keys
    assert key.animation_data.action is None                 # the NLA plays the dialogue
    tracks = key.animation_data.nla_tracks
    assert [t.name for t in tracks] == [c.name for c in clips] and all(len(t.strips) == 1 for t in tracks)
    assert [(t.strips[0].action.name, int(t.strips[0].frame_start), int(t.strips[0].frame_end)) for t in tracks] \
        == [(c.name, r[0], r[1]) for c, r in zip(clips, report.ranges)]
    assert sorted((m.name, m.frame) for m in scene.timeline_markers) == \
        sorted((c.name, r[0]) for c, r in zip(clips, report.ranges))
    assert (scene.frame_start, scene.frame_end) == (1, report.ranges[-1][1])
    if compat.HAS_AUDIO:
        strips = compat.sequencer_strips(scene.sequence_editor)
        assert sorted((s.name, s.frame_start) for s in strips) == sorted((c.name, r[0]) for c, r in zip(clips, report.ranges))
    for clip, (start, end) in zip(clips, report.ranges):     # every clip plays from the NLA, exactly
        for local in (0, (end - start) // 2, end - start):
            got = evaluated_vertices(report.head, scene, start + local)
            assert np.abs(got - clip.animation.vertices([local])[0]).max() <= TOLERANCE, (clip.name, local)


@pytest.mark.skipif(not compat.HAS_AUDIO, reason="this bpy build has no audio (bpy 4.2 from PyPI)")
def test_exports_library_sound_strips_are_owned_and_removable(clips, flame, shared_data):
    """The dialogue's sounds come from the one sound-strip writer: each strip and its sound are the add-on's
    (``voca_owned``), one per clip, none overlapping another on its channel; Remove takes them all and
    their sounds, the artist's own strip stays."""
    exports.build_library(clips, flame)
    scene = bpy.context.scene
    editor = scene.sequence_editor
    strips = list(compat.sequencer_strips(editor))
    assert len(strips) == len(clips) and all(s.get(writer.OWNED) and s.sound.get(writer.OWNED) for s in strips)
    assert all(s.sound.samplerate > 0 for s in strips)                    # readable, checked
    spans = sorted((s.channel, s.frame_final_start, s.frame_final_end) for s in strips)
    assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(spans, spans[1:]))
    mine = compat.sequencer_strips(editor).new_sound("artist", str(shared_data / "audio" / "test.wav"), 5, 1)
    assert writer.remove_sound_strips(scene) == len(clips)
    assert [s.name for s in compat.sequencer_strips(editor)] == [mine.name]
    assert [s.filepath for s in bpy.data.sounds] == [mine.sound.filepath]  # the clips' sounds went with them


def test_exports_library_each_action_plays_its_clip_alone(clips, flame, tmp_path):
    report = exports.build_library(clips, flame)
    scene = bpy.context.scene
    key = report.head.data.shape_keys
    for track in key.animation_data.nla_tracks:
        track.mute = True
    clip = clips[1]
    compat.assign_action(key.animation_data, report.actions[1], "KEY", exports.PREFIX)
    for local in (0, clip.animation.num_frames - 1):
        got = evaluated_vertices(report.head, scene, 1 + local)
        assert np.abs(got - clip.animation.vertices([local])[0]).max() <= TOLERANCE


def test_exports_library_saved_and_exported_as_one_glb(clips, flame, tmp_path):
    path = tmp_path / "dialogue.blend"
    report = exports.build_library(clips, flame, path)
    glb = exports.export(bpy.context.scene, report.head, "glb", tmp_path / "dialogue.glb")
    gltf = read_glb(glb)
    assert len(gltf.meshes[0].primitives[0].targets) == 51
    counts = {a.name: gltf.accessors[a.samplers[0].input].count for a in gltf.animations}
    assert counts == {c.name: c.animation.num_frames for c in clips}
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert {"line_1", "line_2", "line_3"} <= set(bpy.data.actions.keys())


def test_exports_library_refuses_mixed_models_and_names(clips, flame):
    before = (len(bpy.data.objects), len(bpy.data.actions))
    other = clips[1].animation
    mixed = exports.LibraryClip("other", type(other)(other.basis * 2, other.bias, other.weights, other.fps,
                                                     other.template))
    with pytest.raises(InputError, match="another model or template"):
        exports.build_library([clips[0], mixed], flame)
    with pytest.raises(InputError, match="same name"):
        exports.build_library([clips[0], clips[0]], flame)
    with pytest.raises(InputError, match="at least one clip"):
        exports.build_library([], flame)
    assert (len(bpy.data.objects), len(bpy.data.actions)) == before
