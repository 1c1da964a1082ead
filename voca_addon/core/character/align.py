"""Similarity alignment of FLAME onto a target from landmark pairs (Umeyama 1991).

Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
IEEE TPAMI 13(4), 1991: for point sets x_i (FLAME) and y_i (target) the similarity
``y ≈ s R x + t`` minimising Σ‖y_i − (s R x_i + t)‖² is, with Σ_xy the cross-covariance of the
centred sets, Σ_xy = U D Vᵀ and S = diag(1, 1, det(U Vᵀ)):  R = U S Vᵀ,  s = tr(D S) / σ_x²,
t = μ_y − s R μ_x.

The target may use any unit: the scale found must be near a plain unit change of FLAME's metres
(m, cm, mm, inch) times a head-size factor within [0.4, 2.5]; anything else is refused with the scale
found. Mirrored pairs (det(U Vᵀ) < 0: the best orthogonal map is a reflection) and degenerate
(collinear or coincident) landmark sets are refused.

Contract: numpy only; pure functions. Units: FLAME metres; the target's own units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

UNIT_SCALES = {"metres": 1.0, "centimetres": 100.0, "millimetres": 1000.0, "inches": 1 / 0.0254}
HEAD_SIZE_RANGE = (0.4, 2.5)    # allowed target head size / FLAME's, after the unit change
COLLINEAR_RATIO = 1e-3          # 2nd / 1st singular value of the centred landmarks below this: a line


@dataclass(frozen=True)
class Similarity:
    """``y = s R x + t``: FLAME coordinates (metres) → target coordinates.

    Attributes
    ----------
    scale : float
    rotation : float64 [3, 3], det +1
    translation : float64 [3]
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """FLAME frame → target frame, float64 [..., 3]."""
        return self.scale * np.asarray(points, np.float64) @ self.rotation.T + self.translation

    def inverse_apply(self, points: np.ndarray) -> np.ndarray:
        """Target frame → FLAME frame, float64 [..., 3]."""
        return (np.asarray(points, np.float64) - self.translation) @ self.rotation / self.scale

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Displacements FLAME → target frame (scaled and rotated, not translated)."""
        return self.scale * np.asarray(vectors, np.float64) @ self.rotation.T


def _check_spread(points: np.ndarray, what: str) -> None:
    centred = points - points.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] <= 0 or sv[1] <= COLLINEAR_RATIO * sv[0]:
        raise InputError(f"the {what} landmarks are degenerate (all on one point or one line); mark "
                         "points spread over the face: eye corners, nose tip, mouth corners, chin.")


def umeyama(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The least-squares similarity taking ``source`` points onto ``target`` points.

    Parameters
    ----------
    source, target : float [P, 3], P ≥ 4, paired by row (FLAME metres; target units)

    Raises
    ------
    InputError
        Degenerate or mirrored landmark sets.
    """
    x = np.asarray(source, np.float64)
    y = np.asarray(target, np.float64)
    _check_spread(x, "FLAME")
    _check_spread(y, "target")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    sigma_x2 = (xc ** 2).sum() / len(x)                                  # σ_x²
    cov = yc.T @ xc / len(x)                                              # Σ_xy [3, 3]
    u, d, vt = np.linalg.svd(cov)
    if np.linalg.det(u @ vt) < 0:
        raise InputError("the landmark pairs are mirrored: the target's points are a reflection of "
                         "FLAME's (left and right swapped, or a mirrored mesh). Pair left with left.")
    rotation = u @ vt                                                     # R = U S Vᵀ, S = I
    scale = float(d.sum() / sigma_x2)                                     # s = tr(D S) / σ_x²
    translation = mu_y - scale * rotation @ mu_x                          # t = μ_y − s R μ_x
    return Similarity(scale, rotation, translation)


def check_scale(scale: float) -> str:
    """The unit the target seems to use, given the FLAME → target scale.

    Raises
    ------
    InputError
        The scale is not a head-sized unit change of metres.
    """
    for unit, factor in UNIT_SCALES.items():
        if HEAD_SIZE_RANGE[0] <= scale / factor <= HEAD_SIZE_RANGE[1]:
            return unit
    raise InputError(
        f"the landmarks put the target at {scale:.4g}× FLAME's size, which is no head-sized mesh in "
        "metres, centimetres, millimetres or inches (FLAME's head is 0.2 m wide). Check the landmark "
        "pairs (flame_vertex first) or scale the target to a real head size.")


def align(flame_points: np.ndarray, target_points: np.ndarray) -> Similarity:
    """:func:`umeyama` then :func:`check_scale`."""
    similarity = umeyama(flame_points, target_points)
    check_scale(similarity.scale)
    return similarity
