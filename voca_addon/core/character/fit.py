"""Fit FLAME to a target head: similarity from landmark pairs, then non-rigid registration.

Steps (all in FLAME's frame, metres):

1. **Align** — Umeyama similarity from the landmark pairs (:mod:`.align`); the target is mapped into
   FLAME's frame by its inverse, so every threshold below is in FLAME metres whatever the target's units.
2. **Islands** — the target's connected parts get a role: ``SURFACE`` (skin, brows, lashes, hair: each
   vertex follows the closest FLAME surface point), ``EYE`` (an island around one of FLAME's eyeballs:
   it follows that eyeball, i.e. stays still), ``JAW`` (a landmark-free island in the mouth below the
   lips' centre: lower teeth, tongue: follows FLAME's chin) or ``SKULL`` (in the mouth above it: upper
   teeth: follows the nose bridge).
3. **Register** — optimal-step NICP (:mod:`.nicp`) of FLAME without its eyeballs onto the target's
   ``SURFACE`` islands, pulled by the landmarks.

The residuals say how good the fit is: landmark distances after the similarity and after
registration, and the distance of every registered FLAME vertex to the target's surface.

Contract: numpy + scipy; pure functions, any thread. User errors raise :class:`~..errors.VocaError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import MeshError
from . import landmarks as lm, nicp, surface
from .align import Similarity, align, check_scale

SURFACE, EYE, JAW, SKULL = 0, 1, 2, 3
ROLE_NAMES = {SURFACE: "surface", EYE: "eye", JAW: "jaw", SKULL: "skull"}
EYE_RADIUS = 0.02            # m: an island centred this close to a FLAME eyeball, and this small, is an eye
MOUTH_RADIUS = 0.045         # m: a landmark-free island centred this close to the inner lips is in the mouth
MAX_CORRESPONDENCE = 0.02    # m: NICP ignores target points farther than this


@dataclass(frozen=True)
class Fit:
    """FLAME registered onto a target (everything needed to transfer motion to it).

    Attributes
    ----------
    similarity : Similarity        FLAME frame → target frame
    flame : float64 [5023, 3]      FLAME vertices after registration, in FLAME's frame (eyeballs: as
                                   the template)
    flame_faces : int32 [T, 3]     FLAME's triangles without the eyeballs (the registered surface)
    roles : int8 [V_target]        role of each target vertex (SURFACE, EYE, JAW, SKULL)
    eye_side : int8 [V_target]     for EYE vertices, which FLAME eyeball (0 or 1); else −1
    residuals : dict               figures in mm at FLAME scale (see :func:`fit_target`)
    """

    similarity: Similarity
    flame: np.ndarray
    flame_faces: np.ndarray
    roles: np.ndarray
    eye_side: np.ndarray
    residuals: dict = field(default_factory=dict)


def check_target(vertices: np.ndarray, faces: np.ndarray, name: str = "the target") -> None:
    """Refuse a target without faces or with non-finite coordinates (MeshError)."""
    if len(vertices) == 0 or len(faces) == 0:
        raise MeshError(f"{name} has no faces; retargeting needs a surface mesh of the head.")
    if not np.isfinite(vertices).all():
        raise MeshError(f"{name} has vertices with NaN or infinite coordinates; fix the mesh.")


def classify_islands(target_flame: np.ndarray, faces: np.ndarray, target_landmarks: np.ndarray,
                     template: np.ndarray):
    """Role (int8 [V]) and eye side (int8 [V]) of each target vertex; see the module docstring."""
    labels = surface.islands(len(target_flame), faces)
    roles = np.full(len(target_flame), SURFACE, np.int8)
    eye_side = np.full(len(target_flame), -1, np.int8)
    eyes = [template[list(r)].mean(axis=0) for r in lm.FLAME_EYEBALLS]
    mouth = template[lm.FLAME_IBUG68[lm.IBUG_INNER_LIPS]].mean(axis=0)
    marked = np.zeros(labels.max() + 1, bool)
    marked[labels[target_landmarks]] = True
    for label in np.flatnonzero(~marked):
        members = labels == label
        points = target_flame[members]
        centre = points.mean(axis=0)
        size = np.linalg.norm(points - centre, axis=1).max()
        to_eye = [np.linalg.norm(centre - e) for e in eyes]
        if min(to_eye) < EYE_RADIUS and size < EYE_RADIUS * 1.5:
            roles[members], eye_side[members] = EYE, int(np.argmin(to_eye))
        elif np.linalg.norm(centre - mouth) < MOUTH_RADIUS and size < MOUTH_RADIUS:
            roles[members] = JAW if centre[1] < mouth[1] else SKULL
    return roles, eye_side


def flame_surface(template_faces: np.ndarray) -> np.ndarray:
    """FLAME's triangles without its two eyeballs, int [T, 3] (the surface the target is fitted to)."""
    eyeball = np.zeros(lm.FLAME_NUM_VERTICES, bool)
    for r in lm.FLAME_EYEBALLS:
        eyeball[list(r)] = True
    return template_faces[~eyeball[template_faces].any(axis=1)]


def _mm(values: np.ndarray) -> dict:
    values = values[np.isfinite(values)] * 1000.0
    if not values.size:
        return {"mean": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {"mean": float(values.mean()), "p95": float(np.percentile(values, 95)), "max": float(values.max())}


def fit_target(template: np.ndarray, template_faces: np.ndarray, target: np.ndarray,
               target_faces: np.ndarray, flame_ids, target_ids,
               progress: Optional[Callable[[float], None]] = None) -> Fit:
    """Register FLAME (``template``, metres) onto ``target`` (any units, pose and topology).

    Parameters
    ----------
    template : float [5023, 3]; template_faces : int [T, 3]   FLAME (e.g. FLAME_sample.ply)
    target : float [V, 3]; target_faces : int [S, 3]           triangulated target
    flame_ids, target_ids : int [P]                            landmark pairs, P ≥ 4
    progress : callable, optional                              share of the registration done, 0 … 1
                                                               (:func:`.nicp.register`; raising stops it)

    Returns
    -------
    Fit
        ``residuals`` holds, in mm at FLAME scale: ``landmarks_aligned`` and ``landmarks_registered``
        (mean/p95/max distance of paired points), ``surface`` (registered FLAME vertices with a
        correspondence to the target surface), the share ``matched`` of such vertices, ``scale`` and
        the ``unit`` the target appears to use.
    """
    template = np.asarray(template, np.float64)
    target = np.asarray(target, np.float64)
    check_target(target, target_faces)
    if template.shape != (lm.FLAME_NUM_VERTICES, 3):
        raise MeshError(f"the FLAME template has {len(template)} vertices; FLAME has {lm.FLAME_NUM_VERTICES}.")
    flame_ids, target_ids = lm.check_pairs(flame_ids, target_ids, len(target))
    similarity = align(template[flame_ids], target[target_ids])
    target_flame = similarity.inverse_apply(target)                        # target in FLAME's frame
    roles, eye_side = classify_islands(target_flame, target_faces, target_ids, template)
    surface_faces = target_faces[(roles[target_faces] == SURFACE).all(axis=1)]
    flame_faces = flame_surface(np.asarray(template_faces))
    used = np.unique(flame_faces)
    local = np.full(lm.FLAME_NUM_VERTICES, -1, np.int64)
    local[used] = np.arange(len(used))
    on_surface = local[flame_ids] >= 0
    result = nicp.register(template[used], local[flame_faces], target_flame, surface_faces,
                           local[flame_ids[on_surface]], target_flame[target_ids[on_surface]],
                           MAX_CORRESPONDENCE, progress=progress)
    registered = template.copy()
    registered[used] = result.vertices
    residuals = {
        "scale": similarity.scale,
        "unit": check_scale(similarity.scale),
        "landmarks_aligned": _mm(np.linalg.norm(template[flame_ids] - target_flame[target_ids], axis=1)),
        "landmarks_registered": _mm(np.linalg.norm(registered[flame_ids] - target_flame[target_ids], axis=1)),
        "surface": _mm(np.where(result.matched, result.distance, np.nan)),
        "matched": float(result.matched.mean()),
        "islands": {ROLE_NAMES[r]: int((roles == r).sum()) for r in ROLE_NAMES},
    }
    return Fit(similarity, registered, flame_faces.astype(np.int32), roles, eye_side, residuals)

