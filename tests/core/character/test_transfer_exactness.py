"""Transfer onto FLAME itself remeshed, shuffled, rotated, moved and in centimetres reproduces the official
VOCA animation at every target vertex and frame within 0.1 mm (FLAME scale); islands behave."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from voca_addon.core.character import fit as fitting, landmarks as lm, transfer
from voca_addon.core.errors import MeshError

from .conftest import subdivide

SCALE = 100.0                                                     # metres → centimetres
ROTATION = Rotation.from_euler("xyz", [30, -50, 70], degrees=True).as_matrix()
SHIFT = np.array([12.0, -3.0, 40.0])


@pytest.fixture(scope="module")
def remeshed(flame):
    """FLAME with every triangle split in four, vertices shuffled, posed in cm; and its map from FLAME."""
    w, faces = subdivide(flame.vertices, flame.faces)
    order = np.random.default_rng(1).permutation(w.shape[0])
    w = w[order]
    new_index = np.argsort(order)
    vertices = SCALE * (w @ flame.vertices) @ ROTATION.T + SHIFT
    return dict(vertices=vertices, faces=new_index[faces], w=w, landmarks=new_index[lm.FLAME_IBUG68])


@pytest.fixture(scope="module")
def remeshed_fit(flame, remeshed):
    return fitting.fit_target(flame.vertices, flame.faces, remeshed["vertices"], remeshed["faces"],
                              lm.FLAME_IBUG68, remeshed["landmarks"])


def test_transfer_remeshed_flame_is_exact_within_0_1_mm(flame, official, remeshed, remeshed_fit):
    fit = remeshed_fit
    assert fit.similarity.scale == pytest.approx(SCALE, rel=1e-9)
    assert fit.residuals["unit"] == "centimetres"
    assert fit.residuals["surface"]["max"] < 1e-6                  # mm: registration is the identity
    result = transfer.transfer(official, fit, remeshed["vertices"], remeshed["faces"])
    np.testing.assert_array_equal(result.weights, official.weights)
    worst = 0.0
    for start in range(0, official.num_frames, 50):
        frames = range(start, min(start + 50, official.num_frames))
        expected = official.vertices(frames).astype(np.float64)   # FLAME animation at the same surface points
        on_target = (remeshed["w"] @ expected.transpose(1, 0, 2).reshape(expected.shape[1], -1))
        expected = SCALE * on_target.reshape(-1, len(frames), 3).transpose(1, 0, 2) @ ROTATION.T + SHIFT
        error = np.linalg.norm(result.vertices(frames) - expected, axis=2) / SCALE   # metres at FLAME scale
        worst = max(worst, float(error.max()))
    print(f"remeshed FLAME ({len(remeshed['vertices'])} vertices, {official.num_frames} frames): "
          f"largest error {worst * 1000:.4f} mm")
    assert worst < 1e-4


def test_transfer_rest_shape_is_the_target_unchanged(official, remeshed, remeshed_fit):
    result = transfer.transfer(official, remeshed_fit, remeshed["vertices"], remeshed["faces"])
    np.testing.assert_array_equal(result.template, remeshed["vertices"].astype(np.float32))


def test_transfer_eyes_stay_still_and_follow_flames_eyeballs(official, remeshed, remeshed_fit):
    eyes = remeshed_fit.roles == fitting.EYE
    assert eyes.sum() == 2 * 2178                                   # both eyeballs, subdivided
    result = transfer.transfer(official, remeshed_fit, remeshed["vertices"], remeshed["faces"])
    span = np.ptp(result.vertices()[:, eyes], axis=0)               # range over the clip, cm
    flame_span = np.linalg.norm(np.ptp(official.vertices()[:, 3931:], axis=0), axis=1).max()
    print(f"eye range {np.linalg.norm(span, axis=1).max() / SCALE * 1000:.3f} mm, FLAME's {flame_span * 1000:.3f} mm")
    assert np.linalg.norm(span, axis=1).max() / SCALE < flame_span + 3e-5   # FLAME's eyeballs' (VOCA) range


def test_transfer_lower_teeth_island_follows_the_jaw(flame, official):
    """A separate box inside the mouth below the lips (lower teeth) drops as the mouth opens; one above
    (upper teeth) stays still."""
    mouth = flame.vertices[lm.FLAME_IBUG68[lm.IBUG_INNER_LIPS]].mean(axis=0)
    box = np.array([[x, y, z] for x in (-0.015, 0.015) for y in (0, 0.006) for z in (-0.012, 0)])
    quads = np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]])
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    lower = box + mouth + np.array([0, -0.012, -0.008])
    upper = box + mouth + np.array([0, 0.004, -0.008])
    vertices = np.concatenate([flame.vertices, lower, upper])
    v = len(flame.vertices)
    faces = np.concatenate([flame.faces, tris + v, tris + v + 8])
    fit = fitting.fit_target(flame.vertices, flame.faces, vertices, faces, lm.FLAME_IBUG68, lm.FLAME_IBUG68)
    assert (fit.roles[v:v + 8] == fitting.JAW).all() and (fit.roles[v + 8:] == fitting.SKULL).all()
    frames = transfer.transfer(official, fit, vertices, faces).vertices()
    flame_frames = official.vertices()
    teeth_drop = frames[:, v:v + 8, 1].mean(axis=1)
    chin_drop = flame_frames[:, lm.FLAME_IBUG68[8], 1]                # FLAME's chin (iBUG 8), height
    print(f"lower teeth follow the chin: r = {np.corrcoef(chin_drop, teeth_drop)[0, 1]:.3f}")
    assert np.corrcoef(chin_drop, teeth_drop)[0, 1] > 0.9
    print(f"lower teeth range {np.ptp(teeth_drop) * 1000:.2f} mm, chin's {np.ptp(chin_drop) * 1000:.2f} mm")
    assert 0.5 < np.ptp(teeth_drop) / np.ptp(chin_drop) < 1.5
    assert np.linalg.norm(np.ptp(frames[:, v + 8:], axis=0), axis=1).max() < 1e-3


def test_fit_refuses_target_without_faces(flame):
    with pytest.raises(MeshError, match="no faces"):
        fitting.fit_target(flame.vertices, flame.faces, flame.vertices, np.zeros((0, 3), np.int32),
                           lm.FLAME_IBUG68, lm.FLAME_IBUG68)
