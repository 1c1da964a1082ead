"""prosody: per-frame energy, pitch and speech activity of real speech and of signals with known pitch."""
import numpy as np
import pytest

from voca_addon.core.errors import InputError
from voca_addon.core.living import prosody
from voca_addon.core.speech.audio import Audio
from tests.core.living.conftest import GAP_S


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_prosody_pitch_of_a_harmonic_voice_is_its_fundamental(f0):
    rate = 22050
    t = np.arange(int(1.0 * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)) * 8000      # buzz, 7 harmonics
    pros = prosody.analyse(Audio(voice, rate), fps=30)
    inner = pros.f0_hz[2:-2]
    assert np.all(np.isfinite(inner)) and np.all(np.abs(inner - f0) < 0.01 * f0)


def test_prosody_finds_the_pauses_between_recordings(speech_minute):
    audio, starts = speech_minute
    fps = 30
    pros = prosody.analyse(audio, fps)
    assert pros.num_frames == int(np.ceil(audio.duration_s * fps))
    for start in starts[1:]:                                  # the middle of each 0.5 s gap is a pause
        assert not pros.speaking[int(round((start - GAP_S / 2) * fps))]
    onsets = pros.pause_onsets() / fps
    assert len(onsets) >= len(starts) - 1
    assert 0.5 < pros.speaking.mean() < 0.9
    voiced = np.isfinite(pros.f0_hz)
    assert not np.any(voiced & ~pros.speaking) and 0.3 < voiced.mean() < 0.8
    assert np.all((pros.f0_hz[voiced] >= prosody.F0_MIN_HZ) & (pros.f0_hz[voiced] <= prosody.F0_MAX_HZ))


def test_prosody_of_silence_has_no_speech():
    pros = prosody.analyse(Audio(np.zeros(22050), 22050), fps=25)
    assert not pros.speaking.any() and not np.isfinite(pros.f0_hz).any()


def test_prosody_refuses_bad_fps():
    with pytest.raises(InputError, match="fps"):
        prosody.analyse(Audio(np.ones(100), 16000), fps=0)
