"""meshio: PLY (ascii / binary LE / BE) and OBJ reading in file vertex order, writing, refusals."""
import numpy as np
import pytest

from voca_addon.core.errors import MeshError
from voca_addon.core.flame.meshio import read_mesh, write_obj, write_ply


@pytest.fixture(scope="module")
def emovoca(shared_data):
    return read_mesh(shared_data / "emotions" / "emovoca_COMA_CH01" / "Smile2_30.ply")


def raw_flame_vertices(path):
    """The float32 x y z block of FLAME_sample.ply, read straight after its header."""
    data = path.read_bytes()
    start = data.index(b"end_header\n") + len(b"end_header\n")
    return np.frombuffer(data, "<f4", count=5023 * 3, offset=start).reshape(5023, 3)


def test_read_mesh_flame_sample(shared_data, flame):
    assert flame.vertices.shape == (5023, 3) and flame.vertices.dtype == np.float64
    assert flame.faces.shape == (9976, 3) and flame.faces.dtype == np.int32
    assert np.array_equal(flame.vertices, raw_flame_vertices(shared_data / "flame" / "FLAME_sample.ply"))
    assert flame.faces.min() == 0 and flame.faces.max() == 5022
    assert not flame.vertices.flags.writeable and flame.path.endswith("FLAME_sample.ply")
    assert 0.2 < np.ptp(flame.vertices[:, 0]) < 0.21         # metres: ~20 cm wide head


def test_read_mesh_texture_obj_has_flame_topology_but_other_positions(shared_data, flame):
    obj = read_mesh(shared_data / "flame" / "texture_mesh.obj")
    assert obj.vertices.shape == (5023, 3)
    assert np.array_equal(obj.faces, flame.faces)               # same vertex order and triangles
    # Not the same positions: shifted by ~(0.120, 0.106, -0.002) m and a different shape (up to 9 mm).
    offset = obj.vertices - flame.vertices
    assert np.allclose(offset.mean(axis=0), [0.1202, 0.1064, -0.0024], atol=1e-3)
    assert 0.008 < np.abs(offset - offset.mean(axis=0)).max() < 0.01
    # OBJ `v` lines keep file order: the first line of the file is vertex 0.
    first = next(line for line in (shared_data / "flame" / "texture_mesh.obj").read_text().splitlines()
                 if line.startswith("v "))
    assert obj.vertices[0].tolist() == [float(v) for v in first.split()[1:4]]


def test_read_mesh_emovoca_binary_double_uint(emovoca, flame):
    assert emovoca.vertices.shape == (5023, 3) and np.array_equal(emovoca.faces, flame.faces)
    assert 0.01 < np.abs(emovoca.vertices - flame.vertices).max() < 0.05     # an expression, same identity space


def ply_header(fmt, vertex_count, face_count, vertex_props, face_prop, extra_elements=""):
    return (f"ply\nformat {fmt} 1.0\ncomment test file\nobj_info made in a test\nelement vertex {vertex_count}\n"
            + "".join(f"property {t} {n}\n" for t, n in vertex_props)
            + f"element face {face_count}\n{face_prop}\n" + extra_elements + "end_header\n").encode()


def test_read_mesh_ascii_ply_with_extra_properties_and_elements(tmp_path, emovoca):
    v, f = emovoca.vertices, emovoca.faces
    props = [("double", "x"), ("double", "y"), ("double", "z"), ("float", "nx"), ("uchar", "red")]
    header = ply_header("ascii", len(v), len(f), props, "property list uchar int vertex_index",
                        "element edge 2\nproperty int vertex1\nproperty int vertex2\n")
    body = "".join(f"{a!r} {b!r} {c!r} 0.5 255\n" for a, b, c in v)
    body += "".join(f"3 {a} {b} {c}\n" for a, b, c in f) + "0 1\n1 2\n"
    (tmp_path / "ascii.ply").write_bytes(header + body.encode())
    mesh = read_mesh(tmp_path / "ascii.ply")
    assert np.array_equal(mesh.vertices, v) and np.array_equal(mesh.faces, f)


def test_read_mesh_big_endian_ply_skips_unknown_elements(tmp_path, flame):
    v, f = flame.vertices, flame.faces
    props = [("float", "x"), ("short", "flags"), ("float", "y"), ("float", "z")]
    header = ply_header("binary_big_endian", len(v), len(f),
                        props, "property list int uint vertex_indices\nproperty float quality",
                        extra_elements="")
    # An unknown element before the vertices must be skipped by its declared layout.
    header = header.replace(b"element vertex", b"element camera 1\nproperty double focal\nelement vertex", 1)
    vert = np.zeros(len(v), dtype=[("x", ">f4"), ("flags", ">i2"), ("y", ">f4"), ("z", ">f4")])
    vert["x"], vert["y"], vert["z"], vert["flags"] = v[:, 0], v[:, 1], v[:, 2], 7
    face = np.zeros(len(f), dtype=[("n", ">i4"), ("i", ">u4", (3,)), ("q", ">f4")])
    face["n"], face["i"] = 3, f
    (tmp_path / "be.ply").write_bytes(header + np.array([35.0], ">f8").tobytes() + vert.tobytes()
                                      + face.tobytes())
    mesh = read_mesh(tmp_path / "be.ply")
    assert np.array_equal(mesh.vertices, v) and np.array_equal(mesh.faces, f)


def test_read_mesh_fan_triangulates_quads_and_ngons(tmp_path):
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0.5, 0]], dtype=float)
    obj = ("# quad, pentagon with uv/normal refs, negative indices\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
           "v 2 0.5 0 1.0\nvt 0 0\nvn 0 0 1\nf 1/1/1 2/1/1 3/1/1 4/1/1\nf 2//1 5//1 3//1\nf -5 -4 -1 -3 -2\n")
    (tmp_path / "poly.obj").write_text(obj)
    mesh = read_mesh(tmp_path / "poly.obj")
    assert np.array_equal(mesh.vertices, square)
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2], [0, 1, 4], [0, 4, 2], [0, 2, 3]]
    # Binary PLY with mixed polygon sizes (the row-by-row path) gives the same fans.
    header = ply_header("binary_little_endian", 5, 2, [("double", a) for a in "xyz"],
                        "property list uchar int vertex_indices")
    faces = (np.array([4, 0, 1, 2, 3], "u1")[:1].tobytes() + np.array([0, 1, 2, 3], "<i4").tobytes()
             + np.array([3], "u1").tobytes() + np.array([1, 4, 2], "<i4").tobytes())
    (tmp_path / "mixed.ply").write_bytes(header + square.astype("<f8").tobytes() + faces)
    mesh = read_mesh(tmp_path / "mixed.ply")
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 2]]


def test_write_obj_round_trip_keeps_order_and_voca_format(tmp_path, shared_data):
    source = shared_data / "flame" / "texture_mesh.obj"
    mesh = read_mesh(source)
    write_obj(tmp_path / "out.obj", mesh.vertices, mesh.faces)
    lines = (tmp_path / "out.obj").read_text().splitlines()
    original_v = [line for line in source.read_text().splitlines() if line.startswith("v ")]
    written_v = [line for line in lines if line.startswith("v ")]
    assert written_v == original_v                    # 6 decimals, same order, same text
    back = read_mesh(tmp_path / "out.obj")
    assert np.array_equal(back.vertices, mesh.vertices) and np.array_equal(back.faces, mesh.faces)
    assert lines[len(written_v)] == "f {} {} {}".format(*(mesh.faces[0] + 1))


def test_write_ply_round_trip(tmp_path, flame):
    noisy = flame.vertices + np.random.default_rng(0).standard_normal(flame.vertices.shape) * 1e-7
    write_ply(tmp_path / "d.ply", noisy, flame.faces)
    back = read_mesh(tmp_path / "d.ply")
    assert np.array_equal(back.vertices, noisy) and np.array_equal(back.faces, flame.faces)
    write_ply(tmp_path / "f.ply", flame.vertices, flame.faces, dtype=np.float32)
    assert np.array_equal(read_mesh(tmp_path / "f.ply").vertices, flame.vertices)   # float32 source
    assert (tmp_path / "f.ply").stat().st_size < (tmp_path / "d.ply").stat().st_size
    write_ply(tmp_path / "points.ply", flame.vertices)                              # no faces
    points = read_mesh(tmp_path / "points.ply")
    assert np.array_equal(points.vertices, flame.vertices) and points.faces.shape == (0, 3)


def refused(path, match):
    with pytest.raises(MeshError, match=match) as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_read_mesh_refuses_bad_files(tmp_path, flame):
    refused(tmp_path / "missing.ply", "not found")
    (tmp_path / "empty.obj").write_bytes(b"")
    refused(tmp_path / "empty.obj", "empty")
    (tmp_path / "noheader.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\n")
    refused(tmp_path / "noheader.ply", "end_header")
    (tmp_path / "fmt.ply").write_bytes(b"ply\nformat binary_middle_endian 1.0\nend_header\n")
    refused(tmp_path / "fmt.ply", "binary_middle_endian")
    (tmp_path / "type.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n")
    refused(tmp_path / "type.ply", "corrupt PLY header")
    header = ply_header("binary_little_endian", 5023, 0, [("float", a) for a in "xyz"],
                        "property list uchar int vertex_indices")
    (tmp_path / "trunc.ply").write_bytes(header + bytes(100))
    refused(tmp_path / "trunc.ply", "truncated")
    (tmp_path / "nov.ply").write_bytes(ply_header("ascii", 0, 0, [("float", a) for a in "xyz"],
                                                  "property list uchar int vertex_indices"))
    refused(tmp_path / "nov.ply", "no vertices")
    (tmp_path / "noz.ply").write_bytes(ply_header("ascii", 1, 0, [("float", "x"), ("float", "y")],
                                                  "property list uchar int vertex_indices") + b"1 2\n")
    refused(tmp_path / "noz.ply", "without z")
    (tmp_path / "short.ply").write_bytes(ply_header("ascii", 3, 0, [("float", a) for a in "xyz"],
                                                    "property list uchar int vertex_indices") + b"1 2 3\n")
    refused(tmp_path / "short.ply", "truncated ASCII PLY")
    (tmp_path / "range.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n")
    refused(tmp_path / "range.obj", "outside its 3 vertices")
    (tmp_path / "bad.obj").write_text("v 0 0 zero\n")
    refused(tmp_path / "bad.obj", "corrupt OBJ")
    (tmp_path / "noverts.obj").write_text("# nothing\nvt 0 0\n")
    refused(tmp_path / "noverts.obj", "no vertices")
    (tmp_path / "line.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2\n")
    refused(tmp_path / "line.obj", "at least 3")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    refused(tmp_path / "image.png", "neither a PLY nor an OBJ")
