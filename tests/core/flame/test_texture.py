"""VOCA's texture_mesh.obj read and mapped onto FLAME's faces: checked against the OBJ's own text (parsed
here line by line, independently of the module) and the real FLAME_sample.ply."""
from __future__ import annotations

import numpy as np
import pytest

from voca_addon.core.errors import MeshError
from voca_addon.core.flame import meshio, texture


@pytest.fixture(scope="module")
def obj_text(shared_data):
    """(vt rows as floats, per face: [(v, vt), ...] 1-based) straight from the file's lines."""
    vts, faces = [], []
    for line in (shared_data / "flame" / "texture_mesh.obj").read_text().splitlines():
        if line.startswith("vt "):
            vts.append(tuple(float(x) for x in line.split()[1:3]))
        elif line.startswith("f "):
            faces.append([tuple(int(i) for i in corner.split("/")[:2]) for corner in line.split()[1:]])
    return vts, faces


@pytest.fixture(scope="module")
def tex(shared_data):
    return texture.read_texture_obj(shared_data / "flame" / "texture_mesh.obj")


def test_texture_obj_has_flames_faces_and_5118_uvs(tex, obj_text, shared_data):
    vts, faces = obj_text
    assert tex.uv.shape == (5118, 2) == (len(vts), 2) and tex.faces.shape == (9976, 3)
    flame = meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    assert np.array_equal(np.sort(tex.faces, 1), np.sort(flame.faces, 1))


def test_texture_loop_uvs_equal_the_objs_corners_on_flame(tex, obj_text, shared_data):
    vts, faces = obj_text
    flame = meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    uvs = texture.loop_uvs(flame.faces, tex)
    assert uvs.shape == (9976, 3, 2) and uvs.dtype == np.float32
    for p in (0, 1, 4321, 9975):
        for c in range(3):
            (vt,) = [t for v, t in faces[p] if v - 1 == flame.faces[p, c]]
            assert tuple(uvs[p, c]) == pytest.approx(vts[vt - 1], abs=1e-7)


def test_texture_loop_uvs_follow_reordered_and_rotated_faces(tex):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(tex.faces))
    rotated = np.roll(tex.faces[order], 1, axis=1)            # other face order, corners rotated
    uvs = texture.loop_uvs(rotated, tex)
    expected = tex.uv[np.roll(tex.uv_faces[order], 1, axis=1)]
    assert np.array_equal(uvs, expected)


def test_texture_refuses_a_head_of_another_topology(tex):
    faces = tex.faces.copy()
    faces[7] = (0, 1, 2)                                      # not a FLAME triangle
    with pytest.raises(MeshError, match="not in FLAME's topology"):
        texture.loop_uvs(faces, tex)


@pytest.mark.parametrize("content, fragment", [
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "texture coordinates"),          # no vt indices
    ("vt 0 0\nf 1/1 2/2 3/1\n", "texture indices outside"),                     # vt index 2 of 1
    ("vt 0 0\nf 1/1 2/1 3/1 4/1\n", "triangle OBJ"),                           # a quad
])
def test_texture_refuses_unusable_obj_files(tmp_path, content, fragment):
    path = tmp_path / "texture_mesh.obj"
    path.write_text(content)
    with pytest.raises(MeshError, match=fragment):
        texture.read_texture_obj(path)


def test_texture_found_in_the_first_folder_holding_both_files(tmp_path, shared_data):
    (tmp_path / "texture_mesh.obj").write_text("")            # the .png is missing here
    found = texture.find_texture([None, tmp_path, shared_data / "flame"])
    assert found == (shared_data / "flame" / "texture_mesh.obj", shared_data / "flame" / "texture_mesh.png")
    assert texture.find_texture([tmp_path]) is None
