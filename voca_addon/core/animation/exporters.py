"""Write animations to files other tools read: Blender / 3ds Max point caches (PC2) and per-frame OBJs.

Both writers take a :class:`~.animation.ShapeKeyAnimation` (frames are computed ``CHUNK_FRAMES`` at a time,
so memory stays bounded for long clips) or a float array [F, V, 3]. Vertex order is kept.

**PC2** (Blender's "Mesh Cache" modifier, 3ds Max): little-endian, a 32-byte header —
``char[12] 'POINTCACHE2\\0'``, ``int32 version = 1``, ``int32 num_points``, ``float32 start_frame``,
``float32 sample_rate``, ``int32 num_samples`` — then ``num_samples × num_points × 3`` float32.

**Atomic writes** (:mod:`voca_addon.core.outputs`). Every file is written under a temporary name in the
destination's folder and renamed into place, so a failure leaves no partial file; an OBJ sequence is
written into a temporary folder (:class:`~voca_addon.core.outputs.StagedFolder`) renamed to the
destination at the end. An existing non-empty destination folder is refused unless ``overwrite=True``
(then only files with the sequence's own names, ``<basename>_<number>.obj``, are replaced or removed,
each file whole; other files stay). Inputs are validated before anything is written.

Contract: stdlib + numpy (+ :mod:`.meshio`, :mod:`.animation`); pure functions, any thread.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from .shapekeys import ShapeKeyAnimation
from .. import outputs
from ..errors import InputError, MeshError
from ..flame.meshio import write_obj

PC2_MAGIC = b"POINTCACHE2\0"
PC2_VERSION = 1
PC2_HEADER = struct.Struct("<12siiffi")          # magic, version, points, start frame, sample rate, samples
CHUNK_FRAMES = 64                                # frames computed at once from a ShapeKeyAnimation
DEFAULT_DIGITS = 4                               # zero padding of frame numbers in OBJ file names

Frames = Union[ShapeKeyAnimation, np.ndarray]


def _shape_of(frames: Frames) -> Tuple[int, int]:
    """(num_frames, num_vertices), validating an array input."""
    if isinstance(frames, ShapeKeyAnimation):
        return frames.num_frames, frames.num_vertices
    array = np.asarray(frames)
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape[:2]:
        raise InputError(f"frames must be a [frames, vertices, 3] array, got shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise InputError("frames contain non-numeric, NaN or infinite vertex positions.")
    return int(array.shape[0]), int(array.shape[1])


def iter_chunks(frames: Frames, chunk: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """Yield float32 [≤chunk, V, 3] blocks of consecutive frames."""
    count, _ = _shape_of(frames)
    for first in range(0, count, chunk):
        stop = min(first + chunk, count)
        if isinstance(frames, ShapeKeyAnimation):
            block = frames.vertices(np.arange(first, stop))
            if not np.all(np.isfinite(block)):
                raise InputError(f"the animation has NaN or infinite vertices in frames {first}..{stop - 1}.")
            yield block.astype(np.float32, copy=False)
        else:
            yield np.asarray(frames[first:stop], dtype=np.float32)


def _check_folder(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"cannot write '{path}': folder '{folder}' does not exist. Create it first.")


# ---------------------------------------------------------------------------- PC2

def write_pc2(path, frames: Frames, start_frame: float = 0.0, sample_rate: float = 1.0) -> None:
    """Write a PC2 point cache (atomically).

    Parameters
    ----------
    path : path
        Destination ``.pc2`` file (replaced if it exists).
    frames : ShapeKeyAnimation or float [F, V, 3]
    start_frame : float
        Frame of the first sample.
    sample_rate : float
        Frames between samples (1.0: one sample per frame).

    Raises
    ------
    InputError
        Bad frames or header values, or a missing destination folder.
    """
    path = os.fspath(path)
    count, points = _shape_of(frames)
    if not (np.isfinite(start_frame) and np.isfinite(sample_rate) and sample_rate > 0):
        raise InputError(f"PC2 needs a finite start frame and a positive sample rate "
                         f"(got {start_frame}, {sample_rate}).")
    _check_folder(path)

    def write(temp):
        with open(temp, "wb") as handle:
            handle.write(PC2_HEADER.pack(PC2_MAGIC, PC2_VERSION, points, float(start_frame),
                                         float(sample_rate), count))
            for block in iter_chunks(frames):
                handle.write(block.astype("<f4", copy=False).tobytes())
    outputs.write_exact(Path(path), write)                  # temporary + rename: never a partial .pc2


def read_pc2(path) -> Tuple[np.ndarray, float, float]:
    """Read a PC2 point cache.

    Returns
    -------
    frames : float32 [F, V, 3]
    start_frame : float
    sample_rate : float

    Raises
    ------
    MeshError
        Missing file, wrong magic or version, or a size that disagrees with the header.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MeshError(f"point cache '{path}' was not found. Check the path.")
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < PC2_HEADER.size or data[:len(PC2_MAGIC)] != PC2_MAGIC:
        raise MeshError(f"'{path}' is not a PC2 point cache (no POINTCACHE2 header).")
    _, version, points, start, rate, count = PC2_HEADER.unpack_from(data)
    if version != PC2_VERSION or points < 0 or count < 0:
        raise MeshError(f"'{path}' is a PC2 cache of version {version} with {points} points and {count} "
                        "samples; only version 1 is read.")
    expected = PC2_HEADER.size + count * points * 3 * 4
    if len(data) != expected:
        raise MeshError(f"'{path}' has {len(data)} bytes but its header promises {expected}; the file is "
                        "truncated or corrupt.")
    frames = np.frombuffer(data, dtype="<f4", offset=PC2_HEADER.size).reshape(count, points, 3)
    return frames.astype(np.float32), float(start), float(rate)


# ---------------------------------------------------------------------------- OBJ sequence

def _check_faces(faces: Optional[np.ndarray], num_vertices: int) -> Optional[np.ndarray]:
    if faces is None:
        return None
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] < 3 or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(f"faces must be an integer [F, 3] array, got {faces.dtype} {faces.shape}.")
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise InputError(f"faces index vertices outside 0..{num_vertices - 1}; use the faces of the "
                         "animated mesh.")
    return faces


def _prepare_folder(folder: str, overwrite: bool) -> None:
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"'{folder}' is a file; choose a folder for the OBJ sequence.")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        raise InputError(f"folder '{folder}' is not empty. Choose an empty or new folder, or allow "
                         "overwriting.")
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write into '{folder}': folder '{parent}' does not exist. Create it first.")


def write_obj_sequence(folder, frames: Frames, faces: Optional[np.ndarray], basename: str = "frame",
                       digits: int = DEFAULT_DIGITS, overwrite: bool = False) -> List[str]:
    """Write one OBJ per frame, ``<folder>/<basename>_<frame:0digits>.obj`` (frames numbered from 0).

    Parameters
    ----------
    folder : path
        Destination folder: new, empty, or (with ``overwrite``) holding an earlier export.
    frames : ShapeKeyAnimation or float [F, V, 3]
    faces : int [T, 3] or None
        0-based triangles (e.g. the template's ``Mesh.faces``).
    basename, digits :
        File name pattern; numbers longer than ``digits`` are written in full.

    Returns
    -------
    list of str
        The written files in frame order.

    Raises
    ------
    InputError
        Bad frames, faces or name pattern; a non-empty folder without ``overwrite``.
    """
    folder = os.path.abspath(os.fspath(folder))
    count, points = _shape_of(frames)
    faces = _check_faces(faces, points)
    if not basename or os.sep in basename or (os.altsep and os.altsep in basename):
        raise InputError(f"basename {basename!r} must be a plain file name prefix.")
    if not 1 <= int(digits) <= 12:
        raise InputError(f"digits must be 1..12, got {digits}.")
    _prepare_folder(folder, overwrite)
    names = [f"{basename}_{index:0{int(digits)}d}.obj" for index in range(count)]
    pattern = re.compile(re.escape(basename) + r"_\d+\.obj")
    with outputs.StagedFolder(Path(folder)) as staged:
        temp, index = staged.temp(), 0
        for block in iter_chunks(frames):
            for vertices in block:
                write_obj(temp / names[index], vertices, faces)
                index += 1
        staged.commit(remove=pattern.fullmatch)           # an earlier export's extra frames go
    return [os.path.join(folder, name) for name in names]
