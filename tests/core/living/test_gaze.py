"""gaze: FLAME's eyeballs found on the real template, main-sequence saccades, converging look-at."""
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.living import gaze
from voca_addon.core.flame.meshio import read_mesh


@pytest.fixture(scope="module")
def head(shared_data):
    return read_mesh(shared_data / "flame" / "FLAME_sample.ply")


def test_gaze_eyeball_vertices_are_flames_eyeball_regions(head, shared_data):
    with open(shared_data / "flame" / "FLAME_masks.pkl", "rb") as handle:
        masks = pickle.load(handle, encoding="latin1")
    left, right = gaze.eyeball_vertices(head.vertices, head.faces)
    assert set(left) == set(masks["left_eyeball"]) and set(right) == set(masks["right_eyeball"])


def test_gaze_eyeball_vertices_refuses_a_single_part_mesh(shared_data):
    face = read_mesh(sorted((shared_data / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0])
    with pytest.raises(MeshError, match="separate part"):
        gaze.eyeball_vertices(face.vertices, face.faces)


def test_gaze_saccades_follow_the_main_sequence_over_ten_minutes():
    fps = 60
    g = gaze.gaze_track(fps * 600, fps, seed=0)
    intervals = np.diff(g.saccade_s)
    print(f"\ngaze, 10 min: {g.saccade_s.size / 10:.0f} saccades/min, amplitude mean {g.amplitude_deg.mean():.1f}° "
          f"(max {g.amplitude_deg.max():.1f}°), duration {g.duration_s.mean() * 1e3:.0f} ms, fixation "
          f"{intervals.mean():.2f} s")
    np.testing.assert_allclose(g.duration_s, (21 + 2.2 * g.amplitude_deg) / 1000)
    assert 3 < g.amplitude_deg.mean() < 9 and g.amplitude_deg.max() < 40
    assert 0.6 < intervals.mean() < 1.3 and intervals.min() >= gaze.FIXATION_MIN_S - 1e-9
    deg = np.degrees(np.abs(g.rotation))
    assert g.rotation.shape == (fps * 600, 2, 3) and deg[..., 1].max() < 26 and deg[..., 0].max() < 21
    np.testing.assert_array_equal(g.rotation[:, 0], g.rotation[:, 1])            # conjugate gaze
    speed = np.degrees(np.linalg.norm(np.diff(g.rotation[:, 0], axis=0), axis=1)) * fps
    assert np.percentile(speed, 50) < 1.0                                            # mostly fixating


def test_gaze_look_at_converges_on_the_target(head):
    left, right = gaze.eyeball_vertices(head.vertices, head.faces)
    centres = np.stack([head.vertices[left].mean(0), head.vertices[right].mean(0)])
    target = np.array([0.05, 0.1, 0.6])
    g = gaze.gaze_track(300, 30, seed=2, eye_centres=centres, target=target)
    for eye in range(2):                                                  # frame 0: before any saccade
        forward = Rotation.from_rotvec(g.rotation[0, eye]).apply([0.0, 0.0, 1.0])
        ray = (target - centres[eye]) / np.linalg.norm(target - centres[eye])
        assert np.degrees(np.arccos(np.clip(forward @ ray, -1, 1))) < 1e-4
    off = [np.degrees(np.arccos(np.clip(Rotation.from_rotvec(r).apply([0, 0, 1.0]) @ (
        (target - centres[0]) / np.linalg.norm(target - centres[0])), -1, 1))) for r in g.rotation[:, 0]]
    assert max(off) < 10 and np.mean(off) < 4


def test_gaze_refuses_bad_targets(head):
    with pytest.raises(InputError, match="eye centres"):
        gaze.gaze_track(10, 30, target=[0, 0, 1])
    with pytest.raises(InputError, match="in front of the face"):
        gaze.gaze_track(10, 30, eye_centres=np.zeros((2, 3)), target=[0, 0, -1])


def test_gaze_yaw_pitch_rotvec_matches_scipy():
    rng = np.random.default_rng(0)
    yaw, pitch = rng.uniform(-1.2, 1.2, 50), rng.uniform(-1.2, 1.2, 50)
    want = Rotation.from_euler("YX", np.stack([yaw, pitch], axis=1)).as_rotvec()     # intrinsic: yaw, then pitch
    np.testing.assert_allclose(gaze.yaw_pitch_rotvec(yaw, pitch), want, atol=1e-12)


def test_gaze_mesh_parts_count_flames_parts(head):
    labels = gaze.mesh_parts(len(head.vertices), head.faces)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    f = head.faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = len(head.vertices)
    count, ref = connected_components(coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)),
                                      directed=False)
    assert labels.max() + 1 == count
    pairs = set(zip(labels.tolist(), ref.tolist()))                  # the same partition, labels renamed
    assert len(pairs) == count
