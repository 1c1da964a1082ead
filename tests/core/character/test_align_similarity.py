"""Umeyama alignment: recovers a similarity exactly and refuses bad landmark sets with a clear message."""
import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from voca_addon.core.character import align, landmarks as lm
from voca_addon.core.errors import InputError


@pytest.fixture
def flame_points(flame):
    return flame.vertices[lm.FLAME_IBUG68]


def test_align_recovers_scale_rotation_translation(flame_points):
    rotation = Rotation.from_euler("zyx", [40, -75, 120], degrees=True).as_matrix()
    target = 100.0 * flame_points @ rotation.T + np.array([3.0, -40.0, 7.5])
    found = align.align(flame_points, target)
    assert found.scale == pytest.approx(100.0, rel=1e-12)
    np.testing.assert_allclose(found.rotation, rotation, atol=1e-12)
    np.testing.assert_allclose(found.apply(flame_points), target, atol=1e-9)
    np.testing.assert_allclose(found.inverse_apply(target), flame_points, atol=1e-12)


@pytest.mark.parametrize("scale, unit", [(1.0, "metres"), (100.0, "centimetres"), (1000.0, "millimetres"),
                                         (39.37, "inches"), (1.8, "metres")])
def test_align_accepts_head_sized_units(scale, unit):
    assert align.check_scale(scale) == unit


@pytest.mark.parametrize("scale", [10.0, 0.05, 1e5])
def test_align_refuses_target_far_from_flame_size_naming_the_scale(flame_points, scale):
    with pytest.raises(InputError, match=re.escape(f"{scale:.4g}× FLAME's size")):
        align.align(flame_points, scale * flame_points)


def test_align_refuses_mirrored_pairs(flame_points):
    mirrored = flame_points * np.array([-1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="mirrored"):
        align.align(flame_points, mirrored)


def test_align_refuses_collinear_landmarks(flame_points):
    line = np.outer(np.linspace(0, 0.1, len(flame_points)), [1.0, 2.0, 0.5])
    with pytest.raises(InputError, match="degenerate"):
        align.align(flame_points, line)
    with pytest.raises(InputError, match="degenerate"):
        align.align(flame_points, np.zeros_like(flame_points))


def test_landmarks_check_pairs_refuses_few_and_out_of_range():
    with pytest.raises(InputError, match="at least 4"):
        lm.check_pairs([1, 2, 3], [4, 5, 6], 100)
    with pytest.raises(InputError, match="id 100 is out of range: the target has 100 vertices"):
        lm.check_pairs([1, 2, 3, 4], [4, 5, 6, 100], 100)
    with pytest.raises(InputError, match="id 6000 is out of range: FLAME has 5023"):
        lm.check_pairs([1, 2, 3, 6000], [4, 5, 6, 7], 100)


def test_landmarks_read_pairs_file(tmp_path):
    path = tmp_path / "pairs.txt"
    lm.write_pairs(path, [3, 4], [5, 6])
    path.write_text(path.read_text() + "7, 8  # a comment\n")
    flame_ids, target_ids = lm.read_pairs(path)
    assert flame_ids.tolist() == [3, 4, 7] and target_ids.tolist() == [5, 6, 8]
    path.write_text("1 2\n3 x\n")
    with pytest.raises(InputError, match="line 2"):
        lm.read_pairs(path)
    with pytest.raises(InputError, match="was not found"):
        lm.read_pairs(tmp_path / "missing.txt")


def test_landmarks_pairs_file_reusing_a_target_vertex_is_refused(tmp_path, shared_data):
    flame = np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=np.int64)
    target = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=np.int64)
    path = tmp_path / "pairs.txt"
    lm.write_pairs(path, flame, target)
    assert lm.read_pairs(path)[1].tolist() == target.tolist()          # the real 68 pairs are accepted
    target[61] = target[62]                                             # two inner-lip points on one vertex
    lm.write_pairs(path, flame, target)
    with pytest.raises(InputError, match=f"target vertex {target[62]} is paired with FLAME vertices "
                                         rf"\[{flame[61]}, {flame[62]}\]"):
        lm.read_pairs(path)


def test_landmarks_ids_are_the_shared_data_file(shared_data):
    ids = np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=np.int64)
    np.testing.assert_array_equal(lm.FLAME_IBUG68, ids)
