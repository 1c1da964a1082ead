"""head_motion: speech-driven nods, phrase posture and drift; statistics over a minute of real speech."""
import numpy as np
import pytest

from voca_addon.core.errors import InputError
from voca_addon.core.living import head_motion, prosody

FPS = 30


@pytest.fixture(scope="module")
def pros(speech_minute):
    return prosody.analyse(speech_minute[0], FPS)


def test_head_motion_statistics_over_a_minute_of_speech(pros):
    degrees, nod_corr, speed_corr, ratio = [], [], [], []
    loudness, _ = head_motion.speech_signals(pros)
    emphasis = head_motion.emphasis(loudness, FPS)
    for seed in range(5):
        rot = head_motion.head_motion(pros, seed=seed).rotation.astype(np.float64)
        speed = np.linalg.norm(np.gradient(rot, axis=0), axis=1) * FPS
        degrees.append(np.degrees(rot))
        nod_corr.append(np.corrcoef(rot[:, 0], emphasis)[0, 1])
        speed_corr.append(np.corrcoef(speed, pros.energy_db)[0, 1])
        ratio.append(speed[pros.speaking].mean() / speed[~pros.speaking].mean())
    deg = np.concatenate(degrees)
    print(f"\nhead motion, 5 seeds over {pros.num_frames / FPS:.0f} s: std (nod, turn, tilt) "
          f"{np.round(deg.std(axis=0), 2)}°, max |angle| {np.abs(deg).max(axis=0).round(1)}°, corr(nod, emphasis) "
          f"{np.mean(nod_corr):.2f}, corr(speed, energy dB) {np.mean(speed_corr):.2f}, speed speaking/pause "
          f"{np.mean(ratio):.2f}")
    assert np.all((deg.std(axis=0) > 1.0) & (deg.std(axis=0) < 6.0))
    assert np.abs(deg).max() < 20.0
    assert min(nod_corr) > 0.3
    assert np.mean(speed_corr) > 0.1 and np.mean(ratio) > 1.2           # moves more while speaking


def test_head_motion_follows_the_speech_not_only_noise(pros):
    silent = prosody.Prosody(np.full(pros.num_frames, -100.0), np.full(pros.num_frames, np.nan),
                             np.zeros(pros.num_frames, bool), FPS)
    speaking = head_motion.head_motion(pros, seed=0).rotation
    still = head_motion.head_motion(silent, seed=0).rotation
    nod_speed = [np.abs(np.diff(r[:, 0])).mean() for r in (speaking, still)]
    assert nod_speed[0] > 3 * nod_speed[1]


def test_head_motion_strength_scales_and_smoothness_slows(pros):
    one = head_motion.head_motion(pros, strength=1.0, seed=4).rotation
    np.testing.assert_allclose(head_motion.head_motion(pros, strength=2.0, seed=4).rotation, 2 * one, atol=1e-6)
    assert not head_motion.head_motion(pros, strength=0.0).rotation.any()
    rough = np.abs(np.diff(head_motion.head_motion(pros, smoothness_s=0.0, seed=4).rotation, axis=0)).mean()
    smooth = np.abs(np.diff(head_motion.head_motion(pros, smoothness_s=0.5, seed=4).rotation, axis=0)).mean()
    assert smooth < 0.7 * rough
    np.testing.assert_array_equal(head_motion.head_motion(pros, seed=4).rotation, one)


def test_head_motion_refuses_bad_controls(pros):
    for kwargs in ({"strength": -1}, {"strength": 50}, {"smoothness_s": -0.1}):
        with pytest.raises(InputError, match="head motion"):
            head_motion.head_motion(pros, **kwargs)
