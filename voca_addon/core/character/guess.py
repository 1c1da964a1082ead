"""An automatic first guess of the 68 landmark pairs on a head mesh (to check and edit, never final).

Steps (FLAME's frame, metres; the target may use any units, position and orientation):

1. **Canonical frame and starts** — the target's largest part is moved to its centroid, scaled to unit
   RMS radius and turned onto its principal axes (signs by the third moment), so everything after sees
   the same numbers up to rounding wherever the mesh sits, whatever its units and orientation; it is
   voxel-sampled there (one vertex per cell, so dense regions do not dominate). For each of FLAME's
   whole head and FLAME's face (in front of the jaw-line ends and above the chin) the starts are the 24
   ways to map the target's principal axes onto that part's, and the same turned 45° in the plane of the
   target's two largest axes (a nearly round head's may cross over FLAME's); the scale makes the
   target's RMS radius the head's or the face's (so a face mask and a whole head both start at size).
2. **Similarity ICP** (Besl & McKay 1992 with a scale: Umeyama 1991, rotation by scipy's
   ``Rotation.align_vectors``), the worst ``1 − TRIM`` of pairs dropped each step (hair, shoulders, an
   open mouth's inside), both ways: *face ICP* takes FLAME's face points to their nearest target vertex
   off the target's boundary (the face is distinctive where a whole head is nearly round), *head ICP*
   the target samples to their nearest FLAME skin vertex (eyeballs left out). Every start runs a few
   face ICP steps; the best ``KEEP`` run head ICP to convergence, then face ICP again. A start's score
   is the trimmed mean distance of the target to FLAME plus the mean distance of FLAME's 68 landmarks
   to the target: the second term stops a small target from sliding into one corner of the head.
3. **Non-rigid refinement** — the fit's optimal-step NICP (:mod:`.nicp`), without landmarks, of FLAME's
   skin onto the target's largest island; then each FLAME landmark takes the nearest vertex of that
   island (eyeballs, teeth and hair islands are never landmarks). On the ARKit face this brings the
   guess from 5.5 to 4.1 mm mean from the hand-made pairs, 4.4 to 3.0 mm without the jaw line (see
   docs/character.md).

The guess is the same 68 vertices for the mesh rotated, scaled and moved: the canonical frame removes
the similarity, NICP's reliability rules do not depend on which of the faces sharing an edge or a vertex
the closest-point search returns (:mod:`.nicp`), and a nearest-vertex tie within ``TIE_METRES`` goes to
the lowest index.

A mesh that no start fits (mean landmark distance > ``MAX_LANDMARK_MM`` or surface > ``MAX_SURFACE_MM``
after the best start: a plane, a box, a body) is refused with a message asking to mark the landmarks.

Contract: numpy + scipy; pure functions, any thread. User errors raise :class:`~..errors.VocaError`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ..errors import MeshError
from . import landmarks as lm, nicp, surface
from .align import Similarity, check_scale
from .fit import MAX_CORRESPONDENCE, check_target, flame_surface

SAMPLE_CELLS = 30            # voxel sampling: cells along the target's RMS diameter
TRIM = 0.9                   # share of closest pairs kept by each ICP step
COARSE_STEPS = 8             # face ICP steps for every start, on at most COARSE_SAMPLES points
COARSE_SAMPLES = 400
KEEP = 4                     # starts refined: FINE_STEPS target → FLAME, then FACE_STEPS face ICP steps
FINE_STEPS = 40
FACE_STEPS = 20
STEP_TOLERANCE = 1e-7        # m²: change of the trimmed mean squared distance that ends the ICP
MAX_LANDMARK_MM = 6.0        # FLAME's landmarks farther than this from the target (mean): no head
MAX_SURFACE_MM = 6.0         # target farther than this from FLAME (trimmed mean): no head
TIE_METRES = 1e-9            # nearest-vertex distances this close (FLAME frame) are a tie: lowest index
TIE_CANDIDATES = 8


@dataclass(frozen=True)
class LandmarkGuess:
    """Guessed landmark pairs and how well the guess fits.

    Attributes
    ----------
    flame_ids : int64 [68]       FLAME's iBUG vertices (:data:`.landmarks.FLAME_IBUG68`)
    target_ids : int64 [68]      the guessed target vertex for each
    similarity : Similarity      FLAME frame → target frame found by the alignment
    residuals : dict             mm at FLAME scale: ``surface`` (trimmed mean target → FLAME after the
                                 similarity), ``landmarks`` (mean FLAME landmark → target), ``scale``,
                                 ``unit``, ``starts`` (alignments tried)
    """

    flame_ids: np.ndarray
    target_ids: np.ndarray
    similarity: Similarity
    residuals: dict = field(default_factory=dict)


def _voxel_sample(points: np.ndarray, cell: float) -> np.ndarray:
    """Indices of one point per cubic cell of side ``cell`` (the first in index order); the cells' walls
    lie at (k + ½)·cell, so the same cells for points flipped or permuted along the axes."""
    keys = np.floor(points / cell + 0.5).astype(np.int64)
    return np.sort(np.unique(keys, axis=0, return_index=True)[1])


def _canonical_frame(points: np.ndarray):
    """The frame the guess runs in: centroid, RMS radius and principal axes (columns, det +1) of the
    target's largest part, each axis's sign set by the third moment along it (a face's depth and height
    are skewed; the axis across the face, mirror-symmetric, takes its sign from det +1).

    Returns (centre float [3], radius float, axes float [3, 3]): ``(x − centre) @ axes / radius`` is the
    same up to rounding for the mesh rotated, scaled and moved."""
    centre, radius, axes = _rms_frame(points)
    if not radius > 0:
        raise MeshError("the target's largest part has no extent; landmarks cannot be guessed on it.")
    third = (((points - centre) @ axes / radius) ** 3).mean(axis=0)
    signs = np.where(third < 0.0, -1.0, 1.0)
    weakest = int(np.argmin(np.abs(third)))
    signs[weakest] = 1.0
    axes = axes * signs
    axes[:, weakest] *= np.linalg.det(axes)
    return centre, radius, axes


def _nearest(tree: cKDTree, points: np.ndarray, tolerance: float) -> np.ndarray:
    """Index of the tree point nearest each point; among points within ``tolerance`` of the nearest
    distance the lowest index (coincident vertices, rounding-level ties: the same choice every time)."""
    dist, ids = tree.query(points, k=min(TIE_CANDIDATES, tree.n))
    dist, ids = dist.reshape(len(points), -1), ids.reshape(len(points), -1)
    tied = dist <= dist[:, :1] + tolerance
    return np.where(tied, ids, tree.n).min(axis=1)


def _rms_frame(points: np.ndarray):
    """Centroid, RMS radius and principal axes (columns, det +1) of a point set."""
    centre = points.mean(axis=0)
    centred = points - centre
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt.T * np.array([1.0, 1.0, np.linalg.det(vt)])
    return centre, float(np.sqrt((centred ** 2).sum(axis=1).mean())), axes


def _cube_rotations() -> list:
    """The 24 rotations that map the coordinate axes onto signed coordinate axes."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                out.append(m)
    return out


def _similarity_step(source: np.ndarray, target: np.ndarray):
    """Least-squares ``target ≈ s R source + t`` (Umeyama's scale; rotation by scipy)."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    xs, xt = source - mu_s, target - mu_t
    rotation = Rotation.align_vectors(xt, xs)[0].as_matrix()
    scale = float((xt * (xs @ rotation.T)).sum() / max((xs ** 2).sum(), 1e-300))
    return scale, rotation, mu_t - scale * rotation @ mu_s


class _Start:
    """One alignment of the target samples onto FLAME (``flame ≈ s R target + t``), refined by ICP."""

    def __init__(self, scale, rotation, translation):
        self.s, self.r, self.t = scale, rotation, translation
        self.error = np.inf

    def apply(self, points):
        return self.s * points @ self.r.T + self.t

    def icp(self, samples, closest, steps):
        """``steps`` trimmed similarity ICP steps; ``closest(points)`` → (distances, FLAME points)."""
        for _ in range(steps):
            dist, nearest = closest(self.apply(samples))
            keep = dist <= np.quantile(dist, TRIM)
            s, r, t = _similarity_step(samples[keep], nearest[keep])
            if not (np.isfinite(s) and s > 0):
                break
            self.s, self.r, self.t = s, r, t
            error = float((dist[keep] ** 2).mean())
            if abs(self.error - error) < STEP_TOLERANCE:
                self.error = error
                break
            self.error = error
        return self

    def face_icp(self, face, vertices, tree, boundary, steps):
        """``steps`` trimmed similarity ICP steps the other way: FLAME's face points → nearest target
        vertex off the target's boundary (the face, not the skull or neck, decides the alignment)."""
        for _ in range(steps):
            dist, hit = tree.query(((face - self.t) @ self.r) / self.s)
            inner = ~boundary[hit]
            if inner.sum() < 3:
                break
            inner &= dist <= np.quantile(dist[inner], TRIM)
            s, r, t = _similarity_step(vertices[hit[inner]], face[inner])
            if not (np.isfinite(s) and s > 0):
                break
            self.s, self.r, self.t = s, r, t
        return self

    def landmark_distance(self, target_tree, marks) -> float:
        """Mean distance of FLAME's landmarks to the nearest target vertex, FLAME metres."""
        return float(target_tree.query(((marks - self.t) @ self.r) / self.s)[0].mean() * self.s)


def _flame_parts(template: np.ndarray, template_faces: np.ndarray):
    """FLAME's skin (vertex ids, FLAME id → skin id or −1, skin faces; eyeballs left out) and its face
    part (vertex ids)."""
    faces = flame_surface(np.asarray(template_faces))
    used = np.unique(faces)
    local = np.full(len(template), -1, np.int64)
    local[used] = np.arange(len(used))
    marks = template[lm.FLAME_IBUG68]
    front = template[used, 2] >= min(marks[0, 2], marks[16, 2])          # before the jaw-line ends
    above = template[used, 1] >= marks[8, 1] - 0.01                     # above the chin
    return used, local, local[faces], used[front & above]


PCA_ROTATIONS = _cube_rotations()
# … and each turned 45° in the plane of the two largest principal axes: on a nearly round head these two
# are close in size and the target's and FLAME's may cross over (two of the 12 rotated VOCASET heads
# ended 3.1 / 10.2 mm off with the 24 alone)
START_ROTATIONS = PCA_ROTATIONS + [p @ Rotation.from_rotvec([0.0, 0.0, np.pi / 4]).as_matrix()
                                   for p in PCA_ROTATIONS]


def _starts(samples: np.ndarray, skin: np.ndarray, face: np.ndarray) -> list:
    """Rotation × scale × centroid starts mapping the (canonical) target samples onto FLAME (step 1)."""
    c_t, r_t, a_t = _rms_frame(samples)
    starts = []
    for part in (skin, face):
        c_f, r_f, a_f = _rms_frame(part)
        scale = r_f / max(r_t, 1e-300)
        for rotation in [a_f @ p @ a_t.T for p in START_ROTATIONS]:
            starts.append(_Start(scale, rotation, c_f - scale * rotation @ c_t))
    return starts


def _score(start: _Start, samples, skin_surface, target_surface, marks) -> tuple:
    """(surface, landmarks) in metres: trimmed mean target → FLAME skin, mean FLAME landmark → target."""
    dist = skin_surface.closest(start.apply(samples)).distance
    surface_mean = float(dist[dist <= np.quantile(dist, TRIM)].mean())
    back = ((marks - start.t) @ start.r) / start.s                       # FLAME landmarks in target frame
    landmark_mean = float(target_surface.closest(back).distance.mean() * start.s)
    return surface_mean, landmark_mean


def _boundary_vertices(count: int, faces: np.ndarray) -> np.ndarray:
    """bool [count]: vertices on an edge used by one face only."""
    edges = surface.boundary_edge_mask(faces)
    mask = np.zeros(count, bool)
    for k in range(3):
        mask[faces[edges[:, k]][:, [(k + 1) % 3, (k + 2) % 3]].ravel()] = True
    return mask


def _largest_island(target: np.ndarray, faces: np.ndarray):
    """The target's largest connected part (most faces): its faces and vertex ids."""
    labels = surface.islands(len(target), faces)
    sizes = np.bincount(labels[faces[:, 0]], minlength=labels.max() + 1)
    island_faces = faces[labels[faces[:, 0]] == np.argmax(sizes)]
    return island_faces, np.unique(island_faces)


def _align(template, skin, skin_faces, face, target, island_faces, island) -> tuple:
    """Steps 1–2: the best start after ICP and its (surface, landmarks) score in metres."""
    samples = target[island][_voxel_sample(target[island], 2.0 / SAMPLE_CELLS)]      # unit RMS radius
    skin_tree, island_tree = cKDTree(skin), cKDTree(target[island])
    marks = template[lm.FLAME_IBUG68]

    def on_vertices(points):                                             # nearest FLAME skin vertex
        dist, nearest = skin_tree.query(points)
        return dist, skin[nearest]
    coarse = samples[::-(-len(samples) // COARSE_SAMPLES)]
    coarse_face = face[::-(-len(face) // COARSE_SAMPLES)]
    boundary = _boundary_vertices(len(target), island_faces)[island]
    starts = []
    for start in _starts(samples, skin, face):                          # coarse: the face decides
        start.face_icp(coarse_face, target[island], island_tree, boundary, COARSE_STEPS)
        dist = on_vertices(start.apply(coarse))[0]
        starts.append((float(dist[dist <= np.quantile(dist, TRIM)].mean())
                       + start.landmark_distance(island_tree, marks), start))
    best = [start for _, start in sorted(starts, key=lambda pair: pair[0])[:KEEP]]
    skin_surface = surface.TriangleSurface(skin, skin_faces)
    target_surface = surface.TriangleSurface(target, island_faces)
    scored = []
    for start in best:
        start.icp(samples, on_vertices, FINE_STEPS)
        start.face_icp(face, target[island], island_tree, boundary, FACE_STEPS)
        scored.append((_score(start, samples, skin_surface, target_surface, marks), start))
    return min(scored, key=lambda pair: sum(pair[0]))[::-1] + (len(starts),)


def guess_landmarks(template: np.ndarray, template_faces: np.ndarray, target: np.ndarray,
                    target_faces: np.ndarray) -> LandmarkGuess:
    """Guess the target vertices matching FLAME's 68 iBUG landmarks (a first guess to check and edit).

    Parameters
    ----------
    template : float [5023, 3]; template_faces : int [T, 3]   FLAME (e.g. FLAME_sample.ply, metres)
    target : float [V, 3]; target_faces : int [S, 3]           the head, triangulated; any units,
                                                               position and orientation

    Returns
    -------
    LandmarkGuess
        ``flame_ids`` / ``target_ids`` can be written with :func:`.landmarks.write_pairs` and given to
        :func:`.fit.fit_target` like hand-marked pairs.

    Raises
    ------
    MeshError
        No faces, non-finite coordinates, or a mesh no alignment fits like a head (says what was found).
    InputError
        The fitted scale is no head size in metres, centimetres, millimetres or inches.
    """
    template = np.asarray(template, np.float64)
    target = np.asarray(target, np.float64)
    target_faces = np.asarray(target_faces, np.int64)
    check_target(target, target_faces)
    if template.shape != (lm.FLAME_NUM_VERTICES, 3):
        raise MeshError(f"the FLAME template has {len(template)} vertices; FLAME has {lm.FLAME_NUM_VERTICES}.")
    used, local, skin_faces, face_ids = _flame_parts(template, template_faces)
    island_faces, island = _largest_island(target, target_faces)
    centre, radius, axes = _canonical_frame(target[island])
    canonical = (target - centre) @ axes / radius
    start, (surface_m, landmark_m), tried = _align(template, template[used], skin_faces, template[face_ids],
                                                   canonical, island_faces, island)
    if landmark_m * 1e3 > MAX_LANDMARK_MM or surface_m * 1e3 > MAX_SURFACE_MM:
        raise MeshError(
            f"could not guess the landmarks: the best alignment of FLAME's head leaves the mesh "
            f"{surface_m * 1e3:.1f} mm from FLAME and FLAME's landmarks {landmark_m * 1e3:.1f} mm from the "
            f"mesh (a head fits within {MAX_SURFACE_MM:.0f} / {MAX_LANDMARK_MM:.0f} mm). Is it a head? "
            "Mark the 68 landmarks by hand (pairs file or iBUG_<k> empties).")
    rotation = axes @ start.r.T                                          # FLAME → target
    similarity = Similarity(radius / start.s, rotation, centre - (radius / start.s) * rotation @ start.t)
    unit = check_scale(similarity.scale)
    target_flame = start.apply(canonical)
    result = nicp.register(template[used], skin_faces, target_flame, island_faces, np.zeros(0, np.int64),
                           np.zeros((0, 3)), MAX_CORRESPONDENCE)                          # step 3
    on_skin = (local[lm.FLAME_IBUG68] >= 0)[:, None]
    registered = np.where(on_skin, result.vertices[local[lm.FLAME_IBUG68]], template[lm.FLAME_IBUG68])
    target_ids = island[_nearest(cKDTree(target_flame[island]), registered, TIE_METRES)]
    residuals = {"surface": surface_m * 1e3, "landmarks": landmark_m * 1e3, "scale": similarity.scale,
                 "unit": unit, "starts": tried}
    return LandmarkGuess(lm.FLAME_IBUG68.copy(), target_ids.astype(np.int64), similarity, residuals)
