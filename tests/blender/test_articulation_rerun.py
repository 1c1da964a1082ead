"""What a re-run of Animate says about the artist's hand edits it replaces, and the knobs on a Transfer's target.

A re-run writes VOCA's result again (the knobs never overwrite a hand edit; a re-run does, as documented): the
run's report and the head's status line (the Articulation panel's) name the edited curves and the artist's
mutes it replaced — the status from before the run, which named them as *left*, is gone. Remove clears the
status. On a character animated by Transfer the knobs have nothing to re-apply: the panel, a knob and Re-apply
say so (set them on the source head, then Transfer again) instead of "no VOCA animation".
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_articulation import addon, head, knobs, official, speech_curves, track  # noqa: E402,F401
from voca_addon.blender import compat, keyframes  # noqa: E402
from voca_addon.blender.articulation import operators as articulation_operators  # noqa: E402
from voca_addon.blender.articulation import phones as articulation_phones  # noqa: E402
from voca_addon.blender.articulation import writer as articulation_writer  # noqa: E402
from voca_addon.blender.speech import pipeline, writer  # noqa: E402
from voca_addon.blender.character.data import FIT_PROPERTY  # noqa: E402
from voca_addon.core.animation.shapekeys import ShapeKeyAnimation  # noqa: E402
from voca_addon.core.flame.meshio import read_mesh  # noqa: E402


def rerun(obj, anim, track, shared_data):
    """pipeline.apply, as Animate from audio's re-run calls it (the official clip's audio, closures on)."""
    result = pipeline.ComputeResult(anim, read_mesh(shared_data / "flame" / "FLAME_sample.ply"),
                                    phones=articulation_phones.PhoneOutcome(track))
    settings = pipeline.AnimateSettings(audio_path=str(shared_data / "audio" / "test_sentence.wav"), start_frame=1)
    return pipeline.apply(bpy.context.scene, obj, result, settings)


def curve(obj, name):
    return compat.find_fcurve(obj.data.shape_keys.animation_data, keyframes.value_path(name))


def test_rerun_names_the_hand_edits_it_replaced_and_the_old_status_goes(head, official, track, shared_data):
    key = head.data.shape_keys
    close, tuck = (key[articulation_writer.STORE]["corrections"][c] for c in ("voca_lips_close", "voca_lips_tuck"))
    written = keyframes.curve_points(curve(head, close)).copy()
    speech = str(key[articulation_writer.STORE]["keys"][4])
    curve(head, close).keyframe_points[1].co.y = 0.123
    curve(head, speech).keyframe_points[30].co.y += 0.5
    key.key_blocks[tuck].mute = True
    knobs(head, closure_strength=0.8)     # the knob leaves them, and says so (it does not read VOCA's curves)
    assert "Left 1 curve(s) you edited by hand" in head.voca_articulation.status
    assert f"Left '{tuck}' muted" in head.voca_articulation.status

    report = rerun(head, official[0], track, shared_data)
    line = report.articulation[0]
    assert line.startswith("This run replaced 2 curve(s) you edited by hand") and f"'{close}'" in line
    assert f"'{speech}'" in line and f"your mute of '{tuck}'" in line and line in report.summary()
    status = head.voca_articulation.status
    assert status.startswith("This run replaced") and "Left" not in status   # the stale "left as they are" is gone
    assert not key.key_blocks[tuck].mute
    # the knobs were at closure strength 0.8: the re-run wrote with them, the edit is gone
    assert keyframes.curve_points(curve(head, close))[1, 1] != np.float32(0.123)
    knobs(head, closure_strength=1.0)
    np.testing.assert_array_equal(keyframes.curve_points(curve(head, close)), written)

    again = rerun(head, official[0], track, shared_data)   # nothing edited since: nothing to say
    assert not any(line.startswith("This run replaced") for line in again.articulation)
    assert head.voca_articulation.status == ""


def test_rerun_names_a_deleted_correction_curve(head, official, track, shared_data):
    key = head.data.shape_keys
    close = key[articulation_writer.STORE]["corrections"]["voca_lips_close"]
    assert compat.remove_fcurve(key.animation_data.action, curve(head, close))
    report = rerun(head, official[0], track, shared_data)
    assert f"'{close} (deleted)'" in report.articulation[0] and curve(head, close) is not None


def test_remove_clears_the_articulation_status(head):
    head.voca_articulation.status = "Left 1 curve(s) you edited by hand as they are: 'voca_lips_close'"
    bpy.context.view_layer.objects.active = head
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert head.voca_articulation.status == ""


def test_knobs_on_a_transfer_target_say_where_they_act(addon, shared_data):  # noqa: F811
    """Transfer writes VOCA's keys on the character (speech.writer.write_animation) without the weights the
    knobs re-apply: the panel's reason, a knob and Re-apply name Transfer and the source head."""
    scene = bpy.context.scene
    face = read_mesh(shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj")
    obj = writer.build_head("Character", face.vertices, face.faces, scene.collection)
    rng = np.random.default_rng(0)
    v = len(face.vertices)
    anim = ShapeKeyAnimation(basis=rng.normal(0, 1e-3, (3, v, 3)).astype(np.float32),
                             bias=np.zeros((v, 3), np.float32),
                             weights=rng.normal(0, 1, (12, 3)).astype(np.float32), fps=60.0,
                             template=face.vertices.astype(np.float32))
    writer.write_animation(obj, anim, scene, 1)
    bpy.context.view_layer.objects.active = obj
    before = {c.data_path: keyframes.curve_points(c).copy()
              for c in compat.action_fcurves(obj.data.shape_keys.animation_data.action)}
    reason = articulation_operators.articulation_reason(bpy.context)
    assert reason.startswith("The VOCA keys of 'Character' hold no stored weights for the knobs")
    obj[FIT_PROPERTY] = "{}"                    # fitted in the Character panel (store_fit's record): a Transfer
    reason = articulation_operators.articulation_reason(bpy.context)
    assert reason.startswith("The VOCA keys of 'Character' came from Transfer") and "Transfer again" in reason
    knobs(obj, speech_strength=0.5)
    assert obj.voca_articulation.status == reason
    with pytest.raises(RuntimeError, match="came from Transfer"):
        bpy.ops.voca.reapply_articulation()
    after = {c.data_path: keyframes.curve_points(c)
             for c in compat.action_fcurves(obj.data.shape_keys.animation_data.action)}
    assert before.keys() == after.keys() and all(np.array_equal(before[p], after[p]) for p in before)
    plain = writer.build_head("Plain", face.vertices, face.faces, scene.collection)
    bpy.context.view_layer.objects.active = plain
    assert articulation_operators.articulation_reason(bpy.context) == ("'Plain' has no VOCA animation: run Animate "
                                                                       "from audio first.")


def test_import_sequence_without_phones_then_animate_names_no_phantom_edits(head, official, track, shared_data):
    """Import sequence without audio onto an animated head stores VOCA's exact weights too (it left the earlier
    store behind, and the next Animate said it replaced 51 curves 'you edited by hand … (deleted)'); the knobs
    then work on the imported head."""
    from voca_addon.blender.exports import sequences
    key = head.data.shape_keys
    speech = str(key[articulation_writer.STORE]["keys"][2])
    curve(head, speech).keyframe_points[10].co.y += 0.5          # an edit the re-import replaces, and names
    report = sequences.import_sequence(bpy.context.scene, shared_data / "voca_official" /
                                       "output_test_sentence_cond3.npz",
                                       shared_data / "flame" / "FLAME_sample.ply", obj=head)
    assert report.articulation and report.articulation[0].startswith("This run replaced 1 curve(s)")
    assert articulation_writer.has_articulation(head) and articulation_writer.stored_track(head) is None
    speech = str(key[articulation_writer.STORE]["keys"][2])     # the import's own key names (SEQ_…)
    before = curve(head, speech).keyframe_points[30].co.y
    knobs(head, speech_strength=0.5)                            # the knobs act on the imported head
    assert curve(head, speech).keyframe_points[30].co.y == pytest.approx(0.5 * before, abs=1e-6)
    assert head.voca_articulation.status.startswith("No phone track")    # closures on, no phones imported
    again = rerun(head, official[0], track, shared_data)
    assert not any(line.startswith("This run replaced") for line in again.articulation)
