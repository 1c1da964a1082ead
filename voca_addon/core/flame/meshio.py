"""Template / animation meshes: read PLY and OBJ, write OBJ and binary PLY.

Vertex order is sacred: VOCA's offsets are indexed by FLAME vertex number, so readers keep the file's
vertex order and never merge, split or reorder vertices (an OBJ with UVs keeps its ``v`` list as is; UV and
normal indices of ``f a/b/c`` are ignored). Faces are triangulated by fans (polygon a b c d → a b c, a c d).

PLY: ``ascii``, ``binary_little_endian`` and ``binary_big_endian``; vertex ``x y z`` of any numeric type
(other vertex properties skipped); faces from the list property ``vertex_indices`` or ``vertex_index``
with any integer count and index types; other elements skipped by their declared layout.
OBJ: ``v`` and ``f`` lines only; 1-based or negative (relative) indices.
``write_obj`` prints coordinates with 6 decimals (``%f``, like VOCA's per-frame OBJs); ``write_ply`` writes
binary little-endian PLY (float64 coordinates by default, lossless).

Errors a user can cause raise ``MeshError`` naming the file: missing, empty, corrupt or truncated file,
unsupported PLY format, no vertices, face indices out of range.

Contract: stdlib + numpy; pure functions, any thread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import MeshError

PLY_TYPES = {  # PLY scalar type names → numpy type codes (without byte order)
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
PLY_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
FACE_LISTS = ("vertex_indices", "vertex_index")
OBJ_DECIMALS = 6            # digits after the point in written OBJ coordinates (VOCA's %f)


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh.

    Attributes
    ----------
    vertices : np.ndarray
        float64 [V, 3], file order, read-only (units of the file; FLAME: metres).
    faces : np.ndarray
        int32 [F, 3], 0-based vertex indices, read-only.
    path : str
        Source file ('' when built in memory).
    """

    vertices: np.ndarray
    faces: np.ndarray
    path: str = ""


@dataclass
class _Element:
    name: str
    count: int
    props: list  # (name, type code) or (name, (count code, item code)) for lists


def read_mesh(path) -> Mesh:
    """Read a ``.ply`` or ``.obj`` mesh (chosen by content: PLY files start with ``ply``).

    Returns
    -------
    Mesh
        vertices float64 [V, 3] in file order, faces int32 [F, 3] (fan-triangulated).

    Raises
    ------
    MeshError
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MeshError(f"Mesh file '{path}' was not found. Check the path.")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise MeshError(f"Cannot read mesh file '{path}': {exc.strerror}.") from exc
    if not data.strip():
        raise MeshError(f"Mesh file '{path}' is empty. Choose a .ply or .obj mesh.")
    if data[:3] == b"ply":
        vertices, polygons = _read_ply(data, path)
    elif path.lower().endswith(".obj") or data.startswith(b"v ") or b"\nv " in data[:65536]:
        vertices, polygons = _read_obj(data, path)
    else:
        raise MeshError(f"'{path}' is neither a PLY nor an OBJ mesh. Export the template as .ply or .obj.")
    if vertices.shape[0] == 0:
        raise MeshError(f"'{path}' contains no vertices. Choose a mesh with geometry.")
    faces = _triangulate(polygons, vertices.shape[0], path)
    for array in (vertices, faces):
        array.setflags(write=False)
    return Mesh(vertices=vertices, faces=faces, path=path)


def _triangulate(polygons: list, num_vertices: int, path: str) -> np.ndarray:
    """Fan-triangulate polygons (list of int arrays [F, k] of equal k, or single polygons) → int32 [T, 3]."""
    tris = []
    for block in polygons:
        block = np.asarray(block, dtype=np.int64).reshape(-1, np.shape(block)[-1])
        if block.shape[1] < 3:
            raise MeshError(f"'{path}' has a face with {block.shape[1]} vertices; faces need at least 3.")
        for k in range(1, block.shape[1] - 1):
            tris.append(np.stack([block[:, 0], block[:, k], block[:, k + 1]], axis=1))
    faces = np.concatenate(tris) if tris else np.zeros((0, 3), dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise MeshError(f"'{path}' has face indices outside its {num_vertices} vertices; the file is corrupt.")
    return faces.astype(np.int32)


def _parse_ply_header(data: bytes, path: str):
    """→ (format name, [_Element], byte offset of the body)."""
    end = data.find(b"end_header")
    if end < 0:
        raise MeshError(f"'{path}' is a corrupt PLY file: 'end_header' is missing.")
    newline = data.find(b"\n", end)
    body = len(data) if newline < 0 else newline + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []
    for line in lines[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        try:
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append(_Element(words[1], int(words[2]), []))
            elif words[0] == "property" and words[1] == "list":
                elements[-1].props.append((words[4], (PLY_TYPES[words[2]], PLY_TYPES[words[3]])))
            elif words[0] == "property":
                elements[-1].props.append((words[2], PLY_TYPES[words[1]]))
        except (IndexError, KeyError, ValueError):
            raise MeshError(f"'{path}' has a corrupt PLY header line: '{line}'.") from None
    if fmt not in PLY_FORMATS:
        raise MeshError(f"'{path}' uses PLY format '{fmt}'; only ascii, binary_little_endian and "
                        "binary_big_endian are read. Re-export the mesh.")
    return fmt, elements, body


def _read_ply(data: bytes, path: str):
    fmt, elements, offset = _parse_ply_header(data, path)
    order = PLY_FORMATS[fmt]
    if order is None:
        reader, source, position = _ply_ascii_element, data[offset:].split(), 0
    else:
        reader, source, position = _ply_binary_element, data, offset
    vertices, polygons = None, []
    for element in elements:
        columns, position = reader(source, position, element, order, path)
        if element.name == "vertex":
            missing = [axis for axis in "xyz" if axis not in columns]
            if missing:
                raise MeshError(f"'{path}' has vertices without {', '.join(missing)} coordinates.")
            vertices = np.stack([columns[a].astype(np.float64) for a in "xyz"], axis=1)
        elif element.name == "face":
            polygons = next((columns[n] for n in FACE_LISTS if n in columns), [])
    if vertices is None:
        raise MeshError(f"'{path}' contains no vertices (no 'vertex' element). Choose a mesh with geometry.")
    return vertices, polygons


def _ply_binary_element(data: bytes, offset: int, element: _Element, order: str, path: str):
    """Read one element → ({property: array or list of polygon blocks}, new byte offset)."""
    lists = [p for p in element.props if isinstance(p[1], tuple)]
    if lists and element.count == 0:
        return {name: [] for name, _ in element.props}, offset
    if not lists:
        dtype = np.dtype([(name, order + code) for name, code in element.props])
        table, end = _frombuffer(data, dtype, element.count, offset, path)
        return {name: table[name] for name, _ in element.props}, end
    # Fast path: every row's lists have the counts of the first row (all triangles, all quads, ...).
    counts = _first_row_counts(data, offset, element, order, path)
    fields = []
    for (name, code), count in zip(element.props, counts):
        if isinstance(code, tuple):
            fields += [(name + "__n", order + code[0]), (name, order + code[1], (count,))]
        else:
            fields.append((name, order + code))
    dtype = np.dtype(fields)
    if offset + dtype.itemsize * element.count > len(data):     # not uniform (or truncated): row by row
        return _ply_binary_rows(data, offset, element, order, path)
    table, end = _frombuffer(data, dtype, element.count, offset, path)
    if all(np.all(table[name + "__n"] == count) for (name, code), count in zip(element.props, counts)
           if isinstance(code, tuple)):
        return {name: [table[name]] if isinstance(code, tuple) else table[name]
                for name, code in element.props}, end
    return _ply_binary_rows(data, offset, element, order, path)


def _frombuffer(data, dtype, count, offset, path):
    if offset + dtype.itemsize * count > len(data):
        raise MeshError(f"'{path}' is truncated: its PLY body is shorter than the header declares.")
    table = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return table, offset + dtype.itemsize * count


def _first_row_counts(data, offset, element, order, path):
    counts = []
    for name, code in element.props:
        if isinstance(code, tuple):
            value, offset = _frombuffer(data, np.dtype(order + code[0]), 1, offset, path)
            counts.append(int(value[0]))
            offset += np.dtype(code[1]).itemsize * counts[-1]
        else:
            counts.append(0)
            offset += np.dtype(code).itemsize
    return counts


def _ply_binary_rows(data, offset, element, order, path):
    """Slow path for rows with varying list lengths: one row at a time."""
    columns = {name: [] for name, _ in element.props}
    for _ in range(element.count):
        for name, code in element.props:
            if isinstance(code, tuple):
                count, offset = _frombuffer(data, np.dtype(order + code[0]), 1, offset, path)
                items, offset = _frombuffer(data, np.dtype(order + code[1]), int(count[0]), offset, path)
                columns[name].append(items[None, :])
            else:
                value, offset = _frombuffer(data, np.dtype(order + code), 1, offset, path)
                columns[name].append(value[0])
    return {name: values if isinstance(code, tuple) else np.array(values)
            for (name, code), values in zip(element.props, columns.values())}, offset


def _ply_ascii_element(tokens: list, position: int, element: _Element, order, path: str):
    """Read one ASCII element from the token list → (columns, new token index)."""
    lists = [p for p in element.props if isinstance(p[1], tuple)]
    try:
        if not lists:
            width = len(element.props)
            end = position + width * element.count
            if end > len(tokens):
                raise IndexError
            table = np.array(tokens[position:end], dtype=np.float64).reshape(element.count, width)
            return {name: table[:, i] for i, (name, _) in enumerate(element.props)}, end
        if len(element.props) == 1 and element.count:
            name = element.props[0][0]
            count = int(tokens[position])
            end = position + element.count * (count + 1)
            if end <= len(tokens):
                table = np.array(tokens[position:end], dtype=np.int64).reshape(element.count, count + 1)
                if np.all(table[:, 0] == count):
                    return {name: [table[:, 1:]]}, end
        columns = {name: [] for name, _ in element.props}
        for _ in range(element.count):
            for name, code in element.props:
                if isinstance(code, tuple):
                    count = int(tokens[position])
                    columns[name].append(np.array([[int(t) for t in tokens[position + 1:position + 1 + count]]]))
                    position += 1 + count
                else:
                    columns[name].append(float(tokens[position]))
                    position += 1
    except (IndexError, ValueError):
        raise MeshError(f"'{path}' is a corrupt or truncated ASCII PLY file (element '{element.name}').") from None
    return {name: values if isinstance(code, tuple) else np.array(values)
            for (name, code), values in zip(element.props, columns.values())}, position


def _read_obj(data: bytes, path: str):
    vertices, polygons = [], []
    try:
        for line in data.decode("utf-8", errors="replace").splitlines():
            words = line.split()
            if not words:
                continue
            if words[0] == "v":
                vertices.append((float(words[1]), float(words[2]), float(words[3])))
            elif words[0] == "f":
                polygon = [int(w.split("/")[0]) for w in words[1:]]
                polygons.append(np.array([[i - 1 if i > 0 else len(vertices) + i for i in polygon]]))
    except (IndexError, ValueError):
        raise MeshError(f"'{path}' is a corrupt OBJ file (line '{line.strip()}').") from None
    return np.array(vertices, dtype=np.float64).reshape(-1, 3), _group(polygons)


def _group(polygons: list) -> list:
    """Stack single-polygon rows into blocks of equal size (keeping face order within each size)."""
    if polygons and all(p.shape[1] == polygons[0].shape[1] for p in polygons):
        return [np.concatenate(polygons)]
    return polygons


def write_obj(path, vertices: np.ndarray, faces: np.ndarray | None = None) -> None:
    """Write ``v x y z`` lines with 6 decimals and ``f a b c`` lines (1-based), vertex order kept.

    Parameters
    ----------
    vertices : float [V, 3]
    faces : int [F, k] or None (0-based)
    """
    verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    with open(os.fspath(path), "w", encoding="ascii", newline="\n") as handle:
        np.savetxt(handle, verts, fmt=f"v %.{OBJ_DECIMALS}f %.{OBJ_DECIMALS}f %.{OBJ_DECIMALS}f")
        if faces is not None and len(faces):
            tris = np.asarray(faces, dtype=np.int64)
            np.savetxt(handle, tris + 1, fmt="f" + " %d" * tris.shape[1])


def write_ply(path, vertices: np.ndarray, faces: np.ndarray | None = None, dtype=np.float64) -> None:
    """Write a binary little-endian PLY: vertex x y z (``dtype``: float64 or float32), faces as
    ``list uchar int vertex_indices``.

    Parameters
    ----------
    vertices : float [V, 3]
    faces : int [F, k] or None (0-based, k <= 255)
    """
    verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    tris = np.zeros((0, 3), dtype=np.int64) if faces is None else np.asarray(faces, dtype=np.int64)
    kind = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}[np.dtype(dtype)]
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by voca_addon\n"
              f"element vertex {verts.shape[0]}\n" + "".join(f"property {kind} {a}\n" for a in "xyz")
              + f"element face {tris.shape[0]}\nproperty list uchar int vertex_indices\nend_header\n")
    face_type = np.dtype([("n", "u1"), ("i", "<i4", (tris.shape[1],))])
    table = np.zeros(tris.shape[0], dtype=face_type)
    table["n"], table["i"] = tris.shape[1], tris
    with open(os.fspath(path), "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(verts.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
        handle.write(table.tobytes())
