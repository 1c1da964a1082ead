"""Per-frame weights for a rig's own shape keys that reproduce a motion: bounded, smooth, fast.

With the rig's key deltas B (J keys over the region's 3R coordinates) and the motion m_f (the
transferred VOCA displacement of frame f from the rest shape), the weights C = [c_1 … c_F]ᵀ solve

    minimise ½ Σ_f ‖Bᵀ c_f − m_f‖² + ½ κ Σ_f ‖Φᵀ c_f − o_f‖² + ½ μ Σ_f Σ_{j∉free} G⁰_jj c_fj²
             + ½ λ Σ_f ‖c_f − c_{f−1}‖²
    subject to 0 ≤ c_f ≤ 1,

a box-constrained quadratic with Hessian I ⊗ G + λ L ⊗ I (G = G⁰ + μ diag(G⁰_jj, 0 for the free keys),
G⁰ = B Bᵀ + κ Φ Φᵀ, L the path Laplacian in time). It is solved by ADMM (Boyd et al., *Distributed Optimization … ADMM*, 2011, §5.2) splitting
C = Z, Z in the box: the C-step (C G + λ L C + ρ C = H + ρ(Z − U)) is diagonal in the basis DCT-II
(time: L's eigenvectors, eigenvalues σ_k = 4 sin²(πk / 2F)) × eigenvectors of G (keys), so each
iteration costs two DCTs (``scipy.fft``) and two J×J products; Z-step: clip; U-step: U += C − Z, with
over-relaxation Ĉ = α C + (1 − α) Z (Boyd §3.4.3, α = 1.8) and ρ = 0.1 mean eig(G) (measured on the
ARKit face, 60 s: 96 iterations, 296 with ρ = ½ mean eig; the objective agrees to 3·10⁻⁷). The data
enter only through G and H = B m_f + κ Φ o_f, so the vertex count does not matter after one product.

The region is where the motion moves (mouth and jaw for speech): vertices whose displacement range
over the clip reaches ``REGION_SHARE`` of the largest; keys that do not move the region are left at 0.
Region and openings (below) are chosen from the engine's exact motion (``animation.exact()``), and the
motion reproduced is the one with its lip corrections: the corrections then change the weights around
them only, not where the solve looks.

The κ term weights the face's **openings**: pairs (a, b) of region vertices that are close at rest
(within ``OPENING_RADIUS`` × the largest vertex motion) and that the motion separates the most (the
range of their distance ≥ ``OPENING_SHARE`` of the widest) — for speech, upper against lower lip
across the mouth. Their relative displacement p_a − p_b is linear in the vertex positions, so each
pair adds 3 rows to the least squares (Φ: the keys' p_a − p_b, o_f: the motion's), weighted so that
all of them together count ``OPENING_WEIGHT`` times the whole region. Without it the region's least
squares shares the opening between the jaw key and lip keys (on the ARKit face jawOpen drops the chin
back as far as down, VOCA's chin goes half as far back, and VOCA sometimes parts the lips with the
chin still: lowering the lower lip alone then fits the region better); with it, how far the mouth
opens and when the lips meet come first and the jaw key carries the opening. The pairs come from the
motion and the rest shape alone: no key names, no landmarks, any rig.

The μ term puts **the jaw on the jaw key** (ARKit rigs: a MetaHuman or any Live Link consumer moves its
jaw bone from ``jawOpen``): with a key named ``jawOpen`` (:func:`jaw_key`) every other key's weight costs
``JAW_PREFERENCE`` × its own energy G⁰_jj (scale-free: the same on any rig, in any units), the free keys'
nothing (``FREE_KEYS``: jawOpen, and mouthClose / mouthPress, the keys that close the lips). Where several
key mixes reproduce the motion about equally well — a rig whose mouthLowerDown also drops the chin, or
whose jawOpen parts the lips more or less than VOCA's jaw does — the mix with more jaw wins; the mouth
keys still take what only they fit (the lips' own parting and shape), and the lips' closing stays free.
Measured in docs/character.md on the reference ARKit face and three rigs re-sculpted from it.

The motion reproduced is the animation's corrected one when it carries corrections (lip closures on
p/b/m, :class:`~..animation.shapekeys.Corrections`): their fields and weights join VOCA's
(:func:`motion_fields`), so on an ARKit rig mouthClose / mouthPress close the lips where VOCA's do not.

Contract: numpy + scipy; pure functions, any thread. Units: the target's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.fft import dct, idct
from scipy.spatial import cKDTree

from ..animation.shapekeys import ShapeKeyAnimation
from ..errors import InputError

REGION_SHARE = 0.1       # region: vertices moving at least this share of the largest motion
KEY_SHARE = 0.01         # keys whose region norm is below this share of the largest are not solved
SMOOTHNESS = 0.02        # λ relative to the mean eigenvalue of G
OPENING_RADIUS = 0.5     # opening pairs: closer at rest than this × the largest vertex motion range
OPENING_SHARE = 0.8      # … whose distance ranges over at least this share of the widest opening
OPENING_WEIGHT = 2.0     # κ: the openings' rows together weigh this many times the region's
JAW_PREFERENCE = 0.02    # μ: every key but FREE_KEYS costs μ × its own energy (ties go to the jaw key)
FREE_KEYS = ("jawOpen", "mouthClose", "mouthPressLeft", "mouthPressRight")   # the jaw, the lips' closing
OPENING_CELL = 0.25      # candidate vertices: one per grid cell of this × the pair radius (dense meshes)
SPREAD_FRAMES = 600      # … measured on at most this many frames, evenly spaced (10 per second at 60 s)
MAX_ITERATIONS = 2000
TOLERANCE = 1e-5         # ADMM residuals relative to √(F·J)
RELAXATION = 1.8         # ADMM over-relaxation α
RHO_SHARE = 0.1          # ρ relative to the mean eigenvalue of G
CHUNK_FRAMES = 128
ERROR_CHUNK = 1024       # frames per block when the errors are measured
P95_VALUES = 20_000_000  # distances the 95th percentile is taken over at most (every k-th frame beyond)
VARIANCE_NOISE = 1e-10   # motion variance below this share of Σ position² is rounding (≈ 1 µm at 0.1 m): still
STILL_MM = 0.01          # mm: motion about the mean pose (RMS per region vertex) below this: no share is given


@dataclass(frozen=True)
class KeySolution:
    """Weights for the rig's keys and how well they reproduce the motion.

    Attributes
    ----------
    weights : float32 [F, J]   in [0, 1]
    names : tuple of str        the keys, in ``weights``' column order
    region : int64 [R]          vertices the fit was made over
    report : dict               ``mean_error``/``p95_error``/``max_error`` (per region vertex per frame,
                                target units), ``explained`` (1 − residual energy / motion variance; NaN
                                for a still clip; :func:`explained_text` says it to the user),
                                ``motion_rms`` (the motion about its mean pose, RMS per region vertex),
                                ``opening_error`` (mean over opening pairs and frames, target units),
                                ``opening_weight`` (κ per pair row), ``iterations``
    openings : int64 [P, 2]     the vertex pairs weighted as openings (see the module docstring)
    """

    weights: np.ndarray
    names: tuple
    region: np.ndarray
    report: dict = field(default_factory=dict)
    openings: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))


def _frames(animation: ShapeKeyAnimation):
    """The animation's frames in chunks of ``CHUNK_FRAMES`` (bounded memory), float32 [n, V, 3]."""
    for start in range(0, animation.num_frames, CHUNK_FRAMES):
        yield animation.vertices(range(start, min(start + CHUNK_FRAMES, animation.num_frames)))


def motion_span(animation: ShapeKeyAnimation) -> np.ndarray:
    """Each vertex's range of positions over the clip and the rest shape (box diagonal), float64 [V]."""
    low = high = animation.template.astype(np.float64)
    for frames in _frames(animation):
        low, high = np.minimum(low, frames.min(axis=0)), np.maximum(high, frames.max(axis=0))
    return np.linalg.norm(high - low, axis=1)


def motion_region(animation: ShapeKeyAnimation, span=None) -> np.ndarray:
    """Vertices where the animation moves (range ≥ ``REGION_SHARE`` of the largest), int64 [R].

    The range includes the rest shape, so a constant offset (VOCA's bias) counts as motion too.
    """
    span = motion_span(animation) if span is None else span
    if not span.max() > 0:
        raise InputError("the animation does not move; there is nothing to drive the keys with.")
    return np.flatnonzero(span >= REGION_SHARE * span.max())


def opening_pairs(animation: ShapeKeyAnimation, region: np.ndarray, span=None) -> np.ndarray:
    """The motion's openings: vertex pairs close at rest that it separates the most, int64 [P, 2].

    Candidates are pairs of region vertices within ``OPENING_RADIUS`` × the largest vertex motion of
    each other at rest (on a dense mesh, the most moving vertex per grid cell of ``OPENING_CELL`` × that
    radius, so the vertex order does not matter);
    kept are those whose distance over the clip and the rest shape ranges over ≥ ``OPENING_SHARE`` of
    the widest such range. Empty when nothing opens (e.g. a rigid motion).
    """
    span = motion_span(animation) if span is None else span
    rest = animation.template.astype(np.float64)
    radius = OPENING_RADIUS * float(span.max())
    if not radius > 0 or len(region) < 2:
        return np.zeros((0, 2), np.int64)
    cells = np.floor(rest[region] / (OPENING_CELL * radius)).astype(np.int64)
    rank = np.lexsort((*rest[region].T[::-1], -span[region]))             # most moving first, then position
    candidates = np.sort(region[rank[np.unique(cells[rank], axis=0, return_index=True)[1]]])
    pairs = cKDTree(rest[candidates]).query_pairs(radius, output_type="ndarray")
    if not len(pairs):
        return np.zeros((0, 2), np.int64)
    a, b = candidates[pairs[:, 0]], candidates[pairs[:, 1]]
    low = high = np.linalg.norm(rest[a] - rest[b], axis=1)
    step = -(-animation.num_frames // SPREAD_FRAMES)                   # ⌈F / SPREAD_FRAMES⌉
    for start in range(0, animation.num_frames, CHUNK_FRAMES * step):
        frames = animation.vertices(range(start, min(start + CHUNK_FRAMES * step, animation.num_frames), step))
        dist = np.linalg.norm(frames[:, a] - frames[:, b], axis=2)
        low, high = np.minimum(low, dist.min(axis=0)), np.maximum(high, dist.max(axis=0))
    spread = high - low
    if not spread.max() > 0:
        return np.zeros((0, 2), np.int64)
    keep = spread >= OPENING_SHARE * spread.max()
    return np.stack([a[keep], b[keep]], axis=1)


def admm_box_qp(g: np.ndarray, h: np.ndarray, smoothness: float):
    """argmin over C in [0,1]^{F×J} of ½ tr(C G Cᵀ) − ⟨H, C⟩ + ½ λ tr(Cᵀ L C); → (C, iterations)."""
    lam_g, q = np.linalg.eigh(g)                                          # G = Q Λ Qᵀ
    f = h.shape[0]
    sigma = 4.0 * np.sin(np.pi * np.arange(f) / (2.0 * f)) ** 2            # eig(L), DCT-II basis
    scale = max(float(lam_g.mean()), 1e-30)
    lam, rho = smoothness * scale, RHO_SHARE * scale                      # λ, ρ
    denom = lam_g[None, :] + lam * sigma[:, None] + rho
    z = np.zeros_like(h)
    u = np.zeros_like(h)
    tol = TOLERANCE * np.sqrt(h.size)
    for it in range(1, MAX_ITERATIONS + 1):
        rhs = dct(h + rho * (z - u), type=2, norm="ortho", axis=0) @ q
        c = idct((rhs / denom) @ q.T, type=2, norm="ortho", axis=0)       # C-step
        z_old = z
        c_hat = RELAXATION * c + (1.0 - RELAXATION) * z_old               # over-relaxation
        z = np.clip(c_hat + u, 0.0, 1.0)                                  # Z-step: box
        u += c_hat - z                                                    # U-step
        if np.linalg.norm(c - z) < tol and np.linalg.norm(z - z_old) < tol:
            break
    return z, it


def _rows(animation: ShapeKeyAnimation, keys: np.ndarray, vertices: np.ndarray, pairs: np.ndarray):
    """Least-squares rows of the keys and the motion: the region's coordinates, then the openings'.

    Returns (B [J, 3n], basis [K, 3n], bias [3n]) with n = len(vertices) + len(pairs); the motion of
    frame f on these rows is ``bias + weights[f] @ basis`` (basis and weights with the animation's
    corrections appended: :func:`motion_fields`).
    """
    def rows(field_):                                                     # [..., V, 3] → [..., 3n]
        parts = [field_[..., vertices, :], field_[..., pairs[:, 0], :] - field_[..., pairs[:, 1], :]]
        width = 3 * (len(vertices) + len(pairs))                         # explicit: a still clip has K = 0
        return np.concatenate(parts, axis=-2).reshape(*field_.shape[:-2], width)
    basis = motion_fields(animation)[0]
    return (rows(keys), rows(basis.astype(np.float64)), rows(animation.bias.astype(np.float64)))


def motion_fields(animation: ShapeKeyAnimation):
    """The animation's fields and weights with its corrections appended: (basis [K, V, 3], weights [F, K]).

    The solve's target motion is the corrected one (``animation.vertices()``): closed lips on p/b/m are
    reproduced by the rig's own mouth keys.
    """
    c = animation.corrections
    if c is None or not c.basis.shape[0]:
        return animation.basis, animation.weights
    return (np.concatenate([animation.basis, c.basis.astype(animation.basis.dtype)]),
            np.concatenate([animation.weights, c.weights.astype(animation.weights.dtype)], axis=1))


def _canonical(name):
    from .arkit import canonical_name
    return canonical_name(str(name))


def jaw_key(names):
    """The index in ``names`` of the ARKit ``jawOpen`` key (any spelling :func:`.arkit.canonical_name`
    reads: ``JawOpen``, ``bs.jaw_open``…), or None."""
    from .arkit import canonical_name
    return next((i for i, n in enumerate(names) if canonical_name(str(n)) == "jawOpen"), None)


def solve_keys(animation: ShapeKeyAnimation, keys: np.ndarray, names, region=None,
               smoothness: float = SMOOTHNESS, opening_weight: float = OPENING_WEIGHT,
               jaw_preference: float = JAW_PREFERENCE) -> KeySolution:
    """Weights of the rig's ``keys`` that best reproduce ``animation`` over ``region``.

    Parameters
    ----------
    animation : ShapeKeyAnimation   on the rig's mesh (e.g. from :func:`.transfer.transfer`); its
                                    corrections, if any, are part of the motion reproduced (the
                                    region and openings are chosen from its exact motion: the
                                    corrections change the weights around them only)
    keys : float [J, V, 3]          the rig's key deltas (key − rest)
    names : sequence of J str
    region : int [R], optional      vertices to match (default :func:`motion_region`)
    smoothness : float              λ relative to the mean eigenvalue of G
    opening_weight : float          the openings' total weight relative to the region's (0: none)
    jaw_preference : float          μ: with an ARKit ``jawOpen`` among the keys, every key but
                                    ``FREE_KEYS`` costs μ × its own energy G_jj (0: none; module docstring)
    """
    keys = np.asarray(keys, np.float64)
    if keys.ndim != 3 or keys.shape[1:] != animation.template.shape or len(names) != len(keys):
        raise InputError(f"{len(names)} key names and keys {keys.shape} do not match the animation's "
                         f"mesh {animation.template.shape}.")
    # Where to look is chosen from the engine's exact motion, what to reproduce is the motion with its
    # corrections: the lip closures then change the keys around the p/b/m only (the region and the openings
    # chosen from the corrected motion moved every frame's weights a little: up to 0.02 on the official clip).
    exact = animation.exact()
    span = motion_span(exact)
    region = motion_region(exact, span) if region is None else np.asarray(region, np.int64)
    pairs = opening_pairs(exact, region, span) if opening_weight > 0 else np.zeros((0, 2), np.int64)
    kappa = opening_weight * len(region) / max(len(pairs), 1)             # κ per opening row
    b, basis, bias = _rows(animation, keys, region, pairs)                # B [J, 3n] …
    row_weight = np.r_[np.ones(3 * len(region)), np.full(3 * len(pairs), kappa)]
    norms = np.linalg.norm(b[:, :3 * len(region)], axis=1)
    active = np.flatnonzero(norms >= KEY_SHARE * max(norms.max(), 1e-30))
    if not active.size:
        raise InputError("none of the keys moves the mouth or jaw; pick keys that shape the mouth.")
    ba, bw = b[active], b[active] * row_weight
    w = motion_fields(animation)[1].astype(np.float64)
    h = (bw @ bias)[None, :] + w @ (bw @ basis.T).T                       # H = B W m_f  [F, J]
    g = bw @ ba.T                                                         # G = B W Bᵀ
    jaw = jaw_key([names[a] for a in active])
    if jaw is not None and jaw_preference > 0:                            # + μ Σ_{j not free} G_jj c_j²
        free = [i for i, a in enumerate(active) if _canonical(names[a]) in FREE_KEYS]
        prior = jaw_preference * np.diag(g).copy()
        prior[free] = 0.0
        g = g + np.diag(prior)
    c, iterations = admm_box_qp(g, h, smoothness)
    weights = np.zeros((len(w), len(keys)), np.float32)
    weights[:, active] = c
    report = _errors(c, ba, w, basis, bias, len(region))
    report.update(iterations=iterations, opening_weight=float(kappa if len(pairs) else 0.0),
                  jaw_key=None if jaw is None else str(names[active[jaw]]))
    return KeySolution(weights, tuple(names), region, report, pairs)


def explained_text(report: dict, to_mm: float) -> str:
    """The share of the motion explained, for the user: ``'83% of the motion explained'``, or why no share is
    given when it means nothing: a clip that (almost) does not move about its mean pose (motion RMS below
    ``STILL_MM``), or a share below 0 (the keys' error exceeds that motion: a short clip, a pose held).

    ``report``: :attr:`KeySolution.report`; ``to_mm``: millimetres per target unit.
    """
    share, motion = report.get("explained", float("nan")), report.get("motion_rms", 0.0) * to_mm
    if not motion >= STILL_MM or not np.isfinite(share):
        return (f"no share of the motion explained: the clip barely moves about its mean pose ({motion:.3f} mm "
                "RMS), so there is no motion to measure it on")
    if share < 0:
        return (f"no share of the motion explained: the keys' error ({report['mean_error'] * to_mm:.2f} mm mean) "
                f"is larger than the clip's motion about its mean pose ({motion:.2f} mm RMS), as in a short "
                "clip or a held pose; judge the fit by the error")
    return f"{share:.0%} of the motion explained"


def _errors(c, b, w, basis, bias, r) -> dict:
    """Reproduction errors (target units) over the region's rows and the openings' rows, and the share
    of the region's motion explained; frame chunks, so an hour-long clip needs no [F, 3n] array (the 95th
    percentile is taken over at most ``P95_VALUES`` distances, every k-th frame, beyond that)."""
    n, frames = 3 * r, len(w)
    stride = max(1, -(-frames * r // P95_VALUES))
    total = dist_sum = dist_max = opening_sum = opening_count = 0.0
    motion_sum, motion_sq = np.zeros(n), np.zeros(n)
    kept = []
    for lo in range(0, frames, ERROR_CHUNK):
        hi = min(lo + ERROR_CHUNK, frames)
        motion = w[lo:hi] @ basis + bias[None]                                # [f, 3n]
        residual = c[lo:hi] @ b - motion
        region = residual[:, :n]
        dist = np.linalg.norm(region.reshape(hi - lo, r, 3), axis=2)
        total += float((region ** 2).sum())
        dist_sum, dist_max = dist_sum + float(dist.sum()), max(dist_max, float(dist.max(initial=0.0)))
        kept.append(dist[(np.arange(lo, hi) % stride) == 0].astype(np.float32))
        motion_sum += motion[:, :n].sum(axis=0)
        motion_sq += (motion[:, :n] ** 2).sum(axis=0)
        opening = np.linalg.norm(residual[:, n:].reshape(hi - lo, (residual.shape[1] - n) // 3, 3), axis=2)
        opening_sum, opening_count = opening_sum + float(opening.sum()), opening_count + opening.size
    variance = float((motion_sq - motion_sum ** 2 / frames).sum())
    if variance <= VARIANCE_NOISE * float(motion_sq.sum()):              # cancellation noise of a still clip
        variance = 0.0
    return {"mean_error": dist_sum / (frames * r), "p95_error": float(np.percentile(np.concatenate(kept), 95)),
            "max_error": dist_max, "explained": float(1.0 - total / variance) if variance > 0 else float("nan"),
            "motion_rms": float(np.sqrt(variance / (frames * r))),
            "opening_error": opening_sum / opening_count if opening_count else 0.0}
