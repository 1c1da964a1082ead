"""Where an emotion comes from: the rule that turns a user's path into :class:`~.emotions.Emotion` s.

* ``*.pkl`` — a FLAME model: the built-in expression presets (:data:`.emotions.BUILTIN_PRESETS`);
* ``*.npy`` / ``*.npz`` — delta arrays (:func:`.emotions.from_delta_file`);
* a folder — target meshes (``.obj`` / ``.ply``, the emotion = the file stem) and their neutral: the
  ``neutral`` file if given, else the folder's ``neutral.obj`` / ``neutral.ply``;
* one ``.obj`` / ``.ply`` target — with ``neutral``.

Contract: numpy + :mod:`voca_addon.core` only (any thread). User errors raise
:class:`~.errors.InputError` with what to do.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence

from . import emotions as core_emotions
from .emotions import Emotion
from ..errors import InputError

MESH_SUFFIXES = (".obj", ".ply")
DELTA_SUFFIXES = (".npy", ".npz")
FLAME_MODEL_SUFFIX = ".pkl"
NEUTRAL_STEM = "neutral"


def source_kind(source, neutral=None, names: Optional[Sequence[str]] = None) -> str:
    """'flame' | 'deltas' | 'meshes' for an emotion source; raises InputError when it cannot work."""
    path = Path(os.fspath(source))
    if path.is_dir():
        targets, _ = folder_meshes(path, neutral)
        missing = [n for n in names or () if n not in {p.stem for p in targets}]
        if missing:
            raise InputError(f"The folder '{path}' has no target mesh named {', '.join(missing)} "
                             f"(.obj / .ply); it has {', '.join(sorted(p.stem for p in targets)) or 'none'}.")
        return "meshes"
    if not path.is_file():
        raise InputError(f"The emotion source '{path}' was not found. Check the path.")
    suffix = path.suffix.lower()
    if suffix == FLAME_MODEL_SUFFIX:
        return "flame"
    if suffix in DELTA_SUFFIXES:
        return "deltas"
    if suffix in MESH_SUFFIXES:
        if not neutral:
            raise InputError(f"The target mesh '{path}' needs its neutral mesh; set the neutral mesh.")
        if not os.path.isfile(neutral):
            raise InputError(f"The neutral mesh '{neutral}' was not found. Check the path.")
        return "meshes"
    raise InputError(f"'{path}' is not an emotion source. Choose a FLAME model (.pkl) for the built-in "
                     "presets, a .npy / .npz file of offsets, or a folder of target meshes with a neutral.")


def folder_meshes(folder: Path, neutral=None) -> tuple:
    """(targets, neutral path) of a folder source; the neutral is excluded from the targets."""
    meshes = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if neutral:
        reference = Path(os.fspath(neutral))
        if not reference.is_file():
            raise InputError(f"The neutral mesh '{reference}' was not found. Check the path.")
    else:
        named = [p for p in meshes if p.stem.lower() == NEUTRAL_STEM]
        if not named:
            raise InputError(f"The folder '{folder}' has no neutral.obj / neutral.ply; add the neutral mesh "
                             "the targets were sculpted from, or choose it as the neutral mesh.")
        reference = named[0]
    targets = [p for p in meshes if p.resolve() != reference.resolve()]
    if not targets:
        raise InputError(f"The folder '{folder}' holds no target meshes (.obj / .ply) besides the neutral.")
    return targets, reference


def load_emotions(source, names: Optional[Sequence[str]] = None, neutral=None) -> List[Emotion]:
    """Emotions from a source (see the module docstring for the rule), in file order or ``names``' order.

    Raises
    ------
    VocaError
        Missing or unreadable source, unknown names, inconsistent meshes.
    """
    kind = source_kind(source, neutral, names)
    path = Path(os.fspath(source))
    if kind == "flame":
        return core_emotions.from_flame_presets(path, names=names)
    if kind == "deltas":
        return core_emotions.from_delta_file(path, names=names)
    if path.is_dir():
        targets, reference = folder_meshes(path, neutral)
    else:
        targets, reference = [path], Path(os.fspath(neutral))
    if names is not None:
        by_stem = {p.stem: p for p in targets}
        unknown = [n for n in names if n not in by_stem]
        if unknown:
            raise InputError(f"'{path}' has no target mesh named {', '.join(unknown)}.")
        targets = [by_stem[n] for n in names]
    return core_emotions.from_target_meshes(targets, reference)
