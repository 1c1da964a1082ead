"""Fixtures for the articulation tests: the official VOCA sequences on FLAME, their phone tracks, emotions.

Phones come from the phoneme stage (PocketSphinx): forced alignment with the transcript, and detection
without it. Each is computed once per session (PocketSphinx takes seconds per clip).
"""
import numpy as np
import pytest

from voca_addon.core.animation.shapekeys import factorize

SENTENCE = "Severe myopia contributed to Ron's inferiority complex"
FPS = 60.0


def phones(audio, transcript):
    from voca_addon.core import phonemes      # a broken import fails here: never a skip
    ok, why = phonemes.detector_available()
    if not ok:
        pytest.fail(f"PocketSphinx is needed for these tests (pip install -r requirements-dev.txt): {why}")
    return phonemes.phones_for_audio(audio, transcript)


@pytest.fixture(scope="session")
def second_clip(shared_data, flame):
    """VOCA's official output for test.wav (287 frames): a clip the closures were not tuned on."""
    vertices = np.load(shared_data / "voca_official" / "output_test.npz")["vertices"]
    return factorize(vertices, flame.vertices, fps=FPS)


@pytest.fixture(scope="session")
def aligned(shared_data):
    return phones(shared_data / "audio" / "test_sentence.wav", SENTENCE)


@pytest.fixture(scope="session")
def detected(shared_data):
    return phones(shared_data / "audio" / "test_sentence.wav", None)


@pytest.fixture(scope="session")
def second_track(shared_data):
    return phones(shared_data / "audio" / "test.wav", None)


@pytest.fixture(scope="session")
def emotion_deltas(shared_data):
    """The seed project's emotions as deltas from its neutral: {name: float32 [5023, 3]}."""
    data = np.load(shared_data / "emotions" / "seed_emotion_offsets.npz")
    names = [str(n) for n in data["names"]]
    offsets = data["offsets"].astype(np.float64)
    neutral = offsets[names.index("neutral")]
    return {n: offsets[k] - neutral for k, n in enumerate(names) if n != "neutral"}
