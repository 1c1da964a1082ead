"""Triangle-surface queries: exact closest points, normals, boundary edges and islands.

Closest point on a triangle: the Voronoi-region test of Ericson, *Real-Time Collision Detection*
(2005) §5.1.5, vectorised over (query, triangle) pairs. Candidate triangles come from a
``scipy.spatial.cKDTree`` over triangle centroids: if the nearest mesh vertex is at distance d_v, the
closest surface point is within d_v, and any triangle holding such a point has its centroid within
d_v + R_T (R_T: its centroid-to-corner distance). Triangles are grouped by R_T in factors of 2, each
group with its own tree searched to d_v + its largest R_T, so the result is exact and the candidate
count stays small on meshes mixing fine and coarse triangles.

Contract: numpy + scipy; pure functions, any thread. Units: whatever the inputs use.
"""
from __future__ import annotations

from dataclasses import dataclass

from itertools import chain

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

CHUNK = 4096    # queries per candidate batch (bounds memory)


@dataclass(frozen=True)
class ClosestPoints:
    """Closest surface points of Q queries.

    Attributes
    ----------
    triangle : int64 [Q]    index into the faces (−1: farther than ``max_distance``)
    barycentric : float64 [Q, 3]
    point : float64 [Q, 3]
    distance : float64 [Q]  (inf where triangle is −1)
    """

    triangle: np.ndarray
    barycentric: np.ndarray
    point: np.ndarray
    distance: np.ndarray


def triangle_barycentric(p, a, b, c) -> np.ndarray:
    """Barycentric coordinates of the closest point to ``p`` on triangles ``abc``, float64 [N, 3]."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    bp = p - b
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    cp = p - c
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = va + vb + vc
    v, w = _div(vb, denom), _div(vc, denom)
    bary = np.stack([1 - v - w, v, w], axis=1)                            # inside the face
    t = _div(d4 - d3, (d4 - d3) + (d5 - d6))                              # edge BC
    bary = _where((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), [0 * t, 1 - t, t], bary)
    t = _div(d2, d2 - d6)                                                 # edge AC
    bary = _where((vb <= 0) & (d2 >= 0) & (d6 <= 0), [1 - t, 0 * t, t], bary)
    bary = _where((d6 >= 0) & (d5 <= d6), [0 * t, 0 * t, 1 + 0 * t], bary)  # vertex C
    t = _div(d1, d1 - d3)                                                 # edge AB
    bary = _where((vc <= 0) & (d1 >= 0) & (d3 <= 0), [1 - t, t, 0 * t], bary)
    bary = _where((d3 >= 0) & (d4 <= d3), [0 * t, 1 + 0 * t, 0 * t], bary)  # vertex B
    return _where((d1 <= 0) & (d2 <= 0), [1 + 0 * t, 0 * t, 0 * t], bary)  # vertex A


def _dot(a, b):
    return np.einsum("ij,ij->i", a, b)


def _div(a, b):
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def _where(mask, columns, bary):
    return np.where(mask[:, None], np.stack(columns, axis=1), bary)


class TriangleSurface:
    """A triangle mesh prepared for repeated closest-point queries (trees built once).

    Parameters
    ----------
    vertices : float [V, 3]
    faces : int [T, 3]
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        verts = np.asarray(vertices, np.float64)
        faces = np.asarray(faces, np.int64)
        self.corners = verts[faces]                                       # [T, 3, 3]
        centroids = self.corners.mean(axis=1)
        radius = np.linalg.norm(self.corners - centroids[:, None], axis=2).max(axis=1)   # R_T
        self.max_radius = float(radius.max())
        self.vertex_tree = cKDTree(verts[np.unique(faces)])
        size_class = np.floor(np.log2(np.maximum(radius, 1e-300) / max(self.max_radius, 1e-300)))
        self.classes = []                                                 # triangles of similar R_T
        for cls in np.unique(size_class):
            members = np.flatnonzero(size_class == cls)
            self.classes.append((members, cKDTree(centroids[members]), float(radius[members].max())))

    def closest(self, queries: np.ndarray, max_distance: float = np.inf) -> ClosestPoints:
        """Exact closest points of ``queries`` [Q, 3]; farther than ``max_distance``: triangle −1."""
        q = np.asarray(queries, np.float64)
        d_v, _ = self.vertex_tree.query(q)                                 # true distance ≤ d_v
        best = (np.full(len(q), -1, np.int64), np.zeros((len(q), 3)), np.full(len(q), np.inf))
        near = np.flatnonzero(d_v <= max_distance + 2 * self.max_radius)
        for members, tree, reach in self.classes:
            for start in range(0, len(near), CHUNK):
                rows = near[start:start + CHUNK]
                balls = tree.query_ball_point(q[rows], d_v[rows] + reach + 1e-12, return_sorted=False)
                counts = np.fromiter(map(len, balls), np.int64, len(balls))
                cand = np.fromiter(chain.from_iterable(balls), np.int64, int(counts.sum()))
                _update(best, rows, q, np.repeat(np.arange(len(rows)), counts), members[cand], self.corners)
        tri, bary, dist = best
        far = dist > max_distance
        tri[far], dist[far] = -1, np.inf
        point = np.einsum("qk,qkd->qd", bary, self.corners[np.maximum(tri, 0)])
        return ClosestPoints(tri, bary, point, dist)


def closest_points(queries: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                   max_distance: float = np.inf) -> ClosestPoints:
    """Exact closest points of ``queries`` [Q, 3] on the triangles ``faces`` [T, 3] of ``vertices`` [V, 3].

    Queries with no surface point within ``max_distance`` get triangle −1 (skips far queries cheaply).
    """
    return TriangleSurface(vertices, faces).closest(queries, max_distance)


def _update(best, rows, q, owner, cand, corners) -> None:
    """Evaluate (query rows[owner], triangle cand) pairs; keep each query's nearest in ``best``."""
    if not len(owner):
        return
    a, b, c = (corners[cand, i] for i in range(3))
    p = q[rows[owner]]
    bary = triangle_barycentric(p, a, b, c)
    dist = np.linalg.norm(bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c - p, axis=1)
    order = np.lexsort((dist, owner))                                     # per owner, nearest first
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    target = rows[owner[first]]
    better = dist[first] < best[2][target]
    target, first = target[better], first[better]
    best[0][target], best[1][target], best[2][target] = cand[first], bary[first], dist[first]


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit face normals, float64 [T, 3] (zero for degenerate faces)."""
    corners = np.asarray(vertices, np.float64)[faces]
    n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, float64 [V, 3]."""
    corners = np.asarray(vertices, np.float64)[faces]
    n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    acc = np.zeros((len(vertices), 3))
    for k in range(3):
        np.add.at(acc, faces[:, k], n)
    length = np.linalg.norm(acc, axis=1, keepdims=True)
    return np.divide(acc, length, out=np.zeros_like(acc), where=length > 0)


def edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges, int64 [E, 2] (i < j)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    return np.unique(np.sort(e, axis=1), axis=0)


def boundary_edge_mask(faces: np.ndarray) -> np.ndarray:
    """bool [T, 3]: whether the edge opposite corner k of each triangle is used by one face only."""
    opposite = np.stack([faces[:, [1, 2]], faces[:, [2, 0]], faces[:, [0, 1]]], axis=1)  # [T, 3, 2]
    keys = np.sort(opposite.reshape(-1, 2), axis=1).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return (counts[inverse.ravel()] == 1).reshape(-1, 3)


def islands(num_vertices: int, faces: np.ndarray) -> np.ndarray:
    """Connected-component label per vertex, int64 [V] (loose vertices get their own label)."""
    e = edges(faces)
    graph = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    return connected_components(graph, directed=False)[1].astype(np.int64)
