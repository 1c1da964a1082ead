"""Read existing mesh animations (VOCA's per-frame OBJs, arrays) and turn them into shape-key animations.

Inputs to :func:`read_sequence`:

* a **folder** of ``.obj`` / ``.ply`` files, one per frame, ordered by the **last integer** in each file
  name, numerically (``9.obj`` before ``10.obj``; ``frame_0002.obj``, ``meshes_10.obj``) — sorting names
  as text made VOCA's faces twitch (voca#131). Other files in the folder are ignored. Every frame must
  have the first frame's vertex count and triangles; the first file that differs is named;
* a ``.npy`` array [F, V, 3];
* a ``.npz`` archive with ``vertices`` [F, V, 3] and optionally ``fps`` (the CLI's and VOCA's layout).

:func:`import_sequence` factorizes the frames into a :class:`~.animation.ShapeKeyAnimation` of the
smallest rank that reproduces every vertex coordinate within a tolerance (VOCA's official output,
rounded to 6 decimals: 35 shapes + the mean reach 1 µm per coordinate; VOCA's decoder has 50).

Contract: stdlib + numpy (+ :mod:`.meshio`, :mod:`.animation`); pure functions, any thread; reads files,
writes nothing. Units are the files' (FLAME: metres).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .shapekeys import DEFAULT_FPS, ShapeKeyAnimation, factorize
from .sources import check_frames, check_rate, load_npy, open_npz
from ..errors import InputError, MeshError
from ..flame.meshio import read_mesh

MESH_EXTENSIONS = (".obj", ".ply")
DEFAULT_TOLERANCE = 1e-6            # metres per coordinate: above the 0.5 µm rounding of 6-decimal OBJs
_NUMBER = re.compile(r"\d+")


def frame_files(folder) -> List[str]:
    """The mesh files of ``folder`` in frame order (last integer of the file name, numerically).

    Raises
    ------
    InputError
        No mesh files, a file name without a number, or two files with the same number.
    """
    folder = os.fspath(folder)
    names = [n for n in os.listdir(folder)
             if n.lower().endswith(MESH_EXTENSIONS) and os.path.isfile(os.path.join(folder, n))]
    if not names:
        raise InputError(f"folder '{folder}' holds no .obj or .ply frames. Choose the folder of "
                         "per-frame meshes.")
    numbered = []
    for name in names:
        numbers = _NUMBER.findall(Path(name).stem)
        if not numbers:
            raise InputError(f"cannot place '{name}' in '{folder}' in the sequence: its name has no frame "
                             "number. Name frames like frame_0001.obj, or remove the file.")
        numbered.append((int(numbers[-1]), name))
    numbered.sort()
    for (a, first), (b, second) in zip(numbered, numbered[1:]):
        if a == b:
            raise InputError(f"'{first}' and '{second}' in '{folder}' both have frame number {a}. "
                             "Keep one of them.")
    return [os.path.join(folder, name) for _, name in numbered]


def _read_folder(folder: str) -> np.ndarray:
    """float32 [F, V, 3] from the folder's frames; refuses mixed topologies."""
    paths = frame_files(folder)
    first = read_mesh(paths[0])
    frames = np.empty((len(paths),) + first.vertices.shape, dtype=np.float32)
    frames[0] = first.vertices
    for index, path in enumerate(paths[1:], start=1):
        mesh = read_mesh(path)
        if mesh.vertices.shape != first.vertices.shape or not np.array_equal(mesh.faces, first.faces):
            what = (f"{len(mesh.vertices)} vertices" if mesh.vertices.shape != first.vertices.shape
                    else "different triangles")
            raise MeshError(f"'{path}' (frame {index + 1} of {len(paths)}) has {what} than the first "
                            f"frame '{paths[0]}' ({len(first.vertices)} vertices); every frame must share "
                            "one topology.")
        frames[index] = mesh.vertices
    return frames


def _read_array(path: str) -> Tuple[np.ndarray, Optional[float]]:
    """(frames, fps or None) from a .npy or .npz file (a damaged file: InputError, :mod:`.sources`)."""
    if not path.lower().endswith(".npz"):
        return load_npy(path), None
    with open_npz(path) as loaded:
        if "vertices" not in loaded:
            raise InputError(f"'{path}' has no 'vertices' array (it has "
                             f"{', '.join(loaded.files) or 'nothing'}). Save frames as "
                             "numpy.savez(path, vertices=[F, V, 3], fps=60).")
        fps = loaded["fps"] if "fps" in loaded else None
        return np.asarray(loaded["vertices"]), fps


def _check_template(vertices: np.ndarray, path: str, template) -> None:
    check_frames(vertices, template.vertices, path, template.path)


def read_sequence(path, template_path=None) -> Tuple[np.ndarray, Optional[float]]:
    """Read a mesh animation.

    Parameters
    ----------
    path : path
        A folder of per-frame ``.obj`` / ``.ply`` files, a ``.npy`` [F, V, 3] or a ``.npz`` with
        ``vertices`` (and optionally ``fps``).
    template_path : path, optional
        A mesh whose vertex count the frames must have.

    Returns
    -------
    vertices : float32 [F, V, 3]
    fps : float or None
        From the ``.npz`` when it has one.

    Raises
    ------
    InputError
        Missing path, empty folder, unreadable array file, wrong shape, non-finite values.
    MeshError
        A frame that cannot be read or whose topology differs; frames that do not fit the template.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        vertices, fps = _read_folder(path), None
    elif os.path.isfile(path):
        if not path.lower().endswith((".npy", ".npz")):
            raise InputError(f"'{path}' is not a sequence: choose a folder of per-frame meshes, a .npy "
                             "or a .npz file.")
        vertices, fps = _read_array(path)
    else:
        raise InputError(f"sequence '{path}' was not found. Check the path.")
    if vertices.ndim != 3 or vertices.shape[2] != 3 or 0 in vertices.shape[:2]:
        raise InputError(f"'{path}' holds frames of shape {vertices.shape}; expected [frames, vertices, 3].")
    if not np.issubdtype(vertices.dtype, np.number) or not np.all(np.isfinite(vertices)):
        raise InputError(f"'{path}' has non-numeric, NaN or infinite vertex positions.")
    if fps is not None:
        fps = check_rate(fps, f"the fps stored in '{path}'")
    if template_path is not None:
        _check_template(vertices, path, read_mesh(template_path))
    return vertices.astype(np.float32, copy=False), fps


def import_sequence(path, template_path, fps: Optional[float] = None,
                    tolerance: float = DEFAULT_TOLERANCE,
                    max_rank: Optional[int] = None) -> ShapeKeyAnimation:
    """Read a mesh animation and factorize it into shape keys (:func:`~.animation.factorize`).

    Parameters
    ----------
    fps : float, optional
        Frame rate; default: the file's own (``.npz``), else 60 (VOCA's).
    tolerance : float
        Largest per-coordinate error (template units) between a frame and its reconstruction; per-vertex
        distances can be up to √3 times larger. Below the files' own rounding (0.5 µm for 6-decimal OBJs)
        the rank grows to fit the rounding noise.
    max_rank : int, optional
        Cap on the number of shape keys (the tolerance may then be exceeded).

    Returns
    -------
    ShapeKeyAnimation
        Its template is the template file's vertices.
    """
    template = read_mesh(template_path)
    vertices, file_fps = read_sequence(path)
    _check_template(vertices, os.fspath(path), template)
    rate = fps if fps is not None else (file_fps if file_fps is not None else DEFAULT_FPS)
    if not (np.isfinite(rate) and rate > 0):
        raise InputError(f"fps must be a positive number, got {rate}.")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance must be a non-negative distance, got {tolerance}.")
    return factorize(vertices, template.vertices, fps=float(rate), tolerance=tolerance, max_rank=max_rank)
