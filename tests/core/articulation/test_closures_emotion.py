"""Closures with an emotion on (every emotion the seed ships), and on a second clip (issue 18, item 2)."""
import pytest

from tests.core.articulation.test_closures import BILABIALS, check_closures
from voca_addon.core.articulation import add_corrections

SEED_EMOTIONS = ("angry", "disappointed", "excited", "fear", "frustrated", "happy", "sad", "surprised")


def test_the_seed_ships_these_emotions(emotion_deltas):
    assert sorted(emotion_deltas) == sorted(SEED_EMOTIONS)


@pytest.mark.parametrize("strength", [1.0, 0.5])
@pytest.mark.parametrize("name", SEED_EMOTIONS)
def test_add_corrections_holds_with_an_emotion(official, aligned, emotion_deltas, name, strength):
    """Every p/b/m closes along the whole line (≤ rest + 0.3 mm), floors kept, far frames unchanged,
    with the emotion's delta on at full strength and at half (a key ramping in or out)."""
    delta = strength * emotion_deltas[name]
    corrected = add_corrections(official, aligned, offset=delta)
    check_closures(official, corrected, aligned, offset=delta)


def test_add_corrections_on_a_clip_not_used_for_tuning(second_clip, second_track):
    assert len(second_track.of(*BILABIALS)) >= 2
    check_closures(second_clip, add_corrections(second_clip, second_track), second_track)
