"""The shape-key animation type, on the official model's real output."""
import numpy as np
import pytest

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation, factorize
from voca_addon.core.errors import InputError


@pytest.fixture(scope="module")
def official(shared_data):
    with np.load(shared_data / "voca_official" / "output_test_sentence_cond3.npz") as z:
        return z["vertices"], float(z["fps"])


def max_vertex_distance(a, b):
    return float(np.sqrt(((np.asarray(a, np.float64) - b) ** 2).sum(-1)).max())


def max_coordinate_error(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max())


def test_animation_factorize_reproduces_official_output(official, flame_template):
    vertices, fps = official
    anim = factorize(vertices, flame_template.vertices, fps, tolerance=1e-6)
    rank = anim.basis.shape[0]
    err = max_coordinate_error(anim.vertices(), vertices)
    dist = max_vertex_distance(anim.vertices(), vertices)
    print(f"official output: rank {rank} + bias, max coordinate error {err * 1e6:.3f} µm "
          f"(per-vertex distance {dist * 1e6:.3f} µm)")
    assert rank + 1 <= 51 and err <= 1e-6
    assert anim.num_frames == 306 and anim.fps == 60.0
    # Fewer components cannot meet the bound (the tolerance decides the rank, not a cap).
    coarse = factorize(vertices, flame_template.vertices, fps, max_rank=rank - 5)
    assert max_coordinate_error(coarse.vertices(), vertices) > 1e-6


def test_animation_official_output_is_template_plus_offsets(official, flame_template):
    """The data README's claim, checked: the frames are FLAME_sample + small offsets (< 3 cm)."""
    vertices, _ = official
    assert max_vertex_distance(vertices, flame_template.vertices) < 0.03


def test_animation_resampled_interpolates_vertices_linearly(official, flame_template):
    vertices, fps = official
    anim = factorize(vertices, flame_template.vertices, fps)
    at24 = anim.resampled(24.0)
    assert at24.num_frames == round(306 / 60 * 24) and at24.fps == 24.0
    # frame i at 24 fps is time i/24 = frame 2.5·i at 60 fps: the mean of two 60 fps frames for odd i
    i = 3
    expected = 0.5 * (vertices[7] + vertices[8])
    assert max_vertex_distance(at24.vertices([i])[0], expected) < 2e-6
    np.testing.assert_allclose(at24.vertices([2])[0], anim.vertices([5])[0], atol=1e-7)
    assert anim.resampled(60.0) is anim


def test_animation_vertices_subset_matches_all(flame_template):
    rng = np.random.default_rng(0)
    v = flame_template.vertices.astype(np.float32)
    anim = ShapeKeyAnimation(rng.standard_normal((4, len(v), 3)).astype(np.float32) * 1e-3,
                             np.zeros_like(v), rng.standard_normal((10, 4)).astype(np.float32), 30.0, v)
    np.testing.assert_array_equal(anim.vertices([2, 7]), anim.vertices()[[2, 7]])
    assert anim.names == ("voca_000", "voca_001", "voca_002", "voca_003")


@pytest.mark.parametrize("change", ["basis", "weights", "fps", "names"])
def test_animation_refuses_inconsistent_shapes(change, flame_template):
    v = flame_template.vertices.astype(np.float32)
    args = dict(basis=np.zeros((3, len(v), 3), np.float32), bias=np.zeros_like(v),
                weights=np.zeros((5, 3), np.float32), fps=60.0, template=v, names=("a", "b", "c"))
    args[change] = {"basis": np.zeros((3, 10, 3), np.float32), "weights": np.zeros((5, 4), np.float32),
                    "fps": 0.0, "names": ("a",)}[change]
    with pytest.raises(InputError):
        ShapeKeyAnimation(**args)
