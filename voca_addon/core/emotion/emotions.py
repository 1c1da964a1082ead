"""Emotion shapes: per-vertex displacements that the Blender layer turns into keyable shape keys.

An :class:`Emotion` is a name and a delta (float32 [V, 3], template units — FLAME: metres) to add to the
face on top of the speech animation. Sources (a new one is a function here returning ``list[Emotion]``
with float32 deltas, applying the neutral rule below):

* :func:`from_flame_presets` — FLAME expression coefficients (built-in presets or a user JSON) times the
  expression basis of a FLAME model pickle the user supplies (read with :mod:`..formats.safepickle`);
* :func:`from_delta_file` — ``.npy`` / ``.npz`` arrays of deltas;
* :func:`from_target_meshes` — sculpted OBJ / PLY targets minus their neutral mesh.

**The neutral rule.** Wherever a source names an entry ``'neutral'``, it is the reference: every other
entry's delta is measured from it (``emotion − neutral``) and ``neutral`` itself is dropped. The seed
project's offsets file needs this (its ``neutral`` offset is itself non-zero); for coefficient presets it
is exact too, as FLAME is linear in its coefficients, and an all-zero neutral changes nothing.

:func:`ease_curve` gives the keyframe points of an emotion's weight over a frame range.

Contract: stdlib + numpy (+ :mod:`..flame.meshio`, :mod:`..formats.safepickle`); pure functions, any thread; reads files,
writes nothing.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, MeshError, ModelFileError
from ..flame.meshio import read_mesh
from ..formats.safepickle import safe_load, to_array

NEUTRAL = "neutral"                 # the reference entry of a source (see the module docstring)
FLAME_VERTICES = 5023
FLAME_SHAPE_COMPONENTS = 300        # shapedirs[:, :, :300] is identity shape, [:, :, 300:] expression
FRAME_EPS = 1e-6                    # frames closer than this are one key
MAX_NAME_LENGTH = 63                # Blender's limit on shape-key names (bytes, ASCII here)

# The seed project's emotion presets: the first 10 FLAME expression coefficients per emotion (the other
# expression coefficients and the jaw / neck pose are 0). Figures from 3DSpatialLearning/
# 3DSSL-SS23_IntuitiveAnimation (utils/add_emotions.py), where 'excited' is spelled 'exited'.
BUILTIN_PRESETS: Dict[str, Tuple[float, ...]] = {
    "happy": (1.62, 0.02, 0.0, 1.57, 1.71, 1.04, 1.67, 1.69, -1.47, 2.0),
    "sad": (0.0, 0.0, 0.0, 0.0, 0.0, -1.22, -1.73, -1.33, 0.22, -2.0),
    "surprised": (-1.11, 0.0, 0.0, 1.80, 1.0, -0.60, -0.87, -0.98, -0.89, -1.24),
    "angry": (2.0, 2.0, 0.0, 1.67, -2.0, -2.0, -1.04, 2.0, -1.16, 2.0),
    "excited": (2.0, 2.0, 0.0, 0.96, 2.0, 1.16, 2.0, 2.0, -1.07, 2.0),
    "fear": (-1.53, -0.44, 0.0, 0.60, 2.0, 1.93, -2.00, -0.51, 2.0, -0.49),
    "disappointed": (0.0, 2.0, 0.0, 0.60, -2.0, -1.51, 2.00, 0.67, 2.00, -2.00),
    "frustrated": (2.0, 2.0, 0.0, 1.82, -2.0, -2.00, 1.31, 2.00, 2.00, -2.00),
    "neutral": (0.0,) * 10,
}


@dataclass(frozen=True)
class Emotion:
    """One emotion shape.

    Attributes
    ----------
    name : str
        Shape-key name.
    delta : float32 [V, 3]
        Displacement of every vertex from the neutral face.
    source : str
        Where it came from (for the UI and error messages).
    """

    name: str
    delta: np.ndarray
    source: str


def _with_neutral_rule(items: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Measure every entry from ``'neutral'`` when there is one, and drop it."""
    if NEUTRAL not in items:
        return items
    reference = items[NEUTRAL]
    return {name: value - reference for name, value in items.items() if name != NEUTRAL}


def _select(items: Dict[str, np.ndarray], names: Optional[Sequence[str]], where: str) -> List[str]:
    """The names to build, in order: ``names`` (all must exist) or every entry."""
    if names is None:
        return list(items)
    names = list(names)
    unknown = [n for n in names if n not in items]
    if unknown:
        raise InputError(f"{where} has no emotion named {', '.join(map(repr, unknown))}; it has "
                         f"{', '.join(items) or 'none'} ('{NEUTRAL}' is the reference, not an emotion).")
    return names


# ---------------------------------------------------------------------------- FLAME presets

def load_presets(presets=None) -> Dict[str, np.ndarray]:
    """Expression presets as {name: float64 [k]}.

    Parameters
    ----------
    presets : None, dict or path
        None: :data:`BUILTIN_PRESETS`; a dict {name: coefficients}; or a JSON file laid out like the
        seed's ``{"presets": {"happy": [1.62, ...], ...}}``.
    """
    where = "the built-in presets"
    if presets is None:
        presets = BUILTIN_PRESETS
    elif not isinstance(presets, dict):
        where = f"'{os.fspath(presets)}'"
        try:
            with open(presets, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise InputError(f"preset file {where} was not found. Check the path.") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"preset file {where} is not valid JSON ({exc}).") from None
        if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
            raise InputError(f"preset file {where} needs an object \"presets\": "
                             "{\"name\": [coefficients], ...}.")
        presets = data["presets"]
    result = {}
    for name, values in presets.items():
        try:
            coeffs = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            coeffs = np.zeros(0)
        if coeffs.ndim != 1 or coeffs.size == 0 or not np.all(np.isfinite(coeffs)):
            raise InputError(f"preset '{name}' in {where} must be a non-empty list of finite numbers.")
        result[str(name)] = coeffs
    return result


def load_flame_expression_basis(flame_model_path) -> np.ndarray:
    """The expression basis of a FLAME model pickle, float64 [V, 3, E] (``shapedirs[:, :, 300:]``).

    Raises
    ------
    ModelFileError
        Missing / unsafe / corrupt file, or no FLAME ``shapedirs`` with expression components.
    """
    path = os.fspath(flame_model_path)
    model = safe_load(path)
    if not isinstance(model, dict) or "shapedirs" not in model:
        raise ModelFileError(f"'{path}' is not a FLAME model: it has no 'shapedirs'. Choose FLAME's "
                             "generic_model.pkl (or flame2023.pkl).")
    shapedirs = to_array(model["shapedirs"]).astype(np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[1] != 3 or shapedirs.shape[2] <= FLAME_SHAPE_COMPONENTS:
        raise ModelFileError(f"'{path}' has shapedirs of shape {shapedirs.shape}; a FLAME model has "
                             f"[V, 3, {FLAME_SHAPE_COMPONENTS} shape + expression components].")
    if "v_template" in model:
        template = to_array(model["v_template"])
        if template.shape != (shapedirs.shape[0], 3):
            raise ModelFileError(f"'{path}' has v_template {template.shape} but shapedirs for "
                                 f"{shapedirs.shape[0]} vertices; the file is corrupt.")
    return shapedirs[:, :, FLAME_SHAPE_COMPONENTS:]


def from_flame_presets(flame_model_path, presets=None,
                       names: Optional[Sequence[str]] = None) -> List[Emotion]:
    """Emotions from FLAME expression coefficients: ``delta = expression_basis[:, :, :k] @ coeffs``.

    Parameters
    ----------
    flame_model_path : path
        A FLAME model pickle (chumpy objects inside are fine, see :mod:`..formats.safepickle`).
    presets : None, dict or path
        See :func:`load_presets`. A ``'neutral'`` preset is the reference (module docstring).
    names : sequence of str, optional
        Which presets to build, in this order (default: all).

    Returns
    -------
    list of Emotion
        delta float32 [V, 3] each.
    """
    coeffs = _with_neutral_rule(_pad(load_presets(presets)))
    basis = load_flame_expression_basis(flame_model_path)                      # [V, 3, E]
    where = "the built-in presets" if presets is None else "the presets"
    emotions = []
    for name in _select(coeffs, names, where):
        k = coeffs[name].size
        if k > basis.shape[2]:
            raise InputError(f"preset '{name}' has {k} expression coefficients but the FLAME model has "
                             f"only {basis.shape[2]}.")
        delta = np.tensordot(basis[:, :, :k], coeffs[name], axes=([2], [0]))   # [V, 3]
        emotions.append(Emotion(name, delta.astype(np.float32),
                                f"FLAME expression preset ({os.fspath(flame_model_path)})"))
    return emotions


def _pad(coeffs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Zero-pad coefficient vectors to a common length (so they can be subtracted)."""
    size = max((c.size for c in coeffs.values()), default=0)
    return {n: np.pad(c, (0, size - c.size)) for n, c in coeffs.items()}


# ---------------------------------------------------------------------------- delta files

def from_delta_file(path, names: Optional[Sequence[str]] = None) -> List[Emotion]:
    """Emotions from an array file.

    * ``.npy`` [V, 3]: one delta named after the file stem; ``.npy`` [K, V, 3]: ``<stem>_1`` ... ``<stem>_K``;
    * ``.npz`` with ``offsets`` [K, V, 3] and ``names`` [K] (the seed project's layout; without ``names``
      they are numbered like a ``.npy``). A ``'neutral'`` entry is the reference (module docstring).

    Parameters
    ----------
    names : sequence of str, optional
        Which emotions to keep, in this order (default: all).

    Raises
    ------
    InputError
        Missing or unreadable file, wrong shapes, non-finite values, duplicate names.
    """
    path = os.fspath(path)
    stem, ext = Path(path).stem, Path(path).suffix.lower()
    if not os.path.isfile(path):
        raise InputError(f"emotion file '{path}' was not found. Check the path.")
    if ext not in (".npy", ".npz"):
        raise InputError(f"'{path}' is not a .npy or .npz file of emotion offsets.")
    try:
        loaded = np.load(path, allow_pickle=False)
        try:
            offsets, labels = _offsets_and_names(loaded, path)
        finally:
            if isinstance(loaded, np.lib.npyio.NpzFile):
                loaded.close()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:   # zlib: a damaged member
        raise InputError(f"cannot read emotion file '{path}' ({exc}). Save offsets as a plain float "
                         "array with numpy.save / numpy.savez.") from None
    if offsets.ndim == 2:
        offsets = offsets[None]
        labels = labels or [stem]
    if offsets.ndim != 3 or offsets.shape[2] != 3 or offsets.shape[0] == 0:
        raise InputError(f"'{path}' holds an array of shape {offsets.shape}; emotion offsets are "
                         "[V, 3] or [K, V, 3].")
    labels = labels or [f"{stem}_{k + 1}" for k in range(offsets.shape[0])]
    if len(labels) != offsets.shape[0]:
        raise InputError(f"'{path}' has {len(labels)} names for {offsets.shape[0]} offsets.")
    if len(set(labels)) != len(labels):
        raise InputError(f"'{path}' names an emotion twice: {labels}.")
    items = _with_neutral_rule({n: offsets[k].astype(np.float64) for k, n in enumerate(labels)})
    return [Emotion(n, items[n].astype(np.float32), f"offsets file ({path})")
            for n in _select(items, names, f"'{path}'")]


def _offsets_and_names(data, path: str):
    """(offsets array, names list or None) from a loaded .npy array or .npz archive."""
    if not isinstance(data, np.lib.npyio.NpzFile):
        return np.asarray(data), None
    key = next((k for k in ("offsets", "deltas") if k in data.files), None)
    if key is None:
        raise InputError(f"'{path}' has no 'offsets' array (it has {', '.join(data.files) or 'nothing'}).")
    labels = [str(n) for n in np.asarray(data["names"]).ravel()] if "names" in data.files else None
    return np.asarray(data[key]), labels


# ---------------------------------------------------------------------------- target meshes

def from_target_meshes(paths: Iterable, neutral_path) -> List[Emotion]:
    """Emotions from sculpted target meshes: ``delta = target − neutral``, vertex by vertex.

    Parameters
    ----------
    paths : iterable of path
        OBJ / PLY targets in the neutral mesh's topology; each emotion is named after its file stem.
    neutral_path : path
        The neutral mesh the targets were sculpted from.

    Raises
    ------
    MeshError
        A missing or unreadable mesh, or a target whose vertex count or triangles differ.
    InputError
        No targets, or two targets with the same file stem.
    """
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InputError("no target meshes given. Choose one or more .obj / .ply emotion targets.")
    names = [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise InputError(f"two target meshes share a file name ({names}); emotions are named after "
                         "their files. Rename one.")
    neutral = read_mesh(neutral_path)
    emotions = []
    for name, path in zip(names, paths):
        target = read_mesh(path)
        if target.vertices.shape != neutral.vertices.shape:
            raise MeshError(f"'{path}' has {len(target.vertices)} vertices but the neutral mesh "
                            f"'{neutral.path}' has {len(neutral.vertices)}; targets must keep its topology.")
        if len(target.faces) and len(neutral.faces) and not np.array_equal(target.faces, neutral.faces):
            raise MeshError(f"'{path}' connects its vertices differently from the neutral mesh "
                            f"'{neutral.path}'; targets must keep its topology.")
        delta = (target.vertices - neutral.vertices).astype(np.float32)
        emotions.append(Emotion(name, delta, f"target mesh ({path}) − neutral ({neutral.path})"))
    return emotions


# ---------------------------------------------------------------------------- checks and curves

def validate(emotions: Sequence[Emotion], num_vertices: int) -> Tuple[Emotion, ...]:
    """Check emotions against the mesh they will be keyed on; returns them as a tuple.

    Raises
    ------
    MeshError
        A delta whose vertex count is not ``num_vertices``.
    InputError
        Empty, too long or duplicate names; non-finite deltas.
    """
    seen = set()
    for emotion in emotions:
        name = emotion.name
        if not name or len(name.encode("utf-8")) > MAX_NAME_LENGTH:
            raise InputError(f"emotion name {name!r} must have 1 to {MAX_NAME_LENGTH} bytes. Rename it.")
        if name in seen:
            raise InputError(f"two emotions are named '{name}'. Rename one.")
        seen.add(name)
        delta = np.asarray(emotion.delta)
        if delta.shape != (num_vertices, 3):
            raise MeshError(f"emotion '{name}' ({emotion.source}) moves {delta.shape[0] if delta.ndim else 0}"
                            f" vertices but the mesh has {num_vertices}; use emotions made for this "
                            "mesh's topology.")
        if not np.all(np.isfinite(delta)):
            raise InputError(f"emotion '{name}' ({emotion.source}) has NaN or infinite offsets.")
    return tuple(emotions)


def ease_curve(start: float, end: float, ramp: float, peak: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Keyframe points of an emotion weight: 0 at ``start``, ``peak`` in between, 0 again at ``end``.

    The rises and falls are smoothstep ramps (``3t² − 2t³``) of ``ramp`` frames, sampled at every frame
    (at least one key per frame of ramp), so linearly interpolated keys follow the smooth curve; the
    plateau needs only its two ends. A ramp longer than half the range is shortened to half.

    Returns
    -------
    frames : float64 [K], strictly increasing, from ``start`` to ``end``
    values : float64 [K]

    Raises
    ------
    InputError
        ``end <= start``, ``ramp <= 0``, or non-finite arguments.
    """
    if not all(math.isfinite(x) for x in (start, end, ramp, peak)):
        raise InputError("emotion curve arguments must be finite numbers.")
    if not end > start:
        raise InputError(f"an emotion needs end frame > start frame (got {start} → {end}).")
    if not ramp > 0:
        raise InputError(f"the ease ramp must be longer than 0 frames (got {ramp}).")
    ramp = min(float(ramp), (end - start) / 2.0)
    t = np.linspace(0.0, 1.0, max(1, math.ceil(ramp)) + 1)                    # [n + 1] ramp samples
    rise = t * t * (3.0 - 2.0 * t)
    frames = np.concatenate([start + t * ramp, end - ramp + t * ramp])
    values = peak * np.concatenate([rise, rise[::-1]])
    keep = np.concatenate([[True], np.diff(frames) > FRAME_EPS])               # joined ramps share a key
    return frames[keep], values[keep]
