"""conditions: names from <prefix>.conditions.json, else VOCASET subjects (8) / "Condition k"."""
import json

import pytest

from voca_addon.core.models import conditions
from voca_addon.core.errors import InputError, ModelFileError
from voca_addon.core.face.voca import VOCASET_SUBJECTS


def test_conditions_file_names_are_returned_for_every_spelling_of_the_prefix(tmp_path):
    prefix = tmp_path / "gstep_120.model"
    path = conditions.write_conditions(prefix, ["happy", "angry"], "emotion")
    assert path == tmp_path / "gstep_120.model.conditions.json"
    data = json.loads(path.read_text("utf-8"))
    assert data == {"format": "voca_addon.conditions", "version": 1, "condition_by": "emotion",
                    "conditions": ["happy", "angry"]}
    for spelling in (prefix, str(prefix) + ".index", str(prefix) + ".meta",
                     str(prefix) + ".data-00000-of-00001", path):
        assert conditions.condition_names(spelling, 2) == ["happy", "angry"]


def test_conditions_fallback_is_vocaset_for_eight_and_numbered_otherwise(tmp_path):
    prefix = tmp_path / "gstep_52280.model"                     # the release has no conditions file
    assert conditions.condition_names(prefix, 8) == list(VOCASET_SUBJECTS)
    assert conditions.condition_names(prefix, 4) == ["Condition 1", "Condition 2", "Condition 3", "Condition 4"]
    assert conditions.read_conditions(prefix) is None


def test_conditions_file_with_another_count_falls_back(tmp_path):
    prefix = tmp_path / "m.model"
    conditions.write_conditions(prefix, ["a", "b", "c"])
    assert conditions.condition_names(prefix, 8) == list(VOCASET_SUBJECTS)
    assert conditions.condition_names(prefix, 2) == ["Condition 1", "Condition 2"]


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"conditions": ["a"]}',
                                  '{"format": "voca_addon.conditions", "conditions": []}',
                                  '{"format": "voca_addon.conditions", "conditions": ["a", ""]}'])
def test_conditions_damaged_file_raises_in_read_and_falls_back_in_names(tmp_path, text):
    prefix = tmp_path / "m.model"
    conditions.conditions_path(prefix).write_text(text, "utf-8")
    with pytest.raises(ModelFileError, match="conditions"):
        conditions.read_conditions(prefix)
    assert conditions.condition_names(prefix, 1) == ["Condition 1"]


def test_conditions_write_refuses_empty_names(tmp_path):
    with pytest.raises(InputError):
        conditions.write_conditions(tmp_path / "m.model", [])
    with pytest.raises(InputError):
        conditions.write_conditions(tmp_path / "m.model", ["ok", " "])
    assert not list(tmp_path.iterdir())


def test_conditions_long_names_are_cut_to_blenders_limit(tmp_path):
    prefix = tmp_path / "m.model"
    conditions.write_conditions(prefix, ["x" * 100])
    assert conditions.condition_names(prefix, 1) == ["x" * conditions.MAX_NAME_LENGTH]
