"""The knobs' fit cache (issue 18's speed work): a kept fit gives exactly what a fresh fit gives, and a fit is
reused only for the same motion, phone track and offset."""
import numpy as np

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation
from voca_addon.core.articulation import ArticulationSettings, apply_controls, controls
from voca_addon.core.articulation.closures import fit_and_solve
from voca_addon.core.phonemes import PhoneTrack


def _fresh(anim, track, settings, offset=None):
    controls.clear_fit_cache()
    out = apply_controls(anim, track, settings, offset)
    controls.clear_fit_cache()
    return out


def test_a_kept_fit_equals_a_fresh_one_bit_for_bit(official, aligned):
    controls.clear_fit_cache()
    first = apply_controls(official, aligned, ArticulationSettings())
    assert len(controls._FITS) == 1
    for settings in (ArticulationSettings(closure_strength=0.6), ArticulationSettings(mouth_close=0.2),
                     ArticulationSettings(), ArticulationSettings(speech_strength=0.7, mouth_close=-0.1)):
        kept = apply_controls(official, aligned, settings)          # the closure knobs reuse the fit
        fresh = _fresh(official, aligned, settings)
        np.testing.assert_array_equal(kept.corrections.weights, fresh.corrections.weights)
        np.testing.assert_array_equal(kept.corrections.basis, fresh.corrections.basis)
        np.testing.assert_array_equal(kept.weights, fresh.weights)
    # the knobs' arithmetic is the core's: closure strength on a kept fit = fit_and_solve from scratch
    expected = fit_and_solve(official, aligned, 0.6, 0.0)
    again = apply_controls(official, aligned, ArticulationSettings(closure_strength=0.6))
    np.testing.assert_array_equal(again.corrections.weights, expected.weights)
    # a caller changing what it got does not change the kept fit
    first.corrections.weights[:] = 5.0
    np.testing.assert_array_equal(apply_controls(official, aligned, ArticulationSettings()).corrections.weights,
                                  _fresh(official, aligned, ArticulationSettings()).corrections.weights)


def test_a_fit_is_not_reused_for_other_motion_track_or_offset(official, aligned, emotion_deltas):
    controls.clear_fit_cache()
    base = apply_controls(official, aligned, ArticulationSettings())
    other = ShapeKeyAnimation(official.basis, official.bias, official.weights[::-1].copy(), official.fps,
                              official.template, official.names)
    fewer = PhoneTrack(aligned.phones[: len(aligned.phones) // 2], aligned.source)
    offset = emotion_deltas["happy"]
    for anim, track, off in ((other, aligned, None), (official, fewer, None), (official, aligned, offset)):
        kept = apply_controls(anim, track, ArticulationSettings(), off)
        fresh = _fresh(anim, track, ArticulationSettings(), off)
        np.testing.assert_array_equal(kept.corrections.basis, fresh.corrections.basis)
        np.testing.assert_array_equal(kept.corrections.weights, fresh.corrections.weights)
        assert not np.array_equal(kept.corrections.weights, base.corrections.weights)
    assert len(controls._FITS) <= controls.FIT_CACHE
