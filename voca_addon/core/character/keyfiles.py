"""A rig's shape keys as files: a folder of OBJ meshes with the target's topology, one per key.

Each ``<name>.obj`` is the whole mesh with key ``name`` at 1; ``Neutral.obj`` (any case), when present,
is the rest shape, else the target mesh is. Keys are the differences ``key − rest``.

Contract: numpy only (reads through :mod:`..flame.meshio`); user errors raise MeshError / InputError.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, MeshError
from ..flame import meshio

NEUTRAL = "neutral"


@dataclass(frozen=True)
class KeySet:
    """Attributes: rest float64 [V, 3]; deltas float64 [K, V, 3]; names tuple of K str (file stems)."""

    rest: np.ndarray
    deltas: np.ndarray
    names: tuple


def read_key_folder(folder, target: meshio.Mesh) -> KeySet:
    """Read every ``.obj`` in ``folder`` as a key of ``target``.

    Raises
    ------
    InputError
        Missing folder or no OBJ files in it.
    MeshError
        A file with another vertex count or other faces than the target (another topology).
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"--target-keys '{folder}' is not a folder. Give the folder of the rig's key OBJs.")
    files = sorted(glob.glob(os.path.join(folder, "*.obj")) + glob.glob(os.path.join(folder, "*.OBJ")))
    if not files:
        raise InputError(f"'{folder}' holds no .obj files; export one OBJ per shape key, named by the key.")
    rest, meshes = target.vertices, {}
    for path in files:
        mesh = meshio.read_mesh(path)
        if mesh.vertices.shape != target.vertices.shape or not np.array_equal(mesh.faces, target.faces):
            raise MeshError(f"'{path}' has {len(mesh.vertices)} vertices and {len(mesh.faces)} triangles; the "
                            f"target has {len(target.vertices)} and {len(target.faces)}. Export every key with "
                            "the target's topology (same vertices, same order).")
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem.lower() == NEUTRAL:
            rest = mesh.vertices
        else:
            meshes[stem] = mesh.vertices
    if not meshes:
        raise InputError(f"'{folder}' holds only the neutral mesh; add one OBJ per shape key.")
    names = tuple(meshes)
    deltas = np.stack([meshes[n] - rest for n in names])
    return KeySet(np.asarray(rest, np.float64), deltas, names)
