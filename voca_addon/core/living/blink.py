"""Eye blinks: the Blink shape (what a closed eye looks like) and a blink track (when, how fast).

**Shape.** A delta float32 [V, 3] (metres) added at weight 1, from, in order of preference:

* a FLAME model: VOCA's blink, the expression ``ψ_blink`` of ``edit_sequences.py`` (the 100 figures of
  :data:`VOCA_BLINK_EXPRESSION`) through the model's expression basis, ``Δ = B_E · ψ_blink``;
* eyelid delta files (``.npy`` [V, 3], e.g. metrical-tracker's ``l_eyelid.npy`` + ``r_eyelid.npy``,
  summed; or ``.npz`` with one [V, 3] array, or ``deltas`` / ``offsets`` [K, V, 3] summed);
* a mesh with the head's vertex order (OBJ / PLY, closed eyes) minus the head's template;
* an artist's shape key marked as the blink (Blender layer only).

**Track.** Weight ∈ [0, 1] per frame, from a seeded renewal process with human statistics:

1. *Rate.* The blink hazard λ(t) is ``rate_rest`` in pauses, ``rate_speaking`` while speaking, times
   ``pause_boost`` during the first ``PAUSE_WINDOW_S`` of each pause (blinks cluster at phrase ends),
   then rescaled so that the boost only moves blinks into pauses: ``∫ λ`` stays
   ``rate_rest · t_pause + rate_speaking · t_speaking``.
2. *Onsets.* Inter-blink intervals are gamma(``IBI_SHAPE``) with unit mean in the rescaled time
   ``Λ(t) = ∫ λ`` (time-rescaling theorem), mapped back to seconds; intervals under ``REFRACTORY_S``
   are dropped. Each blink's peak is put on a frame, so the eye closes fully at every frame rate.
3. *Double blinks.* With probability ``double_probability`` a second blink follows the first's opening.
4. *Shape in time.* Closing ``CLOSING_S`` (fast, ease-in), closed ``HOLD_S``, opening ``OPENING_S``
   (slower, ease-out), each drawn per blink within the ranges below; blinks combine by maximum.

Human figures behind the defaults: spontaneous blink rate at rest 15–20 /min; blink duration
100–400 ms, the lid closing in ≈ 70–110 ms and opening 1.5–2.5× slower (≈ 150–250 ms); double blinks a
few per cent of blinks; during speech blinks gather at pauses. During conversation studies report
higher rates than at rest (Bentivoglio et al. 1997); the ``rate_speaking`` default follows this
project's brief (fewer while speaking) and is a parameter.

Contract: numpy + stdlib (+ :mod:`..flame.flame_model`, :mod:`..flame.meshio`); pure functions, any thread.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError, MeshError
from ..flame.flame_model import FlameModel, load_flame_model
from ..flame.meshio import read_mesh
from .prosody import Prosody

# VOCA's blink expression (edit_sequences.py, add_eye_blink: blink_exp_betas), FLAME expression
# coefficients ψ_1..ψ_100 (figures only).
VOCA_BLINK_EXPRESSION = np.array([
    0.04676158497927314, 0.03758675711005459, -0.8504121184951298, 0.10082324210507627, -0.574142329926028,
    0.6440016589938355, 0.36403779939335984, 0.21642312586261656, 0.6754551784690193, 1.80958618462892,
    0.7790133813372259, -0.24181691256476057, 0.826280685961679, -0.013525679499256753, 1.849393698014113,
    -0.263035686247264, 0.42284248271332153, 0.10550891351425384, 0.6720993875023772, 0.41703592560736436,
    3.308019065485072, 1.3358509602858895, 1.2997143108969278, -1.2463587328652894, -1.4818961382824924,
    -0.6233880069345369, 0.26812528424728455, 0.5154889093160832, 0.6116267181402183, 0.9068826814583771,
    -0.38869613253448576, 1.3311776710005476, -0.5802565274559162, -0.7920775624092143, -1.3278601781150017,
    -1.2066425872386706, 0.34250140710360893, -0.7230686724732668, -0.6859285483325263, -1.524877347586566,
    -1.2639479212965923, -0.019294228307535275, 0.2906175769381998, -1.4082782880837976, 0.9095436721066045,
    1.6007365724960054, 2.0302381182163574, 0.5367600947801505, -0.12233184771794232, -0.506024823810769,
    2.4312326730634783, 0.5622323258974669, 0.19022395712837198, -0.7729758559103581, -1.5624233513002923,
    0.8275863297957926, 1.1661887586553132, 1.2299311381779416, -1.4146929897142397, -0.42980549225554004,
    -1.4282801579740614, 0.26172301287347266, -0.5109318114918897, -0.6399495909195524, -0.733476856285442,
    1.219652074726591, 0.08194907995352405, 0.4420398361785991, -1.184769973221183, 1.5126082924326332,
    0.4442281271081217, -0.005079477284341147, 1.764084274265486, 0.2815940264026848, 0.2898827213634057,
    -0.3686662696397026, 1.9125365942683656, 2.1801452989500274, -2.3915065327980467, 0.5794919897154226,
    -1.777680085517591, 2.9015718628823604, -2.0516886588315777, 0.4146899057365943, -0.29917763685660903,
    -0.5839240983516372, 2.1592457102697007, -0.8747902386178202, -0.5152943072876817, 0.12620001057735733,
    1.3144109838803493, -0.5027032013330108, 1.2160353388774487, 0.7543834001473375, -3.512095548974531,
    -0.9304382646186183, -0.30102930208709433, 0.9332135959962723, -0.52926196689098, 0.23509772959302958])

RATE_REST = 17.0            # blinks per minute in pauses / at rest
RATE_SPEAKING = 14.0        # blinks per minute while speaking (a parameter; see the module docstring)
PAUSE_BOOST = 4.0           # hazard multiplier just after a pause begins
PAUSE_WINDOW_S = 0.6        # s, how long after a pause onset the boost lasts
IBI_SHAPE = 2.0             # gamma shape of inter-blink intervals (coefficient of variation 1/√2)
REFRACTORY_S = 0.8          # s, shortest interval between two separate blinks
DOUBLE_PROBABILITY = 0.06   # share of blinks followed at once by a second one
DOUBLE_GAP_S = (0.03, 0.10)  # s, open interval between the two blinks of a double blink
CLOSING_S = (0.075, 0.110)  # s, lid closing (uniform range per blink)
HOLD_S = (0.0, 0.040)       # s, fully closed
OPENING_S = (0.150, 0.250)  # s, lid opening


@dataclass(frozen=True)
class BlinkShape:
    """A blink as a per-vertex delta: ``delta`` float32 [V, 3] metres, ``source`` for messages."""

    delta: np.ndarray
    source: str


@dataclass(frozen=True)
class BlinkTrack:
    """Blink weights per frame and the blinks behind them.

    Attributes
    ----------
    weight : float32 [F]     0 open .. 1 closed.
    fps : float
    peaks_s : float64 [B]    time of full closure (on a frame), seconds.
    closing_s, hold_s, opening_s : float64 [B]   phase durations, seconds.
    double : bool [B]        True for the second blink of a double blink.
    """

    weight: np.ndarray
    fps: float
    peaks_s: np.ndarray
    closing_s: np.ndarray
    hold_s: np.ndarray
    opening_s: np.ndarray
    double: np.ndarray

    @property
    def durations_s(self) -> np.ndarray:
        """float64 [B]: closing + closed + opening, seconds."""
        return self.closing_s + self.hold_s + self.opening_s

    def rate_per_minute(self) -> float:
        """Blinks per minute over the track (a double blink counts as two)."""
        return 60.0 * self.peaks_s.size * self.fps / max(self.weight.size, 1)


# ---------------------------------------------------------------------------- shapes

def blink_from_flame(model: FlameModel) -> BlinkShape:
    """VOCA's blink through a FLAME model: ``Δ = B_E[:, :, :100] · ψ_blink`` (float32 [V, 3])."""
    k = VOCA_BLINK_EXPRESSION.size
    if model.num_expression < k:
        raise MeshError(f"the FLAME model '{model.path}' has {model.num_expression} expression components; "
                        f"VOCA's blink needs {k}. Choose FLAME 2020's generic_model.pkl or FLAME 2023.")
    delta = model.expression_basis[:, :, :k] @ VOCA_BLINK_EXPRESSION
    return BlinkShape(delta.astype(np.float32), f"VOCA blink through FLAME model ({model.path})")


def _read_deltas(path: str) -> np.ndarray:
    """float64 [V, 3]: one delta array file (``.npy`` or ``.npz``), several deltas summed."""
    try:
        with open(path, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                key = next((k for k in ("delta", "deltas", "offsets") if k in loaded.files),
                           loaded.files[0] if len(loaded.files) == 1 else None)
                if key is None:
                    raise InputError(f"'{path}' holds {loaded.files}; a blink file holds one array (or "
                                     "'deltas' / 'offsets').")
                loaded = loaded[key]
            array = np.asarray(loaded, dtype=np.float64)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:   # zlib: a damaged member
        raise InputError(f"cannot read blink file '{path}' ({exc}). Save the deltas as a float array "
                         "with numpy.save.") from None
    array = array.sum(axis=0) if array.ndim == 3 else array
    if array.ndim != 2 or array.shape[1] != 3 or not np.all(np.isfinite(array)):
        raise InputError(f"'{path}' holds an array of shape {array.shape}; blink deltas are finite "
                         "[V, 3] (or [K, V, 3], summed).")
    return array


def load_blink_shape(sources: Sequence, template: np.ndarray) -> BlinkShape:
    """A Blink shape from files (module docstring): one FLAME ``.pkl``, delta files, or one mesh.

    Parameters
    ----------
    sources : sequence of path
        A FLAME model, or ``.npy`` / ``.npz`` files (their deltas summed: left + right eyelid), or one
        OBJ / PLY with the head's vertex order.
    template : float [V, 3]
        The head's neutral vertices (metres); the shape must have its vertex count.

    Raises
    ------
    InputError
        No source, a missing file or an unknown kind; ModelFileError / MeshError from the readers;
        MeshError when the source's vertex count differs from the head's.
    """
    paths = [os.fspath(p) for p in (sources if isinstance(sources, (list, tuple)) else [sources])]
    if not paths:
        raise InputError("no blink source given: choose a FLAME model, eyelid .npy files or a mesh.")
    for path in paths:
        if not os.path.isfile(path):
            raise InputError(f"blink source '{path}' was not found. Check the path.")
    kinds = {Path(p).suffix.lower() for p in paths}
    template = np.asarray(template, dtype=np.float64)
    if kinds == {".pkl"} and len(paths) == 1:
        model = load_flame_model(paths[0])
        shape = blink_from_flame(model)
    elif kinds <= {".npy", ".npz"}:
        delta = sum(_read_deltas(p) for p in paths)
        shape = BlinkShape(delta.astype(np.float32), "eyelid deltas (" + ", ".join(paths) + ")")
    elif kinds <= {".obj", ".ply"} and len(paths) == 1:
        mesh = read_mesh(paths[0])
        _check_count(mesh.vertices.shape[0], template.shape[0], paths[0])
        shape = BlinkShape((mesh.vertices - template).astype(np.float32), f"closed-eye mesh ({paths[0]})")
    else:
        raise InputError(f"blink source {paths}: give one FLAME model (.pkl), eyelid delta files (.npy / "
                         ".npz) or one closed-eye mesh (.obj / .ply).")
    _check_count(shape.delta.shape[0], template.shape[0], shape.source)
    _check_size(shape, template)
    return shape


def _check_size(shape: BlinkShape, template: np.ndarray) -> None:
    """Refuse a blink that moves a vertex further than the head is big (wrong units or a wrong file)."""
    head = float(np.linalg.norm(template.max(axis=0) - template.min(axis=0)))    # bounding-box diagonal
    largest = float(np.sqrt((shape.delta.astype(np.float64) ** 2).sum(axis=1)).max())
    if not np.isfinite(largest) or largest > head:
        raise MeshError(f"the blink source {shape.source} moves a vertex by {largest:.4g} (template units), "
                        f"more than the whole head's size ({head:.4g}); it is in other units or not a blink. "
                        "An eyelid closes by about 1 cm on a head in metres.")


def _check_count(got: int, want: int, what: str) -> None:
    if got != want:
        raise MeshError(f"the blink source {what} has {got} vertices but the head has {want}; it belongs "
                        "to another topology. Choose a blink source made for this head (FLAME: 5023).")


# ---------------------------------------------------------------------------- track

def blink_hazard(num_frames: int, fps: float, prosody: Optional[Prosody], rate_rest: float,
                 rate_speaking: float, pause_boost: float) -> np.ndarray:
    """Step 1: λ per frame, blinks per second, float64 [F]."""
    if prosody is None:
        return np.full(num_frames, rate_rest / 60.0)
    speaking = np.zeros(num_frames, bool)
    n = min(num_frames, prosody.num_frames)
    speaking[:n] = prosody.speaking[:n]
    lam = np.where(speaking, rate_speaking, rate_rest) / 60.0
    boost = np.zeros(num_frames, bool)
    for onset in prosody.pause_onsets():
        boost[onset:onset + max(int(round(PAUSE_WINDOW_S * fps)), 1)] = True
    boosted = np.where(boost & ~speaking, lam * pause_boost, lam)
    return boosted * (lam.sum() / max(boosted.sum(), 1e-12))                 # redistribute, same count


def blink_onsets(hazard: np.ndarray, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Step 2: blink times in seconds, float64 [B], from λ by time rescaling."""
    cumulative = np.concatenate([[0.0], np.cumsum(hazard) / fps])           # Λ at frame edges
    expected = cumulative[-1]
    count = int(expected * 2 + 10)
    intervals = rng.gamma(IBI_SHAPE, 1.0 / IBI_SHAPE, size=count)           # unit-mean in Λ
    marks = rng.uniform(0, 1) * intervals[0] + np.cumsum(intervals)         # stationary start
    marks = marks[marks < expected]
    times = np.interp(marks, cumulative, np.arange(cumulative.size) / fps)
    keep = np.ones(times.size, bool)
    last = -np.inf
    for i, t in enumerate(times):                                           # B ≈ 20 / min: tiny loop
        keep[i] = t - last >= REFRACTORY_S
        last = t if keep[i] else last
    return times[keep]


def blink_track(num_frames: int, fps: float, prosody: Optional[Prosody] = None, seed: int = 0,
                rate_rest: float = RATE_REST, rate_speaking: float = RATE_SPEAKING,
                pause_boost: float = PAUSE_BOOST,
                double_probability: float = DOUBLE_PROBABILITY) -> BlinkTrack:
    """A procedural blink track (module docstring's steps 1–4).

    Parameters
    ----------
    num_frames : int
    fps : float
    prosody : Prosody, optional
        The speech's prosody at ``fps``; without it every frame is "at rest".
    seed : int
        The same seed gives the same blinks.
    rate_rest, rate_speaking : float
        Blinks per minute in pauses / while speaking.
    pause_boost : float
        Hazard multiplier at the start of a pause (1 = no preference for pauses).
    double_probability : float
        Share of blinks that are doubled.

    Raises
    ------
    InputError
        A rate, fps or probability out of range.
    """
    if not (fps > 0 and num_frames > 0 and 0 <= rate_rest <= 120 and 0 <= rate_speaking <= 120
            and pause_boost >= 0 and 0 <= double_probability <= 1):
        raise InputError("blinks: fps and frames must be positive, rates within 0..120 per minute, the "
                         "pause boost ≥ 0 and the double-blink probability within 0..1.")
    rng = np.random.default_rng(seed)
    hazard = blink_hazard(num_frames, fps, prosody, rate_rest, rate_speaking, pause_boost)
    onsets = blink_onsets(hazard, fps, rng)
    closing, hold, opening = (rng.uniform(*r, size=onsets.size) for r in (CLOSING_S, HOLD_S, OPENING_S))
    peaks = np.round((onsets + closing) * fps) / fps                        # full closure on a frame
    second = rng.uniform(size=onsets.size) < double_probability             # step 3
    gap = rng.uniform(*DOUBLE_GAP_S, size=onsets.size)
    c2, h2, o2 = (rng.uniform(*r, size=onsets.size) for r in (CLOSING_S, HOLD_S, OPENING_S))
    peaks2 = np.round((peaks + hold + opening + gap + c2) * fps) / fps
    columns = [np.concatenate([first, again[second]]) for first, again in
               ((peaks, peaks2), (closing, c2), (hold, h2), (opening, o2),
                (np.zeros(onsets.size, bool), np.ones(onsets.size, bool)))]
    order = np.argsort(columns[0], kind="stable")
    order = order[columns[0][order] < num_frames / fps]
    peaks, closing, hold, opening, double = (c[order] for c in columns)
    weight = blink_weights(num_frames, fps, peaks, closing, hold, opening)
    return BlinkTrack(weight, float(fps), peaks, closing, hold, opening, double)


def blink_weights(num_frames: int, fps: float, peaks_s, closing_s, hold_s, opening_s) -> np.ndarray:
    """Step 4: float32 [F] lid weight, the maximum over blinks of an ease-in close / hold / ease-out open."""
    t = np.arange(num_frames) / fps                                          # [F]
    weight = np.zeros(num_frames)
    for peak, close, hold, open_ in zip(peaks_s, closing_s, hold_s, opening_s):
        lo, hi = np.searchsorted(t, [peak - close, peak + hold + open_])
        s = t[lo:hi] - peak                                                  # seconds from full closure
        closing = 0.5 - 0.5 * np.cos(np.pi * np.clip(1 + s / close, 0, 1))   # 0 → 1 over `close`
        opening = 0.5 + 0.5 * np.cos(np.pi * np.clip((s - hold) / open_, 0, 1))  # 1 → 0 over `open_`
        weight[lo:hi] = np.maximum(weight[lo:hi], np.where(s <= 0, closing, np.where(s <= hold, 1.0, opening)))
    return weight.astype(np.float32)
