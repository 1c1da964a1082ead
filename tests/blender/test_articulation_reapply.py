"""What a knob re-applies, and what it does not read (issue 18's speed work), on the official clip.

A closure knob (closure strength, mouth close) leaves VOCA's 50 curves alone without computing them (they
depend only on speech strength and smoothing); the result is still the core's, a hand-edited speech curve still
stays; the Re-apply button (``force``) checks every curve again and restores one the artist deleted.
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_articulation import (TOLERANCE, addon, evaluated_all, head, knobs, official,  # noqa: E402,F401
                                             speech_curves, track)
from voca_addon.blender.articulation import writer as articulation_writer  # noqa: E402
from voca_addon.blender import compat, keyframes
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402


def test_closure_knob_leaves_the_speech_curves_and_matches_core(head, official, track):
    before = speech_curves(head)
    key = head.data.shape_keys
    edited = str(key[articulation_writer.STORE]["keys"][3])
    fcurve = compat.find_fcurve(key.animation_data, keyframes.value_path(edited))
    fcurve.keyframe_points[20].co.y += 0.25
    mine = keyframes.curve_points(fcurve).copy()
    knobs(head, closure_strength=0.6, mouth_close=0.2)
    after = speech_curves(head)
    for name, points in before.items():
        np.testing.assert_array_equal(after[name], mine if name == edited else points)
    expected = apply_controls(official[0], track, ArticulationSettings(closure_strength=0.6, mouth_close=0.2))
    mesh = evaluated_all(head)
    frames = np.arange(len(mesh)) != 20                 # frame 21 carries the hand edit
    assert np.abs(mesh[frames] - expected.vertices()[frames]).max() <= TOLERANCE
    knobs(head, speech_strength=0.7)                    # a speech knob: the edited curve is still left
    np.testing.assert_array_equal(keyframes.curve_points(fcurve), mine)
    assert f"'{edited}'" in head.voca_articulation.status


def test_reapply_button_restores_a_deleted_curve(head, official, track):
    key = head.data.shape_keys
    name = str(key[articulation_writer.STORE]["keys"][5])
    before = speech_curves(head)[name].copy()
    assert compat.remove_fcurve(key.animation_data.action, compat.find_fcurve(key.animation_data,
                                                                               keyframes.value_path(name)))
    knobs(head, closure_strength=0.9)                   # a closure knob does not look at VOCA's curves
    assert compat.find_fcurve(key.animation_data, keyframes.value_path(name)) is None
    with bpy.context.temp_override(active_object=head, object=head):
        assert bpy.ops.voca.reapply_articulation() == {"FINISHED"}
    np.testing.assert_array_equal(speech_curves(head)[name], before)
    expected = apply_controls(official[0], track, ArticulationSettings(closure_strength=0.9)).vertices()
    assert np.abs(evaluated_all(head) - expected).max() <= TOLERANCE
