"""Fixtures for the living-face tests: a minute of real speech."""
import numpy as np
import pytest

GAP_S = 0.5                 # s of silence put between the recordings (a pause the tests can find)


@pytest.fixture(scope="session")
def speech_minute(shared_data):
    """About 70 s of real speech: the 16 VOCASET recordings (22 kHz) one after another, 0.5 s apart.

    Returns (Audio, starts_s): the audio and the time each recording starts, seconds.
    """
    from voca_addon.core.speech.audio import Audio, load_audio, to_mono
    clips = [load_audio(p) for p in sorted((shared_data / "audio" / "vocaset").glob("*/*.wav"))]
    assert len(clips) == 16 and {c.rate for c in clips} == {22000}
    gap = np.zeros(int(GAP_S * 22000))
    parts, starts, t = [], [], 0.0
    for clip in clips:
        starts.append(t)
        parts += [to_mono(clip), gap]
        t += clip.duration_s + GAP_S
    return Audio(np.concatenate(parts), 22000, "vocaset (16 recordings)"), np.array(starts)
