"""Retargeting without Blender: a FLAME animation read from a file, a target fitted once, the motion on it.

- :func:`source_animation` / :func:`source_with_phones` — an ``infer`` ``.npz`` in its shape-key form (its
  lip corrections kept apart, its phones), else any FLAME sequence factorised
  (:func:`~voca_addon.core.animation.sequences.import_sequence`); checked for shape, finiteness and units.
- :func:`load_character` — the target mesh, its landmark pairs (or the automatic guess: ``"auto"``) and
  its own keys read and checked, then FLAME fitted to it (:mod:`.fit`): a :class:`Character`.
- :func:`retarget_motion` — the animation on the character (:mod:`.transfer`) and, with its own keys,
  their solved weights (:mod:`.keysolve`).

Used by the ``retarget`` command and ``batch --target`` (:mod:`voca_addon.cli`). Contract: numpy + scipy +
the core; raises :class:`~voca_addon.core.errors.VocaError` for every unusable input, before the fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError

DEFAULT_FPS = 60.0       # a source's rate when neither the caller nor the file gives one
AUTO = "auto"            # landmarks "auto": guess the pairs


def is_auto(landmarks) -> bool:
    """Whether a --landmarks value asks for the automatic guess."""
    return str(landmarks).strip().lower() == AUTO


def source_animation(source: str, template_path, fps=None):
    """SOURCE as a ShapeKeyAnimation on FLAME: an ``infer`` .npz's own shape-key form (basis, bias,
    weights — also when written with --no-vertices — and its corrections, kept apart), else the frames
    factorised (import-sequence)."""
    return source_with_phones(source, template_path, fps)[0]


def source_with_phones(source: str, template_path, fps=None):
    """(:func:`source_animation`, the phone track the ``.npz`` stores or None)."""
    from ..animation import npzextras, sequences, sources
    from ..flame import meshio
    if str(source).lower().endswith(".npz"):
        with sources.open_npz(source) as z:          # a truncated or damaged file: InputError naming it
            if {"basis", "bias", "weights"} <= set(z.files):
                mesh = meshio.read_mesh(template_path)
                template = mesh.vertices.astype(np.float32)
                rate = fps or (sources.check_rate(z["fps"], f"the fps stored in '{source}'") if "fps" in z
                               else DEFAULT_FPS)
                anim = _shape_key_source(z, template, rate, source)
                sources.check_frames(anim.vertices(_sample_frames(anim.num_frames)), template, source,
                                     mesh.path)
                return (anim.with_corrections(npzextras.read_corrections(z, anim.num_frames, source)),
                        npzextras.read_phones(z, source))
    return sequences.import_sequence(source, template_path, fps=fps), None


def _shape_key_source(z, template, rate, source):
    """An ``infer`` .npz's shape-key form (basis [K, V, 3], bias [V, 3], weights [F, K]) checked: InputError
    for shapes that disagree with each other or the template, or values that are not finite."""
    from ..animation.shapekeys import ShapeKeyAnimation
    basis, bias, weights = (np.asarray(z[m]) for m in ("basis", "bias", "weights"))
    if (basis.ndim != 3 or basis.shape[1:] != template.shape or bias.shape != template.shape
            or weights.ndim != 2 or weights.shape[1] != basis.shape[0] or not len(weights)):
        raise InputError(f"'{source}' holds basis {basis.shape}, bias {bias.shape} and weights {weights.shape}; "
                         f"expected [K, {len(template)}, 3], [{len(template)}, 3] and [frames, K] for the "
                         "template's mesh. Write it again with infer, or choose the matching --template.")
    for name, array in (("basis", basis), ("bias", bias), ("weights", weights)):
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise InputError(f"'{source}': its {name} holds non-numeric, NaN or infinite values.")
    return ShapeKeyAnimation(basis.astype(np.float32), bias.astype(np.float32), weights.astype(np.float32),
                             rate, template)


def _sample_frames(count: int, most: int = 64):
    """At most ``most`` frame indices spread evenly over ``count`` frames."""
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(int))


@dataclass(frozen=True)
class Character:
    """A target head fitted once: its mesh, the fit, its own keys (or None). Motion of any clip follows."""

    target: object          # meshio.Mesh
    fit: object             # character.fit.Fit
    keys: Optional[object]  # keyfiles.KeySet
    guess: Optional[object] = None  # guess.LandmarkGuess when the landmarks were guessed


def load_character(target_path, landmarks_path, keys_folder, template_path) -> Character:
    """Read and check the target, its landmark pairs and (optionally) its key folder, then fit. No bpy.

    ``landmarks_path`` ``"auto"`` guesses the pairs (:func:`~voca_addon.core.character.guess.guess_landmarks`).
    Raises :class:`~voca_addon.core.errors.VocaError` for an unreadable or unusable input, before the fit.
    """
    from . import fit as fitting, guess as guessing, keyfiles, landmarks
    from ..flame import meshio
    target = meshio.read_mesh(target_path)
    fitting.check_target(target.vertices, target.faces, f"'{target_path}'")
    guess = None
    if not is_auto(landmarks_path):
        flame_ids, target_ids = landmarks.read_pairs(landmarks_path)
    keys = keyfiles.read_key_folder(keys_folder, target) if keys_folder else None
    template = meshio.read_mesh(template_path)
    if is_auto(landmarks_path):
        guess = guessing.guess_landmarks(template.vertices, template.faces, target.vertices, target.faces)
        flame_ids, target_ids = guess.flame_ids, guess.target_ids
    fit = fitting.fit_target(template.vertices, template.faces, target.vertices, target.faces,
                             flame_ids, target_ids)
    return Character(target, fit, keys, guess)


def retarget_motion(character: Character, anim, matrix=None):
    """A FLAME animation on the character: (motion with the same weights, the rig's solved keys or None).

    ``matrix``: the transfer map :func:`~voca_addon.core.character.transfer.transfer_matrix` of this
    character when already built (a batch builds it once), else built here.
    """
    from . import keysolve, transfer
    motion = transfer.transfer(anim, character.fit, character.target.vertices, character.target.faces,
                               matrix=matrix)
    keys = character.keys
    solution = keysolve.solve_keys(motion, keys.deltas, keys.names) if keys is not None else None
    return motion, solution
