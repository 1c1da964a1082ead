"""Closest points on triangle meshes: exact against brute force over every triangle."""
import numpy as np

from voca_addon.core.character import surface


def _brute(q, vertices, faces):
    corners = vertices[faces]
    out = []
    for p in q:
        bary = surface.triangle_barycentric(np.repeat(p[None], len(faces), 0), *corners.transpose(1, 0, 2))
        points = np.einsum("tk,tkd->td", bary, corners)
        out.append(np.linalg.norm(points - p, axis=1).min())
    return np.array(out)


def test_surface_closest_points_match_brute_force(flame):
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(flame.vertices), 120)
    q = flame.vertices[picks] + rng.normal(0, 0.01, (120, 3)) * rng.choice([0.1, 1, 5], (120, 1))
    found = surface.closest_points(q, flame.vertices, flame.faces)
    np.testing.assert_allclose(found.distance, _brute(q, flame.vertices, flame.faces), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(found.point - q, axis=1), found.distance, atol=1e-12)
    assert (found.barycentric >= -1e-12).all() and np.allclose(found.barycentric.sum(1), 1)


def test_surface_barycentric_is_the_nearest_point_of_the_triangle():
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 200, 3))
    p = rng.normal(size=(200, 3)) * 2
    bary = surface.triangle_barycentric(p, a, b, c)
    best = np.einsum("nk,knd->nd", bary, np.stack([a, b, c]))
    u = rng.random((5000, 2))
    u = np.where(u.sum(1, keepdims=True) > 1, 1 - u, u)
    for i in range(200):
        samples = a[i] + u[:, :1] * (b[i] - a[i]) + u[:, 1:] * (c[i] - a[i])
        assert np.linalg.norm(best[i] - p[i]) <= np.linalg.norm(samples - p[i], axis=1).min() + 1e-12


def test_surface_max_distance_skips_far_queries(flame):
    q = flame.vertices[:3] + np.array([[0, 0, 1.0], [0, 0, 0.0], [0, 0, 0.0]])
    found = surface.closest_points(q, flame.vertices, flame.faces, max_distance=0.05)
    assert found.triangle[0] == -1 and np.isinf(found.distance[0])
    assert (found.triangle[1:] >= 0).all()


def test_surface_islands_of_flame_are_head_and_two_eyeballs(flame):
    labels = surface.islands(len(flame.vertices), flame.faces)
    assert sorted(np.bincount(labels).tolist()) == [546, 546, 3931]
