"""Optimal-step non-rigid ICP (Amberg, Romdhani, Vetter, CVPR 2007).

The template's n vertices v_i each get an affine map X_i (4×3, stacked into X, 4n×3); the deformed
vertex is [v_iᵀ 1] X_i. For a stiffness α the cost

    E(X) = ‖(M ⊗ G) X‖²·α²  +  ‖W (D X − U)‖²  +  β² ‖D_L X − U_L‖²

(M: node–arc incidence matrix of the template's edges, G = diag(1, 1, 1, γ), D: the sparse n×4n matrix
of rows [v_iᵀ 1], U: closest target points, W: 0/1 reliability weights, D_L / U_L: landmark rows and
their target positions) is quadratic in X; each inner step solves its normal equations with a sparse
LU (``scipy.sparse.linalg.splu``) and repeats closest-point search + solve until X settles
(‖X_j − X_{j−1}‖ < ε), then α is lowered. A correspondence is dropped (w_i = 0) when it is farther than
``max_distance``, lies on the target's boundary, or the normals differ by more than 60° (the paper's
robustness rules). A closest point on an edge or a vertex takes the blend of the target's vertex normals
there and is on the boundary when that edge or vertex is: which of the faces sharing it the search
returns (a rounding tie) changes nothing, so the registration moves with its input continuously (a mesh
rotated or stored as float32 registers the same to 1e-15 / 1e-9 m; the tie once moved it by 3 mm).

Coordinates are normalised internally (template centred, unit RMS radius) so γ = 1 and the α
schedule are unit-free.

Contract: numpy + scipy; pure function, any thread. Units: the caller's (FLAME frame, metres).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from . import surface

ALPHAS = (50.0, 20.0, 10.0, 5.0, 2.0, 1.0)   # stiffness schedule α (normalised units)
GAMMA = 1.0                                  # weight of the translation column in G
BETA = 10.0                                  # landmark weight β (per landmark, relative to one vertex)
MAX_INNER = 3                                # closest-point + solve steps per α at most
EPSILON = 1e-4                               # ‖X_j − X_{j−1}‖ (normalised) that ends a step
NORMAL_COS = 0.5                             # cos 60°
ON_EDGE = 1e-9                               # a barycentric below this: the closest point is on an edge


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register`.

    Attributes
    ----------
    vertices : float64 [n, 3]  deformed template vertices
    matched : bool [n]          vertices with a reliable correspondence at the end
    distance : float64 [n]      distance to the target surface at the end (inf where none found)
    """

    vertices: np.ndarray
    matched: np.ndarray
    distance: np.ndarray


def _stiffness(faces: np.ndarray, n: int) -> sp.csr_matrix:
    e = surface.edges(faces)
    rows = np.repeat(np.arange(len(e)), 2)
    m = sp.csr_matrix((np.tile([-1.0, 1.0], len(e)), (rows, e.ravel())), shape=(len(e), n))
    return sp.kron(m, sp.diags([1.0, 1.0, 1.0, GAMMA])).tocsr()           # M ⊗ G  [4E, 4n]


def _d_matrix(vertices: np.ndarray) -> sp.csr_matrix:
    n = len(vertices)
    values = np.hstack([vertices, np.ones((n, 1))]).ravel()
    return sp.csr_matrix((values, (np.repeat(np.arange(n), 4), np.arange(4 * n))), shape=(n, 4 * n))


class _Target:
    """The target's surface, normals and boundary, built once per registration."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.faces = np.asarray(faces, np.int64)
        self.surface = surface.TriangleSurface(vertices, self.faces)
        self.face_normals = surface.face_normals(vertices, self.faces)
        self.vertex_normals = surface.vertex_normals(vertices, self.faces)
        self.boundary = surface.boundary_edge_mask(self.faces)                      # [S, 3]
        self.boundary_vertex = np.zeros(len(vertices), bool)
        for k in range(3):
            self.boundary_vertex[self.faces[self.boundary[:, k]][:, [(k + 1) % 3, (k + 2) % 3]].ravel()] = True


def _correspondences(deformed, template_faces, target: _Target, max_distance):
    """U (closest target points) and w (0/1 reliability) for the deformed template.

    A closest point on an edge or a vertex is shared by several target faces and the search returns any
    of them (which one depends on rounding); its normal (the barycentric blend of the target's vertex
    normals) and whether it is on the boundary (a boundary edge, or a boundary vertex) do not depend on
    that choice, so neither does w."""
    cp = target.surface.closest(deformed, max_distance=max_distance)
    found = cp.triangle >= 0
    tri = np.maximum(cp.triangle, 0)
    normals = surface.vertex_normals(deformed, template_faces)
    zero = cp.barycentric < ON_EDGE
    on_edge = zero.any(axis=1)
    blend = np.einsum("qk,qkd->qd", np.where(zero, 0.0, cp.barycentric), target.vertex_normals[target.faces[tri]])
    length = np.linalg.norm(blend, axis=1, keepdims=True)
    blend = np.divide(blend, length, out=np.zeros_like(blend), where=length > 0)
    target_normals = np.where(on_edge[:, None], blend, target.face_normals[tri])
    compatible = np.abs(np.einsum("ij,ij->i", normals, target_normals)) >= NORMAL_COS
    corner = target.faces[tri, np.argmax(cp.barycentric, axis=1)]
    on_boundary = np.where(zero.sum(axis=1) >= 2, target.boundary_vertex[corner],
                           (target.boundary[tri] & zero).any(axis=1))
    return cp.point, found & compatible & ~on_boundary, cp.distance


def register(template: np.ndarray, template_faces: np.ndarray, target: np.ndarray,
             target_faces: np.ndarray, landmark_ids: np.ndarray, landmark_points: np.ndarray,
             max_distance: float, alphas: Sequence[float] = ALPHAS, beta: float = BETA,
             progress: Optional[Callable[[float], None]] = None) -> Registration:
    """Deform ``template`` onto the surface of ``target`` (optimal-step NICP).

    Parameters
    ----------
    template : float [n, 3]; template_faces : int [T, 3]
    target : float [m, 3]; target_faces : int [S, 3]   (same frame and units as the template)
    landmark_ids : int [P]          template vertex per landmark
    landmark_points : float [P, 3]  their positions on the target
    max_distance : float            farthest accepted correspondence (caller's units)
    progress : callable, optional   called with the share of the (α, inner step) schedule done before each
                                    step; an exception it raises (a cancel) stops the registration
    """
    centre = template.mean(axis=0)
    radius = float(np.sqrt(((template - centre) ** 2).sum(axis=1).mean()))
    v, tgt = (template - centre) / radius, (target - centre) / radius       # normalised frame
    u_l = (np.asarray(landmark_points, np.float64) - centre) / radius
    n = len(v)
    mg, d = _stiffness(template_faces, n), _d_matrix(v)
    d_l = d[np.asarray(landmark_ids)]
    on_target = _Target(tgt, target_faces)
    fixed = (mg.T @ mg).tocsc(), (d_l.T @ d_l).tocsc(), d_l.T @ u_l
    x = np.tile(np.vstack([np.eye(3), np.zeros((1, 3))]), (n, 1))           # X⁰: identity maps
    for a, alpha in enumerate(alphas):
        for inner in range(MAX_INNER):
            if progress is not None:
                progress((a * MAX_INNER + inner) / (len(alphas) * MAX_INNER))
            u, w, _ = _correspondences(d @ x, template_faces, on_target, max_distance / radius)
            dw = sp.diags(w.astype(np.float64)) @ d
            lhs = alpha ** 2 * fixed[0] + dw.T @ dw + beta ** 2 * fixed[1]
            rhs = dw.T @ u + beta ** 2 * fixed[2]
            x_new = splu(lhs.tocsc(), permc_spec="COLAMD").solve(rhs)
            step = float(np.linalg.norm(x_new - x))
            x = x_new
            if step < EPSILON:
                break
    deformed = d @ x
    _, matched, dist = _correspondences(deformed, template_faces, on_target, max_distance / radius)
    return Registration(deformed * radius + centre, matched, dist * radius)
