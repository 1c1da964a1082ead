"""Closures with an emotion on, and on a second clip (issue 18, item 2)."""
import pytest

from tests.core.articulation.test_closures import BILABIALS, check_closures
from voca_addon.core.articulation import add_corrections


# One closure key per clip cannot fit every opening: with 'frustrated' the wide first M of "myopia" keeps a
# pair 0.46 mm over rest (goal 0.3 mm) (docs/articulation.md, "Limits").
SHORT = pytest.mark.xfail(strict=True, reason="one key per clip: the first M keeps a pair 0.46 mm over rest")


@pytest.mark.parametrize("name", ["angry", "disappointed", "excited", "fear",
                                  pytest.param("frustrated", marks=SHORT), "happy", "sad", "surprised"])
def test_add_corrections_holds_with_an_emotion(official, aligned, emotion_deltas, name):
    delta = emotion_deltas[name]
    corrected = add_corrections(official, aligned, offset=delta)
    check_closures(official, corrected, aligned, offset=delta)


def test_add_corrections_on_a_clip_not_used_for_tuning(second_clip, second_track):
    assert len(second_track.of(*BILABIALS)) >= 2
    check_closures(second_clip, add_corrections(second_clip, second_track), second_track)
