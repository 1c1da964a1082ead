"""A user's animation source read and checked for what it claims (issue 19: no internal error on user input).

Two jobs, one place for every command that reads a source (``retarget``, ``import-sequence``, ``batch``'s
library and ``--resume``):

* **reading**: :func:`open_npz` / :func:`load_npy` open a ``.npz`` / ``.npy`` the user gave; a truncated or
  damaged file (zip, EOF, zlib, format errors), or one holding pickled objects, raises
  :class:`~voca_addon.core.errors.InputError` naming the file, also when the damage is only found while a
  member is read (the archive's directory sits at its end, a member's data may still be cut);
* **checking against a template** (:func:`check_frames`): shape [F, V, 3] with the template's V, finite
  numbers, and a size within ``SIZE_LIMIT``× of the template's (the spread of the vertices about their
  centroid, median over frames): a source in millimetres with a template in metres is refused with the
  ratio and the likely units, instead of a character 146 m wide;
* :func:`check_rate`: one frame-rate range (above 0, at most ``FPS_MAX``) for a rate a file stores (the
  CLI's ``--fps`` uses the same limit: :func:`voca_addon.cli.common.check_fps`).

Contract: stdlib + numpy; pure functions, any thread; reads files, writes nothing. Units: the files'.
"""
from __future__ import annotations

import os
import pickle
import zipfile
import zlib
from typing import Optional

import numpy as np

from ..errors import InputError, MeshError

FPS_MAX = 1000.0          # frames per second: every rate a command accepts is above 0 and at most this
SIZE_LIMIT = 5.0          # a source more than this many times larger (or smaller) than the template is refused
SIZE_FRAMES = 64          # the size is measured on at most this many frames, evenly spaced

# (source size / template size, the source's likely unit, the template's) for the message
_UNIT_RATIOS = ((1000.0, "millimetres", "metres"), (100.0, "centimetres", "metres"),
                (39.37, "inches", "metres"), (25.4, "millimetres", "inches"),
                (10.0, "millimetres", "centimetres"))
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, pickle.UnpicklingError)


def _unreadable(path, exc: BaseException, kind: str) -> InputError:
    """The InputError for a source file that numpy could not read."""
    text = str(exc) or type(exc).__name__
    if "pickle" in text.lower():
        return InputError(f"'{path}' holds Python objects (pickled data), which are not loaded: a pickle can "
                          f"run code. Save plain numeric arrays with numpy.save / numpy.savez.")
    return InputError(f"'{path}' is not a complete {kind} (truncated or damaged): {text}. Write or copy the "
                      f"file again, whole, and retry.")


class NpzSource:
    """An open ``.npz`` whose member reads raise :class:`InputError` naming the file when it is damaged.

    Use as a context manager (closes the archive). ``files``, ``in`` and ``[name]`` as ``numpy.lib.npyio.NpzFile``.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._z = np.load(self.path, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise _unreadable(self.path, exc, ".npz") from None
        if not isinstance(self._z, np.lib.npyio.NpzFile):
            if isinstance(self._z, np.ndarray):
                raise InputError(f"'{self.path}' is a .npy array, not a .npz archive; name it .npy or save "
                                 "it with numpy.savez.")
            raise _unreadable(self.path, ValueError("not a zip archive"), ".npz")

    @property
    def files(self):
        return self._z.files

    def __contains__(self, name) -> bool:
        return name in self._z.files

    def __getitem__(self, name) -> np.ndarray:
        try:
            return self._z[name]
        except KeyError:
            raise
        except _READ_ERRORS as exc:
            raise _unreadable(self.path, exc, ".npz") from None

    def close(self) -> None:
        self._z.close()

    def __enter__(self) -> "NpzSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_npz(path) -> NpzSource:
    """Open the user's ``.npz`` at ``path`` (see :class:`NpzSource`); InputError if it is no complete archive."""
    return NpzSource(path)


def load_npy(path) -> np.ndarray:
    """The array of the user's ``.npy`` at ``path``; InputError naming the file if it is truncated or damaged."""
    try:
        loaded = np.load(os.fspath(path), allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc, ".npy") from None
    if not isinstance(loaded, np.ndarray):
        loaded.close()
        raise InputError(f"'{path}' is a .npz archive, not a .npy array; name it .npz.")
    return loaded


def check_rate(fps, what: str) -> float:
    """``fps`` as a float if it is a frame rate above 0 and at most ``FPS_MAX``; else InputError naming ``what``."""
    try:
        rate = float(np.asarray(fps).item())
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a frame rate in frames per second, got {fps!r}.") from None
    if not (0 < rate <= FPS_MAX):
        raise InputError(f"{what} must be a frame rate above 0 and at most {FPS_MAX:g} frames per second, "
                         f"got {rate:g}.")
    return rate


def size_of(frames: np.ndarray) -> float:
    """The median over (at most ``SIZE_FRAMES``) frames of the RMS distance of the vertices to their centroid.

    Parameters
    ----------
    frames : float [F, V, 3] or [V, 3]
    """
    frames = np.asarray(frames)
    frames = frames[None] if frames.ndim == 2 else frames
    pick = frames[np.unique(np.linspace(0, len(frames) - 1, min(len(frames), SIZE_FRAMES)).round().astype(int))]
    pick = pick.astype(np.float64)
    centred = pick - pick.mean(axis=1, keepdims=True)
    return float(np.median(np.sqrt((centred ** 2).sum(axis=2).mean(axis=1))))


def _likely_units(ratio: float) -> str:
    """Words for a size ratio near a unit conversion ('' when none is near)."""
    for factor, source, template in _UNIT_RATIOS:
        for r, a, b in ((factor, source, template), (1.0 / factor, template, source)):
            if abs(np.log(ratio / r)) < np.log(1.3):
                divide = f"divide it by {factor:g}" if r > 1 else f"multiply it by {factor:g}"
                return f"it looks like {a} with a template in {b}: {divide}, or give a template in {a}"
    return "its unit differs from the template's: scale it to the template's unit"


def check_frames(frames: np.ndarray, template: np.ndarray, path, template_name: Optional[str] = None) -> None:
    """Refuse frames that cannot be a motion of ``template``: shape, numbers, size.

    Parameters
    ----------
    frames : [F, V, 3]           the source's vertex positions (or a sample of its frames)
    template : float [V, 3]      the rest mesh the source is read onto
    path : str                   the source, named in messages
    template_name : str          the template, named in messages

    Raises
    ------
    MeshError
        Another vertex count than the template's.
    InputError
        Not [F, V, 3] with F ≥ 1; not numbers or not finite; a size (:func:`size_of`)
        more than ``SIZE_LIMIT``× the template's or less than 1 / ``SIZE_LIMIT`` of it (the ratio and the
        likely units said).
    """
    frames, template = np.asarray(frames), np.asarray(template)
    named = f"the template '{template_name}'" if template_name else "the template"
    if frames.ndim != 3 or frames.shape[2] != 3 or 0 in frames.shape[:2]:
        raise InputError(f"'{path}' holds frames of shape {frames.shape}; expected [frames, vertices, 3].")
    if frames.shape[1] != len(template):
        raise MeshError(f"the frames of '{path}' have {frames.shape[1]} vertices but {named} has "
                         f"{len(template)}; choose the matching template.")
    if not np.issubdtype(frames.dtype, np.number) or not np.all(np.isfinite(frames)):
        raise InputError(f"'{path}' has non-numeric, NaN or infinite vertex positions.")
    ours, theirs = size_of(frames), size_of(template)
    if not theirs > 0:
        return                                  # a degenerate template is the template checks' business
    ratio = ours / theirs
    if not (1.0 / SIZE_LIMIT <= ratio <= SIZE_LIMIT):
        size = f"{float(f'{ratio:.2g}'):g}"                # two significant digits: 1000, 0.001, 39
        raise InputError(f"'{path}' is about {size}× the template's size ({named}): "
                         f"{_likely_units(ratio) if ratio > 0 else 'all its vertices sit at one point'}.")
