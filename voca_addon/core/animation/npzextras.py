"""The ``.npz`` members beside VOCA's exact ones: correction keys and the phone track.

An animation file (``infer``, ``animate --npz``, the batch) always holds VOCA's exact ``weights`` [F, D],
``basis``, ``bias``, ``template``, ``fps`` and ``names``. Two optional groups sit beside them:

* corrections (lip closures): ``correction_basis`` float32 [C, V, 3], ``correction_weights`` float32
  [F, C], ``correction_names`` str [C] (:class:`~.shapekeys.Corrections`); ``vertices``, when written,
  include them, so ``template + bias + weights @ basis`` is the exact VOCA result and adding
  ``correction_weights @ correction_basis`` gives the vertices;
* phones: ``phones`` str [P] (ARPAbet, upper case, no stress digits), ``phone_times`` float64 [P, 2]
  (start, end in seconds from the audio's start), ``phone_words`` str [P] (the word each phone belongs
  to, '' if none) and ``phone_source`` str [] (``detected`` / ``aligned`` / ``textgrid`` / ``rhubarb`` / ``tsv`` /
  ``json``).

Strings are numpy unicode arrays (``np.load(..., allow_pickle=False)`` reads them).

Contract: numpy only (``core.phonemes`` imported when a track is rebuilt); pure functions.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from ..errors import InputError
from .shapekeys import Corrections, ShapeKeyAnimation
from .sources import check_rate, open_npz

CORRECTION_MEMBERS = ("correction_basis", "correction_weights", "correction_names")
PHONE_MEMBERS = ("phones", "phone_times", "phone_words", "phone_source")


def correction_arrays(anim: ShapeKeyAnimation) -> Dict[str, np.ndarray]:
    """The correction members of ``anim`` (empty without corrections)."""
    c = anim.corrections
    if c is None:
        return {}
    return {"correction_basis": np.asarray(c.basis, np.float32),
            "correction_weights": np.asarray(c.weights, np.float32),
            "correction_names": np.array(c.names, dtype=str)}


def phone_arrays(track) -> Dict[str, np.ndarray]:
    """The phone members of a ``PhoneTrack`` (empty for None). An empty track keeps [0] / [0, 2] shapes."""
    if track is None:
        return {}
    phones = tuple(track.phones)
    return {"phones": np.array([p.phone for p in phones], dtype="U8").reshape(-1),
            "phone_times": np.array([(p.start, p.end) for p in phones], np.float64).reshape(-1, 2),
            "phone_words": np.array([p.word for p in phones], dtype=str).reshape(-1),
            "phone_source": np.array(str(track.source))}


def read_corrections(z, frames: int, path="the file") -> Optional[Corrections]:
    """The corrections of an open ``np.load`` archive ``z`` (None when it has none)."""
    present = [m for m in CORRECTION_MEMBERS if m in z.files]
    if not present:
        return None
    if len(present) != len(CORRECTION_MEMBERS):
        raise InputError(f"'{path}' has {', '.join(present)} but not all of {', '.join(CORRECTION_MEMBERS)}; "
                         "write it again with the add-on.")
    corrections = Corrections(np.asarray(z["correction_basis"], np.float32),
                              np.asarray(z["correction_weights"], np.float32),
                              tuple(str(n) for n in z["correction_names"]))
    if corrections.weights.shape[0] != frames:
        raise InputError(f"'{path}': correction_weights has {corrections.weights.shape[0]} frames, the "
                         f"animation {frames}; write it again with the add-on.")
    return corrections


def read_phones(z, path="the file"):
    """The ``PhoneTrack`` stored in an open archive ``z`` (or the ``.npz`` file at path ``z``), or None."""
    if isinstance(z, (str, os.PathLike)):
        with open_npz(z) as archive:
            return read_phones(archive, z)
    if "phones" not in z.files or "phone_times" not in z.files:
        return None
    from ..phonemes import Phone, PhoneTrack
    names, times = z["phones"], np.asarray(z["phone_times"], np.float64).reshape(-1, 2)
    words = z["phone_words"] if "phone_words" in z.files else np.array([""] * len(names))
    if len(times) != len(names) or len(words) != len(names):
        raise InputError(f"'{path}': phones, phone_times and phone_words differ in length.")
    source = str(z["phone_source"]) if "phone_source" in z.files else "json"
    return PhoneTrack(tuple(Phone(str(n), float(a), float(b), str(w)) for n, (a, b), w in zip(names, times, words)),
                      source)


def load_animation(path) -> ShapeKeyAnimation:
    """An animation file's shape-key form back (VOCA's exact weights + its corrections, kept apart).

    Raises
    ------
    InputError
        The file is truncated or damaged (:mod:`.sources`), lacks ``weights`` / ``basis`` / ``bias`` /
        ``template`` / ``fps``, or they disagree.
    """
    try:
        with open_npz(path) as z:
            missing = [m for m in ("weights", "basis", "bias", "template", "fps") if m not in z.files]
            if missing:
                raise InputError(f"'{path}' has no {', '.join(missing)}: not an animation written by infer, "
                                 "animate --npz or batch.")
            names = tuple(str(n) for n in z["names"]) if "names" in z.files else ()
            weights = np.asarray(z["weights"], np.float32)
            anim = ShapeKeyAnimation(np.asarray(z["basis"], np.float32), np.asarray(z["bias"], np.float32),
                                     weights, check_rate(z["fps"], f"the fps stored in '{path}'"),
                                     np.asarray(z["template"], np.float32), names)
            return anim.with_corrections(read_corrections(z, len(weights), path))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read '{path}' ({exc}).") from None


def is_animation_file(path) -> bool:
    """Whether the ``.npz`` at ``path`` holds the shape-key form (``weights``, ``basis``, ``bias``, ``template``).

    Raises InputError naming the file when it is no complete ``.npz`` (:func:`.sources.open_npz`)."""
    with open_npz(path) as z:
        return all(m in z.files for m in ("weights", "basis", "bias", "template"))
