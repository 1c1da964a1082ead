"""Transfer VOCA's displacement fields from FLAME to a fitted target.

VOCA's output is ``template + bias + weights @ basis``: 51 displacement fields on FLAME's 5023
vertices (the basis rows and the bias). Each becomes a field on the target through one sparse linear
map T (V_target × 5023), so the target's animation is again a :class:`ShapeKeyAnimation` with the
*same* weights — every writer and exporter works on it unchanged. Rows of T by vertex role
(:mod:`.fit`):

- ``SURFACE``: the vertex's closest point on the registered FLAME surface, barycentric weights
  (b₁, b₂, b₃) on that triangle's corners (given the target's faces, among triangles facing within 60° of
  the vertex's normal: the rim of an upper lip never takes the lower lip's motion), times a falloff φ(d)
  of the distance d to that surface
  (1 up to ``FALLOFF_START``, a smoothstep down to 0 at ``FALLOFF_END``): motion stays where VOCA
  moves FLAME's surface and fades out smoothly on parts FLAME does not cover (hair, body).
- ``EYE``: the least-squares affine field x ↦ Aᵀ[x; 1] fitted to FLAME's eyeball (546 vertices),
  evaluated at the vertex — linear in the field, so a row of T: [x; 1]ᵀ H⁺ with H the eyeball's
  [p; 1] rows. Eyes do what FLAME's eyeballs do: stay still (VOCA moves them < 0.1 mm).
- ``JAW`` / ``SKULL``: the island translates with the mean field of a FLAME region (the chin: FLAME
  vertices within ``REGION_RADIUS`` of iBUG 6–10; the nose bridge, iBUG 27–30): a row of T with 1/k
  on the region's k vertices. Lower teeth and tongue follow the jaw. (An affine fit over the small
  chin patch extrapolates badly: teeth moved 0.4× the chin.)

Fields are then taken into the target frame by the similarity's s·R. The rest shape (the template)
is the target's vertices themselves, untouched. Corrective keys (:class:`~..animation.shapekeys.Corrections`:
the lip closures) are fields too: their basis goes through the same T and stays apart in the result,
with the same weights, so VOCA's exact motion on the target is still one ``exact()`` away.

Contract: numpy + scipy; pure functions, any thread. Units: FLAME metres in, target units out.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..animation.shapekeys import Corrections, ShapeKeyAnimation
from ..errors import InputError
from . import landmarks as lm, surface
from .fit import EYE, JAW, SKULL, SURFACE, Fit

FALLOFF_START = 0.003    # m: full motion up to this distance from the registered FLAME surface
FALLOFF_END = 0.015      # m: no motion from this distance on
FACING_COS = 0.5         # a closest triangle must face within 60° of the target vertex's normal
REGION_RADIUS = 0.01     # m: FLAME vertices this close to the region's landmarks drive followers


def falloff(distance: np.ndarray) -> np.ndarray:
    """φ(d): 1 for d ≤ start, 0 for d ≥ end, smoothstep 3u² − 2u³ between (float64 [N])."""
    u = np.clip((FALLOFF_END - np.asarray(distance, np.float64)) / (FALLOFF_END - FALLOFF_START), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _affine_rows(points: np.ndarray, region_points: np.ndarray) -> np.ndarray:
    """Rows [N, k] mapping a field on k region vertices to its affine least-squares fit at ``points``."""
    h = np.hstack([region_points, np.ones((len(region_points), 1))])     # H [k, 4]
    return np.hstack([points, np.ones((len(points), 1))]) @ np.linalg.pinv(h)


def _region(fit: Fit, role: int, side: int) -> np.ndarray:
    if role == EYE:
        return np.array(lm.FLAME_EYEBALLS[side])
    anchors = lm.FLAME_IBUG68[lm.IBUG_CHIN if role == JAW else lm.IBUG_NOSE_BRIDGE]
    gap = np.linalg.norm(fit.flame[:, None] - fit.flame[anchors][None], axis=2).min(axis=1)
    return np.flatnonzero(gap < REGION_RADIUS)


def _facing(points, normals, cp, fit: Fit) -> None:
    """Re-pick, for vertices whose closest triangle faces the other way, the closest facing one (in place)."""
    tri_normals = surface.face_normals(fit.flame, fit.flame_faces)
    hit = cp.triangle >= 0
    dot = np.einsum("ij,ij->i", normals, tri_normals[np.maximum(cp.triangle, 0)])
    if np.median(dot[hit]) < 0:                                           # the target is wound inwards
        normals, dot = -normals, -dot
    corners = fit.flame[fit.flame_faces]
    centroids = corners.mean(axis=1)
    reach = float(np.linalg.norm(corners - centroids[:, None], axis=2).max())
    tree = cKDTree(centroids)
    for i in np.flatnonzero(hit & (dot < FACING_COS)):
        cand = np.asarray(tree.query_ball_point(points[i], FALLOFF_END + reach), np.int64)
        cand = cand[tri_normals[cand] @ normals[i] >= FACING_COS]
        if not cand.size:
            continue
        bary = surface.triangle_barycentric(np.repeat(points[i:i + 1], len(cand), 0), *corners[cand].transpose(1, 0, 2))
        dist = np.linalg.norm(np.einsum("nk,nkd->nd", bary, corners[cand]) - points[i], axis=1)
        best = int(dist.argmin())
        if dist[best] < FALLOFF_END:
            cp.triangle[i], cp.barycentric[i], cp.distance[i] = cand[best], bary[best], dist[best]


def transfer_matrix(fit: Fit, target: np.ndarray, faces: np.ndarray = None) -> sp.csr_matrix:
    """The sparse map T [V_target, 5023] from FLAME fields to target fields (FLAME frame).

    Parameters
    ----------
    fit : Fit
    target : float [V_target, 3]   the target's rest vertices (its own frame and units)
    faces : int [S, 3], optional   the target's triangles: closest points then respect facing
    """
    target = np.asarray(target, np.float64)
    if len(target) != len(fit.roles):
        raise InputError(f"the target has {len(target)} vertices but was fitted with {len(fit.roles)}; "
                         "fit it again.")
    points = fit.similarity.inverse_apply(target)                         # FLAME frame
    rows, cols, vals = [], [], []
    on_surface = np.flatnonzero(fit.roles == SURFACE)
    cp = surface.closest_points(points[on_surface], fit.flame, fit.flame_faces, max_distance=FALLOFF_END)
    if faces is not None:
        _facing(points[on_surface], surface.vertex_normals(points, faces)[on_surface], cp, fit)
    hit = cp.triangle >= 0
    weight = cp.barycentric[hit] * falloff(cp.distance[hit])[:, None]     # b_k φ(d)
    rows.append(np.repeat(on_surface[hit], 3))
    cols.append(fit.flame_faces[cp.triangle[hit]].ravel())
    vals.append(weight.ravel())
    for role, side in ((EYE, 0), (EYE, 1), (JAW, -1), (SKULL, -1)):
        members = np.flatnonzero((fit.roles == role) & ((fit.eye_side == side) if role == EYE else True))
        if members.size:
            region = _region(fit, role, side)
            rows.append(np.repeat(members, len(region)))
            cols.append(np.tile(region, len(members)))
            if role == EYE:
                vals.append(_affine_rows(points[members], fit.flame[region]).ravel())
            else:
                vals.append(np.full(len(members) * len(region), 1.0 / len(region)))   # mean field
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(target), lm.FLAME_NUM_VERTICES))


def transfer_fields(fields: np.ndarray, fit: Fit, matrix: sp.csr_matrix) -> np.ndarray:
    """Displacement fields on FLAME [D, 5023, 3] → on the target [D, V_target, 3] (float32, target units):
    T f in FLAME's frame, then the similarity's s·R. ``matrix``: T from :func:`transfer_matrix`."""
    fields = np.asarray(fields, np.float64)
    d, v = fields.shape[0], matrix.shape[0]
    moved = matrix @ fields.transpose(1, 0, 2).reshape(lm.FLAME_NUM_VERTICES, -1)       # [V_t, D*3]
    moved = fit.similarity.apply_vectors(moved.reshape(v, d, 3))                        # s R f
    return np.ascontiguousarray(moved.transpose(1, 0, 2).astype(np.float32))


def transfer(animation: ShapeKeyAnimation, fit: Fit, target: np.ndarray,
             faces: np.ndarray = None, matrix: sp.csr_matrix = None) -> ShapeKeyAnimation:
    """VOCA's animation on FLAME → the same animation on the fitted target.

    Parameters
    ----------
    animation : ShapeKeyAnimation   on FLAME's 5023 vertices (metres)
    fit : Fit                       from :func:`.fit.fit_target`
    target : float [V_target, 3]    the target's rest vertices
    faces : int [S, 3], optional    the target's triangles (recommended: see :func:`transfer_matrix`)
    matrix : sparse, optional       T of this fit and target, when already built (else built here)

    Returns
    -------
    ShapeKeyAnimation
        template = ``target`` (float32), basis [D, V_target, 3] and bias in the target's units and
        frame, the same weights, fps and names; the animation's corrections (lip closures…), if any,
        transferred the same way and kept apart (:func:`transfer_corrections`).
    """
    if animation.num_vertices != lm.FLAME_NUM_VERTICES:
        raise InputError(f"the animation has {animation.num_vertices} vertices; retargeting needs VOCA's "
                         f"FLAME animation ({lm.FLAME_NUM_VERTICES} vertices).")
    t = transfer_matrix(fit, target, faces) if matrix is None else matrix
    moved = transfer_fields(np.concatenate([animation.bias[None], animation.basis]), fit, t)   # [D+1, V_t, 3]
    c = animation.corrections
    return ShapeKeyAnimation(np.ascontiguousarray(moved[1:]), np.ascontiguousarray(moved[0]),
                             animation.weights, animation.fps, np.asarray(target, np.float32),
                             animation.names, None if c is None else transfer_corrections(c, fit, t))


def transfer_corrections(corrections: Corrections, fit: Fit, matrix: sp.csr_matrix) -> Corrections:
    """Corrective keys on FLAME → on the target: their basis through T like every field (the same map, so
    the corrected target is the transfer of the corrected FLAME face), the same weights and names."""
    moved = transfer_fields(corrections.basis, fit, matrix) if len(corrections.basis) else \
        np.zeros((0, matrix.shape[0], 3), np.float32)
    return Corrections(np.ascontiguousarray(moved), corrections.weights, corrections.names)
