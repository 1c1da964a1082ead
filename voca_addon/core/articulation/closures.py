"""Corrective lip keys: p/b/m closures (``voca_lips_close``) and f/v tucks (``voca_lips_tuck``).

Each key is one displacement field on FLAME's lips made of the animation's own motion (VOCA's basis):
the closure field is the most probable VOCA motion — Gaussian prior with the covariance of the clip's
weights — that closes the line's pairs (:mod:`.lipline`) by their excess over the rest gap, averaged
over the plateaus of the track's p/b/m (emotion offset included), while each pair's anchor point (mostly
the upper lip: VOCA's own split) stays — with an emotion on, the emotion's own lip shape is one more
direction of that motion space (prior: :data:`EMOTION_SHARE` of an average VOCA component's lip motion); scaled so weight 1 closes :data:`KEY_UNIT` of mean opening and
faded out over the lip region (:func:`fields_for`; without p/b/m, a regression of the motion on its mean
opening near closure, :func:`fields_from_motion`). The tuck key is the closure field's lower-lip middle
plus an equal backward (−z) slide: the lower lip rises to the upper lip and goes behind it, under the
upper teeth. docs/articulation.md argues the choice with measurements.

Weights per frame: around each phone a coarticulation envelope (onset ramp :data:`ONSET_RAMP` before the
plateau, release ramp :data:`RELEASE_RAMP` after it; the plateau is the phone shifted to where the
motion's own opening is smallest, within :data:`SHIFT_RANGE`) times the frame's *full* weight, solved in
closed form per frame: the smallest weight that brings every pair of the line to its rest gap, capped so
that no pair comes closer than its floor (``LipLine.floor``: 1.0 mm in the middle of the line, less toward
the corners with the square of the rest gap); a pair the motion already holds under its floor keeps
:data:`PRESS_KEEP` of its gap. Keys are exactly zero farther than ``ONSET_RAMP − SHIFT_RANGE[0]`` (140 ms)
before and ``RELEASE_RAMP + SHIFT_RANGE[1]`` (70 ms) after every phone.

Contract: numpy only; pure functions; units metres and seconds; frame ``i`` is at ``i / fps``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..animation.shapekeys import Corrections, ShapeKeyAnimation
from ..errors import InputError
from .lipline import LipLine, check_flame, lip_line

CORRECTION_NAMES = ("voca_lips_close", "voca_lips_tuck")
CLOSURE_PHONES = ("P", "B", "M")
TUCK_PHONES = ("F", "V")
KEY_UNIT = 0.01            # m of mean inner-lip opening that weight 1 removes
ONSET_RAMP = 0.060         # s, closure onset before the plateau
RELEASE_RAMP = 0.050       # s, release after the plateau
SHIFT_RANGE = (-0.080, 0.020)   # s, how far a plateau may move to meet the motion's smallest opening
MIN_PLATEAU = 0.020        # s, a plateau is at least this long (a frame at 60 fps falls inside)
TRACK_END_TOLERANCE = 0.05  # s, a phone may end this far past the animation's end
MIN_OPENING_SPREAD = 2e-4  # m, below this std of the opening the motion teaches no field
NEAR_CLOSURE = 0.0005     # m, frames weigh exp(−opening / NEAR_CLOSURE) in the field's regression
FIT_RIDGE = 3e-3           # ridge of the closure field's fit, relative to the mean prior variance
UPPER_SHARE = 0.1          # of a closure the upper lip makes (VOCA opens 0.03–0.10 mm upper, 0.75–0.78 lower per mm)
ANCHOR_WEIGHT = 0.2        # weight of "the pair's anchor point stays" against "the pair closes" in the fit
REFITS = 3                 # refits of the closure field toward the p/b/m that stay open
KNOB_REFITS = 0            # the same under the knobs (apply_controls stays < 0.1 s for 60 s)
REFIT_BELOW = 0.2e-3       # m, no refit once every p/b/m's worst pair is this close to rest
REFIT_SCALE = 0.1e-3       # m of residual that doubles a p/b/m's weight in the refit
TUCK_BACK = 1.0            # the tuck slides the lower lip back (−z) this much per unit of its lift
TARGET_SHARE = 0.25        # a key closes the pairs it moves at least this share of its most moved pair
EMOTION_SHARE = 1.0         # prior lip motion of an emotion's own shape in the fit, × an average VOCA component's
PRESS_KEEP = 0.5           # a pair the motion already holds below its floor keeps this share of its gap


@dataclass(frozen=True)
class Fields:
    """The two keys' fields on the lip region: float64 [2, R, 3] (close, tuck), and the line."""

    region_fields: np.ndarray
    line: LipLine

    def basis(self, num_vertices: int) -> np.ndarray:
        """float32 [2, V, 3], zero outside the lip region."""
        full = np.zeros((2, num_vertices, 3), np.float32)
        full[:, self.line.region] = self.region_fields
        return full

    def at_pairs(self) -> np.ndarray:
        """(upper − lower) displacement per pair at weight 1, float64 [2, P, 3]."""
        where = {int(v): k for k, v in enumerate(self.line.region)}
        up = [where[int(v)] for v in self.line.pairs[:, 0]]
        lo = [where[int(v)] for v in self.line.pairs[:, 1]]
        return self.region_fields[:, up] - self.region_fields[:, lo]


def pair_points(anim: ShapeKeyAnimation, line: LipLine, offset: Optional[np.ndarray] = None) -> np.ndarray:
    """(upper − lower) vectors of the line's pairs in every frame, float64 [F, P, 3] (no corrections)."""
    ids = line.pairs.T.reshape(-1)                                              # [2P]
    d = anim.basis.shape[0]
    static = (anim.template[ids] + anim.bias[ids]).astype(np.float64)           # [2P, 3]
    if offset is not None:
        static = static + offset[ids]
    moving = anim.weights.astype(np.float64) @ anim.basis[:, ids].reshape(d, -1).astype(np.float64)
    points = moving.reshape(anim.num_frames, -1, 3) + static[None]               # [F, 2P, 3]
    p = len(line.pairs)
    return points[:, :p] - points[:, p:]


def _with_tuck(close: np.ndarray, line: LipLine) -> Fields:
    """Fields from a close field [R, 3]: the tuck is its lower-lip middle, lifted and slid back (−z)."""
    lower = close * (line.lower_side * line.middle)[:, None]                    # the corners stay
    lift = np.linalg.norm(lower, axis=1, keepdims=True)
    back = TUCK_BACK * lift * np.array([0.0, 0.0, -1.0])                         # FLAME faces +z
    return Fields(np.stack([close, lower + back]), line)


def fields_from_motion(anim: ShapeKeyAnimation) -> Optional[Fields]:
    """Fields taught by ``anim``'s own motion near closure (None if it barely opens the mouth).

    Weighted least squares of VOCA's weights on the mean opening ``o_f`` (metres), frame weights
    ``exp(−max(o_f, 0) / NEAR_CLOSURE)``: how VOCA's lips move near closure. Used when the track has no
    p/b/m to fit (:func:`fields_for`).
    """
    line = lip_line(anim.template)
    opening = (np.linalg.norm(pair_points(anim, line), axis=2) - line.rest).mean(axis=1)   # [F] m
    lam = np.exp(-np.maximum(opening, 0.0) / NEAR_CLOSURE)
    lam /= lam.sum()
    spread = opening - lam @ opening
    if anim.num_frames < 3 or opening.std() < MIN_OPENING_SPREAD or np.sqrt(lam @ spread ** 2) < 1e-5:
        return None
    w = anim.weights.astype(np.float64)
    beta = (w - lam @ w).T @ (lam * spread) / (lam @ spread ** 2)                  # [D] per m of opening
    d = anim.basis.shape[0]
    slope = (beta @ anim.basis[:, line.region].reshape(d, -1).astype(np.float64)).reshape(-1, 3)
    return _with_tuck(-slope * KEY_UNIT * line.falloff[:, None], line)


def fields_for(anim: ShapeKeyAnimation, track, offset: Optional[np.ndarray] = None,
               vectors: Optional[np.ndarray] = None, emphasis: Optional[np.ndarray] = None) -> Optional[Fields]:
    """The close and tuck fields for ``anim`` (VOCA's exact motion) and the p/b/m of ``track``.

    The closure field is the most probable VOCA motion (Gaussian prior: the covariance ``Σ`` of the
    animation's weights) that moves the pairs of the line by ``δ``, the excess vectors (each pair's
    part beyond its rest length) averaged over the plateau frames of every p/b/m, scaled to
    :data:`KEY_UNIT` of mean closing: ``c = Σ Jᵀ (J Σ Jᵀ + λ I)⁻¹ δ`` with ``J`` the pairs'
    (upper − lower) displacement per weight and ``λ = FIT_RIDGE · tr(J Σ Jᵀ) / 3P``; the field is
    ``c · basis`` on the lip region, faded out. With an ``offset`` (an emotion's delta, [V, 3]) its lip
    region is one more basis row, prior variance such that its lip motion equals :data:`EMOTION_SHARE`
    times an average VOCA component's: an emotion opens the line in a shape VOCA's motion prior cannot
    close cheaply (frustrated: the right side 1.8–2.5 mm over rest, the middle at rest), so the key may
    undo part of the emotion's lip shape while the lips meet. Without p/b/m, :func:`fields_from_motion`.
    """
    line = lip_line(anim.template)
    r = pair_points(anim, line, offset) if vectors is None else vectors          # [F, P, 3]
    gaps = np.linalg.norm(r, axis=2)
    opening = (gaps - line.rest).mean(axis=1)
    times = np.arange(anim.num_frames) / float(anim.fps)
    excess = np.zeros(r.shape[1:])
    closes = [p for p in track.phones if p.phone in CLOSURE_PHONES]
    for k, (a, b) in enumerate(zip(*plateaus(times, closes, opening))):
        on = slice(np.searchsorted(times, a - 1e-6), np.searchsorted(times, b + 1e-6))    # on the plateau
        if on.stop > on.start:
            shrink = np.maximum(1.0 - line.rest / np.maximum(gaps[on], 1e-9), 0.0)   # [K, P]
            excess += (1.0 if emphasis is None else emphasis[k]) * (r[on] * shrink[..., None]).mean(axis=0)
    size = np.linalg.norm(excess, axis=1).mean()
    if size < 1e-6 or anim.num_frames < 3:
        return fields_from_motion(anim)
    # only the rows the fit reads (the lip region and the pairs), in float64: not the whole basis (6 MB per call)
    region = anim.basis[:, line.region].astype(np.float64)                     # [D, R, 3]
    upper = anim.basis[:, line.pairs[:, 0]].astype(np.float64)                  # [D, P, 3]
    lower = anim.basis[:, line.pairs[:, 1]].astype(np.float64)
    sigma = np.atleast_2d(np.cov(anim.weights.astype(np.float64).T))
    lips = None if offset is None else offset[line.region]
    if lips is not None and np.abs(lips).max() > 0:             # the emotion's own lip shape joins the fit
        flat = region.reshape(len(region), -1)
        var = EMOTION_SHARE * np.einsum("ij,ik,jk->", sigma, flat, flat) / len(sigma) / (lips ** 2).sum()
        row = np.zeros((anim.num_vertices, 3))                  # the emotion's row: its lip region, else zero
        row[line.region] = lips
        region, upper, lower = (np.concatenate([m, row[ids][None]]) for m, ids in
                                ((region, line.region), (upper, line.pairs[:, 0]), (lower, line.pairs[:, 1])))
        sigma = np.block([[sigma, np.zeros((len(sigma), 1))], [np.zeros((1, len(sigma))), np.full((1, 1), var)]])
    d = region.shape[0]
    anchor = (1.0 - UPPER_SHARE) * upper + UPPER_SHARE * lower                   # stays put
    jac = np.concatenate([(upper - lower).reshape(d, -1), ANCHOR_WEIGHT * anchor.reshape(d, -1)], axis=1)
    delta = np.concatenate([(-excess / size * KEY_UNIT).reshape(-1), np.zeros(excess.size)])
    gram = jac.T @ sigma @ jac
    if not np.trace(gram) > 0:
        return fields_from_motion(anim)
    ridge = FIT_RIDGE * np.trace(gram) / len(gram)
    code = sigma @ jac @ np.linalg.solve(gram + ridge * np.eye(len(gram)), delta)     # [D]
    close = (code @ region.reshape(d, -1)).reshape(-1, 3) * line.falloff[:, None]
    return _with_tuck(close, line)


def plateau(times: np.ndarray, phone, opening: np.ndarray):
    """(a, b) seconds: ``phone`` moved by ``clamp(t_min − mid, SHIFT_RANGE)``, ``t_min`` the frame of the
    smallest ``opening`` [F] in [start + SHIFT_RANGE[0], end + SHIFT_RANGE[1]]; at least MIN_PLATEAU long."""
    start, end = float(phone.start), float(phone.end)
    i0, i1 = np.searchsorted(times, start + SHIFT_RANGE[0], "left"), np.searchsorted(times, end + SHIFT_RANGE[1], "right")
    shift = 0.0
    if i1 > i0:
        t_min = times[i0 + int(np.argmin(opening[i0:i1]))]
        shift = min(max(t_min - 0.5 * (start + end), SHIFT_RANGE[0]), SHIFT_RANGE[1])
    a, b = start + shift, end + shift
    if b - a < MIN_PLATEAU:
        a, b = 0.5 * (a + b) - 0.5 * MIN_PLATEAU, 0.5 * (a + b) + 0.5 * MIN_PLATEAU
    return a, b


def plateaus(times: np.ndarray, phones: Sequence, opening: np.ndarray) -> tuple:
    """:func:`plateau` of every phone at once: (a, b) float64 [N] seconds (the same arithmetic, vectorised)."""
    start = np.array([float(p.start) for p in phones], np.float64)
    end = np.array([float(p.end) for p in phones], np.float64)
    if not len(start):
        return start, end
    i0 = np.searchsorted(times, start + SHIFT_RANGE[0], "left")
    i1 = np.searchsorted(times, end + SHIFT_RANGE[1], "right")
    span = max(int((i1 - i0).max()), 1)
    idx = i0[:, None] + np.arange(span)[None]                                   # [N, span] frames of each window
    inside = idx < i1[:, None]
    values = np.where(inside, opening[np.minimum(idx, len(opening) - 1)], np.inf)
    t_min = times[np.minimum(i0 + np.argmin(values, axis=1), len(times) - 1)]  # first smallest, as argmin
    shift = np.where(i1 > i0, np.minimum(np.maximum(t_min - 0.5 * (start + end), SHIFT_RANGE[0]), SHIFT_RANGE[1]),
                     0.0)
    a, b = start + shift, end + shift
    short = b - a < MIN_PLATEAU
    mid = 0.5 * (a + b)
    return np.where(short, mid - 0.5 * MIN_PLATEAU, a), np.where(short, mid + 0.5 * MIN_PLATEAU, b)


def envelope(times: np.ndarray, phones: Sequence, opening: np.ndarray) -> np.ndarray:
    """Coarticulation envelope in [0, 1] per frame for ``phones`` (Phone-like: .start, .end): 1 on each
    :func:`plateau`, raised-cosine ramps of ONSET_RAMP before and RELEASE_RAMP after it (vectorised over the
    phones; the largest where two overlap)."""
    env = np.zeros(len(times))
    a, b = plateaus(times, phones, opening)
    if not len(a):
        return env
    i0, i1 = np.searchsorted(times, a - ONSET_RAMP, "right"), np.searchsorted(times, b + RELEASE_RAMP, "left")
    span = int((i1 - i0).max(initial=0))
    if span <= 0:
        return env
    idx = i0[:, None] + np.arange(span)[None]                                   # [N, span]
    inside = idx < i1[:, None]
    t = times[np.minimum(idx, len(times) - 1)]
    ramp = np.minimum(np.clip((t - (a - ONSET_RAMP)[:, None]) / ONSET_RAMP, 0.0, 1.0),
                      np.clip(((b + RELEASE_RAMP)[:, None] - t) / RELEASE_RAMP, 0.0, 1.0))
    np.maximum.at(env, idx[inside], (0.5 - 0.5 * np.cos(np.pi * ramp))[inside])
    return env


def _targets(q_along: np.ndarray) -> np.ndarray:
    """Pairs a key is asked to close: those it moves at least TARGET_SHARE as much as its most moved."""
    return np.abs(q_along) >= TARGET_SHARE * np.abs(q_along).max()


def lowest(r: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """The closest each pair may come per frame, float64 [F, P]: its floor, or :data:`PRESS_KEEP` of its
    gap where the uncorrected motion ``r`` [F, P, 3] already holds it under the floor."""
    gap = np.linalg.norm(r, axis=2)
    return np.where(gap >= floor[None], floor[None], PRESS_KEEP * gap)


def solve_weights(r: np.ndarray, q: np.ndarray, rest: np.ndarray, low: np.ndarray):
    """Per frame, the weight that closes the line and the largest weight the floor allows (distances).

    Parameters
    ----------
    r : float64 [F, P, 3]
        Current (upper − lower) pair vectors.
    q : float64 [P, 3]
        Their change per unit weight.
    rest : float64 [P]
        Rest gaps (targets).
    low : float64 [F, P]
        The closest each pair may come (:func:`lowest` of the uncorrected motion).

    Returns
    -------
    need, cap : float64 [F]
        ``need``: smallest w ≥ 0 with ``|r + w q| ≤ rest`` for every pair the key moves (see
        :data:`TARGET_SHARE`; one that cannot get there counts at its closest approach); ``cap``: largest
        w ≥ 0 before some pair passes below ``low`` (inf when none does).
    """
    a = np.maximum(np.einsum("pk,pk->p", q, q), 1e-18)[None]                   # [1, P]
    b = np.einsum("fpk,pk->fp", r, q)                                          # [F, P]
    c = np.einsum("fpk,fpk->fp", r, r)
    closest = np.maximum(-b / a, 0.0)
    disc = b * b - a * (c - rest[None] ** 2)
    reach = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0.0))) / a, closest)
    need = np.clip(np.where(c <= rest[None] ** 2, 0.0, reach), 0.0, None)
    need = need[:, _targets(np.sqrt(a[0]))].max(axis=1)
    return need, _distance_cap(a, b, c, low)


def _distance_cap(a, b, c, low):
    """Largest w ≥ 0 before some ``|r + w q|`` (``a = |q|²``, ``b = r·q``, ``c = |r|²``) passes ``low``."""
    low = np.minimum(low, np.sqrt(c))
    disc = b * b - a * (c - low ** 2)
    root = np.sqrt(np.maximum(disc, 0.0))
    w1, w2 = (-b - root) / a, (-b + root) / a
    limited = (disc > 0) & (w2 > 0)
    return np.where(limited, np.maximum(w1, 0.0), np.inf).min(axis=1)


def solve_lift(r: np.ndarray, q: np.ndarray, rest_vectors: np.ndarray, low: np.ndarray):
    """As :func:`solve_weights`, on the gaps along each pair's rest direction (the tuck: the lower lip
    rises to the upper lip's height while it slides back, so the distance is not the measure); the
    cap holds both that gap and the distance to the floor.

    ``rest_vectors`` float64 [P, 3]: (upper − lower) on the template.
    """
    rest = np.linalg.norm(rest_vectors, axis=1)
    n = rest_vectors / rest[:, None]
    h = np.einsum("fpk,pk->fp", r, n)                                          # [F, P] vertical gaps
    dh = np.einsum("pk,pk->p", q, n)[None]                                     # [1, P] per unit weight
    closing = dh < -1e-12
    rate = np.where(closing, -dh, 1.0)
    need = np.where(closing, np.maximum(h - rest[None], 0.0) / rate, 0.0)
    need = need[:, _targets(dh[0]) & closing[0]].max(axis=1, initial=0.0)
    cap = np.where(closing, np.maximum(h - np.minimum(low, np.maximum(h, 0.0)), 0.0) / rate, np.inf).min(axis=1)
    a = np.maximum(np.einsum("pk,pk->p", q, q), 1e-18)[None]
    b, c = np.einsum("fpk,pk->fp", r, q), np.einsum("fpk,fpk->fp", r, r)
    return need, np.minimum(cap, _distance_cap(a, b, c, low))


def check_track(anim: ShapeKeyAnimation, track) -> None:
    """Refuse a phone track that runs past the animation's end."""
    end = max((float(p.end) for p in track.phones), default=0.0)
    if end > anim.duration_s + TRACK_END_TOLERANCE:
        raise InputError(f"the phone track ends at {end:.3f} s, past the animation's end ({anim.duration_s:.3f} s). "
                         "Is it the track of another clip? Align the phones of this animation's audio.")


def check_offset(anim: ShapeKeyAnimation, offset) -> Optional[np.ndarray]:
    if offset is None:
        return None
    offset = np.asarray(offset, np.float64)
    if offset.shape != (anim.num_vertices, 3) or not np.isfinite(offset).all():
        raise InputError(f"the static offset (emotion) must be finite [{anim.num_vertices}, 3], got "
                         f"{offset.shape}.")
    return offset


def corrections_for(motion: ShapeKeyAnimation, track, fields: Optional[Fields], strength: float = 1.0,
                    mouth_close: float = 0.0, offset: Optional[np.ndarray] = None,
                    vectors: Optional[np.ndarray] = None) -> Corrections:
    """The two keys and their weights for ``motion`` (its own weights, no corrections) and ``track``.

    ``vectors``: :func:`pair_points` of ``motion`` (+ ``offset``) when the caller has them already.
    """
    line = lip_line(motion.template)
    weights = np.zeros((motion.num_frames, 2), np.float64)
    if fields is None:
        return Corrections(np.zeros((2, motion.num_vertices, 3), np.float32), weights.astype(np.float32),
                           CORRECTION_NAMES)
    times = np.arange(motion.num_frames) / float(motion.fps)
    r = pair_points(motion, line, offset) if vectors is None else vectors          # [F, P, 3]
    opening = (np.linalg.norm(r, axis=2) - line.rest).mean(axis=1)
    q = fields.at_pairs()                                                       # [2, P, 3]
    for key, labels in enumerate((CLOSURE_PHONES, TUCK_PHONES)):
        env = envelope(times, [p for p in track.phones if p.phone in labels], opening)
        offset_w = mouth_close if key == 0 else 0.0
        on = np.flatnonzero(env > 0) if offset_w == 0 else np.arange(len(env))   # frames the key may move
        if not len(on):
            continue
        rk = r[on] + weights[on, :1, None] * q[0][None] if key else r[on]
        low = lowest(r[on], line.floor)                                         # from the uncorrected motion
        if key == 0:
            need, cap = solve_weights(rk, q[key], line.rest, low)
        else:
            need, cap = solve_lift(rk, q[key], line.rest_vectors, low)
        weights[on, key] = np.minimum(strength * env[on] * need + offset_w, cap)
    return Corrections(fields.basis(motion.num_vertices), weights.astype(np.float32), CORRECTION_NAMES)


def _plateau_residuals(motion: ShapeKeyAnimation, track, corrections: Corrections, vectors: np.ndarray,
                       line: LipLine) -> np.ndarray:
    """Per p/b/m, the worst pair's smallest excess over rest (m) around its plateau, after ``corrections``."""
    basis = corrections.basis[:, line.pairs[:, 0]].astype(np.float64) - corrections.basis[:, line.pairs[:, 1]]
    times = np.arange(motion.num_frames) / float(motion.fps)
    opening = (np.linalg.norm(vectors, axis=2) - line.rest).mean(axis=1)
    out = []
    closes = [p for p in track.phones if p.phone in CLOSURE_PHONES]
    for a, b in zip(*plateaus(times, closes, opening)):
        on = slice(np.searchsorted(times, a - ONSET_RAMP), np.searchsorted(times, b + RELEASE_RAMP))
        r = vectors[on] + np.einsum("fc,cpk->fpk", corrections.weights[on].astype(np.float64), basis)
        out.append((np.linalg.norm(r, axis=2) - line.rest).min(axis=0).max() if on.stop > on.start else 0.0)
    return np.array(out)


def fit(motion: ShapeKeyAnimation, track, offset: Optional[np.ndarray] = None, refits: int = REFITS,
        vectors: Optional[np.ndarray] = None) -> tuple:
    """Fields fitted to ``motion``'s p/b/m, refitted up to ``refits`` times with the p/b/m that stay open
    weighing more (``× (1 + residual / REFIT_SCALE)``), the best kept.

    Returns
    -------
    fields : Fields or None
        The key shapes (fitted at the default knobs; they do not depend on closure strength or mouth close).
    corrections : Corrections
        Their weights at closure strength 1 and mouth close 0.
    vectors : float64 [F, P, 3]
        :func:`pair_points` of ``motion`` (+ ``offset``), for :func:`corrections_for` at other knobs.
    """
    line = lip_line(motion.template)
    vectors = pair_points(motion, line, offset) if vectors is None else vectors
    emphasis, best, best_worst = None, None, np.inf
    for _ in range(refits + 1):
        fields = fields_for(motion, track, offset, vectors, emphasis)
        corrections = corrections_for(motion, track, fields, 1.0, 0.0, offset, vectors)
        if refits == 0:                                         # nothing to compare: no residuals
            return fields, corrections, vectors
        residual = _plateau_residuals(motion, track, corrections, vectors, line)
        worst = residual.max(initial=0.0)
        if worst < best_worst:
            best, best_worst = (fields, corrections), worst
        if worst <= REFIT_BELOW or fields is None or not len(residual):
            break
        emphasis = (1.0 if emphasis is None else emphasis) * (1.0 + np.maximum(residual, 0.0) / REFIT_SCALE)
    return best[0], best[1], vectors


def fit_and_solve(motion: ShapeKeyAnimation, track, strength: float = 1.0, mouth_close: float = 0.0,
                  offset: Optional[np.ndarray] = None, refits: int = REFITS) -> Corrections:
    """:func:`fit`, then the weights solved at ``strength`` and ``mouth_close`` (only the weights depend
    on them)."""
    fields, corrections, vectors = fit(motion, track, offset, refits)
    if strength == 1.0 and mouth_close == 0.0:
        return corrections
    return corrections_for(motion, track, fields, strength, mouth_close, offset, vectors)


def add_corrections(anim: ShapeKeyAnimation, track, strength: float = 1.0,
                    offset: Optional[np.ndarray] = None) -> ShapeKeyAnimation:
    """``anim`` with the lip closure and tuck keys for ``track`` layered over it.

    Parameters
    ----------
    anim : ShapeKeyAnimation
        On the FLAME topology (5023 vertices).
    track : PhoneTrack
        Its phones (seconds from the audio's start = frame 0).
    strength : float
        Scales the corrective weights (capped by the floor).
    offset : float [V, 3], optional
        A static displacement the face also carries (an emotion's delta): the closure is solved on the
        motion plus it.

    Returns
    -------
    ShapeKeyAnimation
        ``anim.with_corrections(...)``; ``anim`` itself if it already has corrections.

    Raises
    ------
    MeshError
        Not FLAME's vertex count.
    InputError
        The track ends past the animation, or the offset has the wrong shape.
    """
    if anim.corrections is not None:
        return anim
    check_flame(anim.num_vertices)
    check_track(anim, track)
    offset = check_offset(anim, offset)
    if not np.isfinite(strength) or strength < 0:
        raise InputError(f"closure strength must be a finite number ≥ 0, got {strength}.")
    return anim.with_corrections(fit_and_solve(anim, track, strength, 0.0, offset))
