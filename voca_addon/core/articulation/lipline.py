"""FLAME's inner lip line: the vertex rows where the lips meet, the pairs across them, the lip region.

The two rows are facts of FLAME's topology (valid for every FLAME-topology template): the shortest edge
paths, weighted by edge length, on ``FLAME_sample.ply`` from the left mouth corner (iBUG 60) through the
upper inner-lip landmarks 61, 62, 63 to the right corner (64), and through the lower ones 67, 66, 65.
``tests/core/articulation/test_closures.py::test_lipline_rows_are_the_template_geometry`` derives them
again from the template's mesh. The corners are shared by both rows; the pairs across the line (each interior
upper vertex with its nearest interior lower vertex at rest and vice versa, the three iBUG pairs
61–67, 62–66, 63–65 among them) measure the lip gap corner to corner.

The lip region (what the corrective keys move) is every vertex within :data:`REGION_OUTER` of the line
on the template, with a smooth (cosine) falloff from :data:`REGION_INNER`; Euclidean distance, so no
faces are needed at run time.

Contract: numpy only; pure functions of the template; lengths in metres (FLAME's unit).
"""
from __future__ import annotations

from dataclasses import dataclass
import hashlib

import numpy as np

from ..flame.landmarks import FLAME_IBUG68, FLAME_NUM_VERTICES
from ..errors import MeshError

# Upper row, left corner (iBUG 60) → 61 → 62 → 63 → right corner (64); lower row 60 → 67 → 66 → 65 → 64.
FLAME_INNER_LIP_UPPER = np.array([2845, 2846, 2847, 2848, 2853, 2852, 2787, 2786, 3531, 1669, 1670, 1737,
                                  1738, 1733, 1732, 1731, 1730], dtype=np.int64)
FLAME_INNER_LIP_LOWER = np.array([2845, 2869, 2894, 2895, 2896, 2907, 2938, 3504, 1849, 1804, 1793, 1792,
                                  1791, 1758, 1730], dtype=np.int64)
IBUG_PAIRS = ((61, 67), (62, 66), (63, 65))   # the inner-lip gap measure (mean of these three)
REGION_INNER = 0.006    # m, vertices this close to the line move fully with a key
REGION_OUTER = 0.014    # m, vertices this far from the line never move
FLOOR = 0.001           # m, the closest the lips may come in the middle of the line (pressed lips)


@dataclass(frozen=True)
class LipLine:
    """The inner lip line of one FLAME-topology template.

    Attributes
    ----------
    pairs : int64 [P, 2]
        (upper vertex, lower vertex) across the line, ordered left corner → right corner.
    rest : float64 [P]
        Each pair's distance on the template (m).
    rest_vectors : float64 [P, 3]
        Each pair's (upper − lower) vector on the template (m).
    ibug : int64 [3]
        Rows of ``pairs`` that are the iBUG pairs 61–67, 62–66, 63–65.
    region : int64 [R]
        Vertices the keys may move (within :data:`REGION_OUTER` of the line).
    falloff : float64 [R]
        1 near the line, smoothly 0 at :data:`REGION_OUTER`.
    lower_side : float64 [R]
        1 on the lower lip, 0 on the upper lip, smooth across the corners.
    middle : float64 [R]
        1 at the middle of the mouth, smoothly 0 at the corners and beyond (across the face, x).
    floor : float64 [P]
        The closest each pair may come (m): :data:`FLOOR` in the middle of the line (rest gap at least
        the smallest iBUG pair's), toward the corners ``FLOOR · (rest / that gap)²``: there the lips
        meet closer even at rest, and VOCA's own output presses them to 0.1–0.5 mm.
    """

    pairs: np.ndarray
    rest: np.ndarray
    rest_vectors: np.ndarray
    ibug: np.ndarray
    region: np.ndarray
    falloff: np.ndarray
    lower_side: np.ndarray
    middle: np.ndarray
    floor: np.ndarray

    def gaps(self, points: np.ndarray) -> np.ndarray:
        """Pair distances (m), float64 [..., P], of vertex positions ``points`` [..., V, 3]."""
        upper, lower = points[..., self.pairs[:, 0], :], points[..., self.pairs[:, 1], :]
        return np.linalg.norm(np.asarray(upper, np.float64) - lower, axis=-1)

    def ibug_gap(self, points: np.ndarray) -> np.ndarray:
        """The issue's measure: mean of the three iBUG pair distances (m), [...]."""
        return self.gaps(points)[..., self.ibug].mean(axis=-1)


def check_flame(num_vertices: int, what: str = "the animation") -> None:
    """Raise MeshError unless ``num_vertices`` is FLAME's."""
    if num_vertices != FLAME_NUM_VERTICES:
        raise MeshError(f"lip closures need the FLAME topology ({FLAME_NUM_VERTICES} vertices); {what} has "
                        f"{num_vertices}. Correct the FLAME head, then transfer the result to the character "
                        "(retarget), or animate without closures.")


def _pairs(template: np.ndarray) -> np.ndarray:
    upper, lower = FLAME_INNER_LIP_UPPER[1:-1], FLAME_INNER_LIP_LOWER[1:-1]
    dist = np.linalg.norm(template[upper][:, None] - template[lower][None], axis=2)
    found = {(int(u), int(lower[j])) for u, j in zip(upper, dist.argmin(1))}
    found |= {(int(upper[i]), int(l)) for l, i in zip(lower, dist.argmin(0))}
    found |= {(int(FLAME_IBUG68[a]), int(FLAME_IBUG68[b])) for a, b in IBUG_PAIRS}
    # Order along the line: by the pair's position along the upper row, then the lower row.
    rank_u = {int(v): k for k, v in enumerate(FLAME_INNER_LIP_UPPER)}
    rank_l = {int(v): k for k, v in enumerate(FLAME_INNER_LIP_LOWER)}
    return np.array(sorted(found, key=lambda p: (rank_u[p[0]] / len(rank_u) + rank_l[p[1]] / len(rank_l),
                                                  rank_u[p[0]])), dtype=np.int64)


def _smooth_step(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


_CACHE: dict = {}          # template digest → LipLine (a few templates per session)
_CACHE_SIZE = 8


def _build(template: np.ndarray) -> LipLine:
    pairs = _pairs(template)
    ibug_ids = [(int(FLAME_IBUG68[a]), int(FLAME_IBUG68[b])) for a, b in IBUG_PAIRS]
    ibug = np.array([next(k for k, p in enumerate(pairs) if tuple(p) == q) for q in ibug_ids], np.int64)
    rest_vectors = template[pairs[:, 0]] - template[pairs[:, 1]]
    rest = np.linalg.norm(rest_vectors, axis=1)
    d_up = np.linalg.norm(template[:, None] - template[FLAME_INNER_LIP_UPPER][None], axis=2).min(1)
    d_lo = np.linalg.norm(template[:, None] - template[FLAME_INNER_LIP_LOWER][None], axis=2).min(1)
    distance = np.minimum(d_up, d_lo)
    region = np.flatnonzero(distance < REGION_OUTER)
    falloff = 1.0 - _smooth_step((distance[region] - REGION_INNER) / (REGION_OUTER - REGION_INNER))
    lower_side = d_up[region] / np.maximum(d_up[region] + d_lo[region], 1e-12)
    lower_side = _smooth_step((lower_side - 0.25) / 0.5)
    corners = template[[FLAME_INNER_LIP_UPPER[0], FLAME_INNER_LIP_UPPER[-1]], 0]
    half_width = 0.5 * abs(corners[1] - corners[0])
    middle = _smooth_step(1.0 - np.abs(template[region, 0] - corners.mean()) / half_width)
    floor = FLOOR * np.minimum(1.0, rest / rest[ibug].min()) ** 2
    for array in (pairs, rest, rest_vectors, ibug, region, falloff, lower_side, middle, floor):
        array.setflags(write=False)
    return LipLine(pairs, rest, rest_vectors, ibug, region, falloff, lower_side, middle, floor)


def lip_line(template: np.ndarray) -> LipLine:
    """The :class:`LipLine` of a FLAME-topology template (cached per template).

    Parameters
    ----------
    template : float [5023, 3]
        The rest face (metres).

    Raises
    ------
    MeshError
        Not FLAME's vertex count.
    """
    template = np.ascontiguousarray(template, np.float64)
    check_flame(template.shape[0] if template.ndim == 2 else -1, "the template")
    digest = hashlib.sha1(template.tobytes()).digest()
    line = _CACHE.get(digest)
    if line is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        line = _CACHE[digest] = _build(template)
    return line
