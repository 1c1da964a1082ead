"""Lip closures in 'per_frame' mode (issue 18): the two corrective keys beside VOCA's frame keys.

The official VOCA sequence for ``audio/test_sentence.wav`` written one key per frame (the old add-on's layout),
with the bilabials of issue 18's table as the phone track. On Blender's EVALUATED mesh: every p/b/m closes as in
'shape_keys' mode (inner-lip gap ≤ rest + 0.3 mm in [start − 80 ms, end + 40 ms], never < 1.0 mm), equal to the
core (≤ 1 µm); the frame keys hold VOCA's exact frames whatever the knobs; the switch off and a run without
closures give VOCA's exact frames; the closure knobs re-apply like the core; speech strength and smoothing are not
applied in this mode and the status line says so. Frames are evaluated in the bilabials' windows and every 10th
frame (a frame change resolves every frame key's curve: the whole clip would take seconds).
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_articulation import (BILABIALS, CLOSE_MARGIN, FLOOR, TOLERANCE, addon, gaps,  # noqa: E402,F401
                                             knobs, official, track, window)
from voca_addon.blender.articulation import phones as articulation_phones, writer as articulation_writer  # noqa: E402
from voca_addon.blender.speech import pipeline, writer  # noqa: E402
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402


def write(obj, anim, outcome):
    """pipeline.apply's writing steps in 'per_frame' mode (no sound, no emotion)."""
    scene = bpy.context.scene
    with pipeline.transaction.all_or_nothing(scene, [obj]):
        written = writer.write_animation(obj, anim, scene, 1, "per_frame", pipeline.PREFIX)
        lines = articulation_writer.write_articulation(obj, scene, anim, written, outcome)
        writer.set_frame_range(scene, written.frame_start, written.frame_end)
    return lines


@pytest.fixture
def frames(official):
    """Clip frame indices checked: the bilabials' windows and every 10th frame."""
    picked = set(range(0, official[0].num_frames, 10))
    for _, start, end, _ in BILABIALS:
        picked |= set(window(start, end))
    return np.array(sorted(picked))


@pytest.fixture
def head(addon, official, track):
    anim, template, _ = official
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0
    obj = writer.build_head(pipeline.HEAD_NAME, template, np.zeros((0, 3), np.int64), scene.collection)
    lines = write(obj, anim, articulation_phones.PhoneOutcome(track))
    assert lines == [articulation_writer.closure_line(track)]
    return obj


def evaluated(obj, frames) -> np.ndarray:
    scene = bpy.context.scene
    return np.stack([evaluated_vertices(obj, scene, int(f) + scene.frame_start) for f in frames])


def frame_keys(obj) -> dict:
    key = obj.data.shape_keys
    return {b.name: writer.key_co(b) for b in key.key_blocks if "_frame_" in b.name}


def test_per_frame_closes_every_bilabial_like_the_shape_key_mode(head, official, track, frames):
    anim, template, pairs = official
    key = head.data.shape_keys
    assert [str(n) for n in key[articulation_writer.CORRECTION_KEYS]] == ["voca_lips_close", "voca_lips_tuck"]
    assert len(frame_keys(head)) == anim.num_frames
    expected = apply_controls(anim, track, ArticulationSettings()).vertices()[frames]
    mesh = evaluated(head, frames)
    assert np.abs(mesh - expected).max() <= TOLERANCE
    rest = gaps(template[None], pairs)[0]
    at = {int(f): k for k, f in enumerate(frames)}
    after = gaps(mesh, pairs)
    before = gaps(anim.vertices()[frames], pairs)
    for phone, start, end, word in BILABIALS:
        rows = [at[f] for f in window(start, end)]
        assert after[rows].min() <= rest + CLOSE_MARGIN, (phone, word, after[rows].min(), before[rows].min())
    assert after.min() >= FLOOR
    assert np.mean([before[[at[f] for f in window(s, e)]].min() > rest + CLOSE_MARGIN
                    for _, s, e, _ in BILABIALS]) >= 0.6          # they did not close before


def test_per_frame_switch_off_and_no_closures_give_vocas_exact_frames(head, official, track, frames):
    anim = official[0]
    keys_before = frame_keys(head)
    ref = writer.key_co(head.data.shape_keys.reference_key)
    for i in (0, 70, anim.num_frames - 1):                  # a frame key holds VOCA's whole frame
        np.testing.assert_allclose(keys_before[f"{pipeline.PREFIX}_frame_{i:05d}"] - ref,
                                   anim.vertices()[i] - anim.template, atol=TOLERANCE)
    knobs(head, closures=False)
    assert np.abs(evaluated(head, frames) - anim.vertices()[frames]).max() <= TOLERANCE
    knobs(head, closures=True, closure_strength=0.6, mouth_close=0.1)
    expected = apply_controls(anim, track, ArticulationSettings(closure_strength=0.6, mouth_close=0.1)).vertices()
    assert np.abs(evaluated(head, frames) - expected[frames]).max() <= TOLERANCE
    assert head.voca_articulation.status == ""
    for name, co in frame_keys(head).items():               # the frame keys are never touched
        np.testing.assert_array_equal(co, keys_before[name])
    assert write(head, anim, None) == []                    # --no-closures: no corrective keys at all
    assert "voca_lips_close" not in head.data.shape_keys.key_blocks
    assert np.abs(evaluated(head, frames) - anim.vertices()[frames]).max() <= TOLERANCE


def test_per_frame_speech_knobs_are_not_applied_and_say_so(head, official, track, frames):
    anim = official[0]
    keys_before = frame_keys(head)
    knobs(head, speech_strength=0.5)
    status = head.voca_articulation.status
    assert "'Shape keys' mode only" in status and "\n" not in status
    expected = apply_controls(anim, track, ArticulationSettings()).vertices()[frames]
    assert np.abs(evaluated(head, frames) - expected).max() <= TOLERANCE
    for name, co in frame_keys(head).items():
        np.testing.assert_array_equal(co, keys_before[name])
    knobs(head, speech_strength=1.0)
    assert head.voca_articulation.status == ""
