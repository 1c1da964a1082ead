"""VOCA's texture for a FLAME head: UV coordinates from ``texture_mesh.obj``, mapped onto any mesh in
FLAME's vertex order.

VOCA's repository ships ``template/texture_mesh.obj`` (FLAME's 5023 vertices and 9976 triangles, plus
5118 texture coordinates: a vertex on a UV seam has several) and ``texture_mesh.png``. A texture
coordinate belongs to a *face corner*, not a vertex, so the UVs are carried per corner (Blender's
*loops*):

1. **read** — :func:`read_texture_obj`: the ``vt`` rows (u, v in 0..1) and, per triangle, its vertex
   indices and its texture indices (``f v/vt/vn``);
2. **match** — :func:`loop_uvs`: each polygon of the head (its three vertex indices, in the head's loop
   order) is found among the OBJ's triangles by its vertex set, and each corner takes the UV the OBJ
   gives that vertex in that triangle. The head's own face order and corner rotation may differ from the
   OBJ's; its vertex order must be FLAME's (checked: every polygon must exist in the OBJ).

:func:`find_texture` looks for the pair next to the template / in the model folder, the way
:mod:`voca_addon.core.models.modelfiles` finds the other model files.

Contract: numpy + stdlib; raises :class:`~voca_addon.core.errors.MeshError` for an unreadable OBJ or one
that does not fit the head. Units: UV in texture space (0..1, v up as in OBJ and Blender).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Tuple

import numpy as np

from ..errors import MeshError

TEXTURE_OBJ, TEXTURE_PNG = "texture_mesh.obj", "texture_mesh.png"
TEXTURE_URL = "https://github.com/TimoBolkart/voca/tree/master/template (texture_mesh.obj / .png)"


@dataclass(frozen=True)
class TextureMesh:
    """A textured triangle mesh's UV layout.

    Attributes
    ----------
    uv : float32 [T, 2]
        Texture coordinates (``vt`` rows), 0..1.
    faces : int64 [F, 3]
        Vertex indices per triangle, 0-based.
    uv_faces : int64 [F, 3]
        Texture-coordinate indices per triangle corner, 0-based (rows of ``uv``).
    path : str
    """

    uv: np.ndarray
    faces: np.ndarray
    uv_faces: np.ndarray
    path: str


def find_texture(folders: Iterable[Optional[os.PathLike]]) -> Optional[Tuple[Path, Path]]:
    """The first folder holding both ``texture_mesh.obj`` and ``texture_mesh.png``, as (obj, png); else None."""
    for folder in folders:
        if folder is None:
            continue
        obj, png = Path(os.path.expanduser(folder)) / TEXTURE_OBJ, Path(os.path.expanduser(folder)) / TEXTURE_PNG
        if obj.is_file() and png.is_file():
            return obj, png
    return None


def read_texture_obj(path: os.PathLike) -> TextureMesh:
    """Read the UV layout of a triangle OBJ whose faces carry texture indices (``f v/vt[/vn]``).

    Raises
    ------
    MeshError
        Unreadable file, a face without texture indices or with other than 3 corners, or an index out of
        range.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise MeshError(f"Cannot read the texture mesh '{path}' ({exc.strerror or exc}). Download it again "
                        f"from {TEXTURE_URL}.") from None
    uv, corners = [], []
    try:
        for line in lines:
            words = line.split()
            if words and words[0] == "vt":
                uv.append((float(words[1]), float(words[2])))
            elif words and words[0] == "f":
                if len(words) != 4:
                    raise ValueError
                pairs = [w.split("/")[:2] for w in words[1:]]
                corners.append([(int(p[0]), int(p[1])) for p in pairs])     # "f 1 2 3": no vt → IndexError
    except (IndexError, ValueError):
        raise MeshError(f"'{path}' is not a triangle OBJ with texture coordinates (line '{line.strip()}'). "
                        f"Download texture_mesh.obj again from {TEXTURE_URL}.") from None
    table = np.asarray(corners, dtype=np.int64).reshape(-1, 3, 2) - 1     # [F, 3, (v, vt)], 0-based
    uv = np.asarray(uv, dtype=np.float32).reshape(-1, 2)
    if not len(table) or table[..., 1].min() < 0 or table[..., 1].max() >= len(uv) or table[..., 0].min() < 0:
        raise MeshError(f"'{path}' has no faces or texture indices outside its {len(uv)} texture coordinates. "
                        f"Download texture_mesh.obj again from {TEXTURE_URL}.")
    return TextureMesh(uv, table[..., 0].copy(), table[..., 1].copy(), path)


def _face_keys(faces: np.ndarray) -> np.ndarray:
    """int64 [F]: one number per vertex set (sorted indices in base 2^21)."""
    s = np.sort(faces, axis=1)
    return (s[:, 0] << 42) | (s[:, 1] << 21) | s[:, 2]


def loop_uvs(polygons: np.ndarray, texture: TextureMesh) -> np.ndarray:
    """UVs per corner of a head's triangles, from the texture mesh's corner UVs.

    Parameters
    ----------
    polygons : int [P, 3]
        The head's triangles as vertex indices, in its loop order (FLAME's vertex numbering).
    texture : TextureMesh

    Returns
    -------
    float32 [P, 3, 2]
        ``uv[p, c]`` for corner ``c`` of polygon ``p``.

    Raises
    ------
    MeshError
        A polygon that is not one of the texture mesh's triangles (not FLAME's topology).
    """
    polygons = np.asarray(polygons, dtype=np.int64).reshape(-1, 3)
    # 1. match: each head polygon → the OBJ triangle with the same vertex set
    keys = _face_keys(texture.faces)
    order = np.argsort(keys, kind="stable")
    wanted = _face_keys(polygons)
    slot = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    tri = order[slot]
    missing = np.flatnonzero(keys[tri] != wanted)
    if missing.size:
        raise MeshError(f"The head's faces do not match the texture mesh '{texture.path}' ({missing.size} of "
                        f"{len(polygons)} triangles not found, e.g. vertices {polygons[missing[0]].tolist()}): "
                        "the head is not in FLAME's topology, so VOCA's texture cannot be used.")
    # 2. corners: head corner c of polygon p is the OBJ corner of tri[p] holding the same vertex
    same = texture.faces[tri][:, None, :] == polygons[:, :, None]          # [P, 3 head corners, 3 OBJ corners]
    corner = np.argmax(same, axis=2)                                        # [P, 3]
    return texture.uv[texture.uv_faces[tri[:, None], corner]]
