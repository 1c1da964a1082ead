"""Lip closures with an emotion on, and the switch turned on after an Animate with it off (issue 18).

Same clip and phone track as ``test_articulation.py`` (the official VOCA output for ``test_sentence.wav``, issue
18's force-aligned bilabials). The emotions are the seed project's (``emotions/seed_emotion_offsets.npz``, each
minus its neutral), written with :mod:`voca_addon.blender.emotion.writer` as Animate writes them. Checked on
Blender's evaluated mesh: every p/b/m's inner-lip gap ≤ rest + 0.3 mm (three iBUG pairs, window [start − 80 ms,
end + 40 ms]) and never < 1.0 mm with the emotion at strength 1; equal to the core's
``apply_controls(…, offset=delta)`` (≤ 1 µm); an emotion changed later is seen at the next re-apply.
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_articulation import (BILABIALS, CLOSE_MARGIN, FLOOR, TOLERANCE, addon, apply,  # noqa: E402,F401
                                             evaluated_all, gaps, knobs, official, track, window)
from voca_addon.blender.articulation import (phones as articulation_phones, properties as articulation_properties,
                                             writer as articulation_writer)  # noqa: E402
from voca_addon.blender.emotion import writer as emotion_writer  # noqa: E402
from voca_addon.blender.speech import pipeline, writer
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402
from voca_addon.core.emotion.emotions import Emotion  # noqa: E402


@pytest.fixture(scope="module")
def deltas(shared_data):
    """{name: float32 [5023, 3]}: the seed emotions minus the seed's neutral (metres)."""
    data = np.load(shared_data / "emotions" / "seed_emotion_offsets.npz")
    names = [str(n) for n in data["names"]]
    offsets = data["offsets"].astype(np.float64)
    neutral = offsets[names.index("neutral")]
    return {n: (offsets[k] - neutral).astype(np.float32) for k, n in enumerate(names) if n != "neutral"}


def new_head(official, closures=True):
    anim, template, _ = official
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0
    obj = writer.build_head(pipeline.HEAD_NAME, template, np.zeros((0, 3), np.int64), scene.collection)
    obj.voca_articulation.closures = closures
    return obj


def check_closed(mesh, anim, template, pairs):
    rest = gaps(template[None], pairs)[0]
    after = gaps(mesh, pairs)
    for phone, start, end, word in BILABIALS:
        frames = list(window(start, end))
        assert after[frames].min() <= rest + CLOSE_MARGIN, (phone, word, after[frames].min() - rest)
    assert after.min() >= FLOOR


@pytest.mark.parametrize("name", ["happy", "surprised"])
def test_lips_meet_with_an_emotion_at_strength_one(addon, official, track, deltas, name):
    anim, template, pairs = official
    obj = new_head(official)
    emotion_writer.add_emotion_keys(obj, [Emotion(name, deltas[name], "seed")])
    obj.data.shape_keys.key_blocks[emotion_writer.key_name(name)].value = 1.0
    apply(obj, anim, articulation_phones.PhoneOutcome(track))
    mesh = evaluated_all(obj)
    offset = articulation_writer.emotion_offset(obj)
    assert np.abs(offset - deltas[name]).max() <= 1e-6       # float32 key storage of the delta
    expected = apply_controls(anim, track, ArticulationSettings(), offset).vertices() + offset
    assert np.abs(mesh - expected).max() <= TOLERANCE
    check_closed(mesh, anim, template, pairs)
    # the same head solved without the emotion does not close every p/b/m under it: the offset matters
    plain = apply_controls(anim, track, ArticulationSettings()).vertices() + deltas[name]
    rest = gaps(template[None], pairs)[0]
    worst = max(gaps(plain, pairs)[list(window(s, e))].min() - rest for _, s, e, _ in BILABIALS)
    worst_with = max(gaps(mesh, pairs)[list(window(s, e))].min() - rest for _, s, e, _ in BILABIALS)
    assert worst_with < worst


def test_keyed_emotion_and_a_later_change_are_read_at_reapply(addon, official, track, deltas):
    anim, template, pairs = official
    obj = new_head(official)
    emotion_writer.add_emotion_keys(obj, [Emotion("happy", deltas["happy"], "seed")])
    scene = bpy.context.scene
    emotion_writer.key_emotion(obj, "happy", 1, anim.num_frames, 10, 1.0)   # 0 → 1 → 0, as Animate keys it
    apply(obj, anim, articulation_phones.PhoneOutcome(track))
    assert np.abs(articulation_writer.emotion_offset(obj) - deltas["happy"]).max() <= 1e-6
    mesh = evaluated_all(obj)
    held = slice(11, anim.num_frames - 11)       # frames 12 … F − 10: the value is 1 (10-frame ramps from 1 and F)
    expected = apply_controls(anim, track, ArticulationSettings(), deltas["happy"]).vertices() + deltas["happy"]
    assert np.abs(mesh[held] - expected[held]).max() <= TOLERANCE
    check_closed(mesh, anim, template, pairs)
    # the artist mutes the emotion: the next knob re-applies without it
    obj.data.shape_keys.key_blocks["EMO happy"].mute = True
    assert articulation_writer.emotion_offset(obj) is None
    knobs(obj, closure_strength=1.0 + 1e-3)
    knobs(obj, closure_strength=1.0)
    np.testing.assert_allclose(evaluated_all(obj), apply_controls(anim, track, ArticulationSettings()).vertices(),
                               atol=TOLERANCE, rtol=0)


def test_switch_on_after_animating_with_closures_off(addon, official, track):
    anim, template, pairs = official
    obj = new_head(official, closures=False)
    request = articulation_properties.phone_request(bpy.context.scene, obj)
    assert request is not None                  # the phone pass runs with the switch off too
    apply(obj, anim, articulation_phones.PhoneOutcome(track))
    assert articulation_writer.stored_track(obj) is not None
    assert "voca_lips_close" not in obj.data.shape_keys.key_blocks
    assert np.abs(evaluated_all(obj) - anim.vertices()).max() <= TOLERANCE      # off: VOCA's exact result
    knobs(obj, closures=True)
    assert obj.voca_articulation.status == ""
    mesh = evaluated_all(obj)
    assert np.abs(mesh - apply_controls(anim, track, ArticulationSettings()).vertices()).max() <= TOLERANCE
    check_closed(mesh, anim, template, pairs)
