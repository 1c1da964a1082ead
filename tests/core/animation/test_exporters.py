"""exporters: PC2 checked against the format's byte layout, OBJ sequences read back, atomic refusals."""
import os
import struct

import numpy as np
import pytest

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation
from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.animation.exporters import CHUNK_FRAMES, read_pc2, write_obj_sequence, write_pc2
from voca_addon.core.flame.meshio import read_mesh

PC2_HEADER_BYTES = 32          # char[12] + int32 + int32 + float32 + float32 + int32
OBJ_ROUNDING = 5e-7            # 6 decimals


@pytest.fixture(scope="module")
def official(shared_data):
    with np.load(shared_data / "voca_official" / "output_test_sentence_cond3.npz") as data:
        frames = data["vertices"][:12]
    return frames, read_mesh(shared_data / "flame" / "FLAME_sample.ply")


def _random_animation(frames, vertices, rank=3, seed=4):
    rng = np.random.default_rng(seed)
    return ShapeKeyAnimation(basis=rng.standard_normal((rank, vertices, 3)).astype(np.float32) * 1e-3,
                             bias=rng.standard_normal((vertices, 3)).astype(np.float32) * 1e-3,
                             weights=rng.standard_normal((frames, rank)).astype(np.float32),
                             fps=60.0, template=rng.standard_normal((vertices, 3)).astype(np.float32))


# ---------------------------------------------------------------------------- PC2

def test_write_pc2_matches_the_format_byte_for_byte(official, tmp_path):
    frames, _ = official
    path = tmp_path / "clip.pc2"
    write_pc2(path, frames, start_frame=1, sample_rate=0.5)
    data = path.read_bytes()
    magic, version, points, start, rate, samples = struct.unpack("<12siiffi", data[:PC2_HEADER_BYTES])
    assert magic == b"POINTCACHE2\0" and version == 1
    assert (points, samples) == frames.shape[1::-1] and (start, rate) == (1.0, 0.5)
    assert len(data) == PC2_HEADER_BYTES + frames.size * 4
    body = np.frombuffer(data, dtype="<f4", offset=PC2_HEADER_BYTES).reshape(frames.shape)
    np.testing.assert_array_equal(body, frames)
    back, start, rate = read_pc2(path)
    np.testing.assert_array_equal(back, frames)
    assert (start, rate) == (1.0, 0.5) and back.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["clip.pc2"]          # no temporary file left


def test_write_pc2_from_animation_in_chunks(tmp_path):
    anim = _random_animation(CHUNK_FRAMES * 2 + 5, 40)
    write_pc2(tmp_path / "anim.pc2", anim)
    back, start, rate = read_pc2(tmp_path / "anim.pc2")
    assert (start, rate) == (0.0, 1.0)
    np.testing.assert_array_equal(back, anim.vertices())


def test_write_pc2_refuses_bad_input_and_writes_nothing(official, tmp_path):
    frames, _ = official
    bad = frames[:2].copy()
    bad[1, 7, 0] = np.nan
    for args, kwargs in (((bad,), {}), ((frames[0],), {}), ((frames,), {"sample_rate": 0})):
        with pytest.raises(InputError):
            write_pc2(tmp_path / "bad.pc2", *args, **kwargs)
    with pytest.raises(InputError, match="does not exist"):
        write_pc2(tmp_path / "missing" / "clip.pc2", frames)
    assert list(tmp_path.iterdir()) == []


def test_read_pc2_refuses_foreign_and_truncated_files(official, tmp_path):
    frames, _ = official
    write_pc2(tmp_path / "clip.pc2", frames)
    data = (tmp_path / "clip.pc2").read_bytes()
    (tmp_path / "short.pc2").write_bytes(data[:-4])
    with pytest.raises(MeshError, match="truncated"):
        read_pc2(tmp_path / "short.pc2")
    (tmp_path / "other.pc2").write_bytes(b"POINTCACHE3\0" + data[12:])
    with pytest.raises(MeshError, match="not a PC2"):
        read_pc2(tmp_path / "other.pc2")
    (tmp_path / "v2.pc2").write_bytes(data[:12] + struct.pack("<i", 2) + data[16:])
    with pytest.raises(MeshError, match="version 2"):
        read_pc2(tmp_path / "v2.pc2")
    with pytest.raises(MeshError, match="was not found"):
        read_pc2(tmp_path / "missing.pc2")


# ---------------------------------------------------------------------------- OBJ sequences

def test_write_obj_sequence_round_trips_through_read_mesh(official, tmp_path):
    frames, template = official
    out = tmp_path / "frames"
    paths = write_obj_sequence(out, frames, template.faces)
    assert [os.path.basename(p) for p in paths] == [f"frame_{i:04d}.obj" for i in range(len(frames))]
    assert sorted(os.listdir(out)) == [os.path.basename(p) for p in paths]
    for path, expected in zip(paths, frames):
        mesh = read_mesh(path)
        np.testing.assert_allclose(mesh.vertices, expected, rtol=0, atol=OBJ_ROUNDING + 1e-9)
        np.testing.assert_array_equal(mesh.faces, template.faces)
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]            # no temporary folder left


def test_write_obj_sequence_from_animation_in_chunks(tmp_path):
    anim = _random_animation(CHUNK_FRAMES + 3, 30)
    faces = np.array([[0, 1, 2], [2, 3, 4]], dtype=np.int32)
    paths = write_obj_sequence(tmp_path / "out", anim, faces, basename="take", digits=2)
    assert os.path.basename(paths[-1]) == f"take_{CHUNK_FRAMES + 2}.obj"
    expected = anim.vertices()
    for index in (0, CHUNK_FRAMES - 1, CHUNK_FRAMES, CHUNK_FRAMES + 2):
        np.testing.assert_allclose(read_mesh(paths[index]).vertices, expected[index], rtol=0,
                                   atol=OBJ_ROUNDING + 1e-9)


def test_write_obj_sequence_refuses_non_empty_folder_unless_overwrite(official, tmp_path):
    frames, template = official
    out = tmp_path / "out"
    write_obj_sequence(out, frames[:5], template.faces)
    (out / "notes.txt").write_text("mine")
    before = (out / "frame_0000.obj").read_bytes()
    with pytest.raises(InputError, match="not empty"):
        write_obj_sequence(out, frames[5:8], template.faces)
    assert (out / "frame_0000.obj").read_bytes() == before
    write_obj_sequence(out, frames[5:8], template.faces, overwrite=True)
    assert sorted(os.listdir(out)) == ["frame_0000.obj", "frame_0001.obj", "frame_0002.obj", "notes.txt"]
    np.testing.assert_allclose(read_mesh(out / "frame_0000.obj").vertices, frames[5], atol=OBJ_ROUNDING + 1e-9)
    assert (out / "notes.txt").read_text() == "mine"


def test_write_obj_sequence_refuses_bad_input_and_writes_nothing(official, tmp_path):
    frames, template = official
    with pytest.raises(InputError, match="faces index vertices outside"):
        write_obj_sequence(tmp_path / "a", frames[:, :100], template.faces)
    with pytest.raises(InputError, match=r"\[frames, vertices, 3\]"):
        write_obj_sequence(tmp_path / "b", frames[0], template.faces)
    with pytest.raises(InputError, match="plain file name"):
        write_obj_sequence(tmp_path / "c", frames, template.faces, basename="../x")
    with pytest.raises(InputError, match="does not exist"):
        write_obj_sequence(tmp_path / "missing" / "d", frames, template.faces)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        write_obj_sequence(tmp_path / "file", frames, template.faces)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_writers_leave_the_old_output_when_a_later_frame_fails(tmp_path):
    anim = _random_animation(CHUNK_FRAMES + 10, 20)
    anim.weights[CHUNK_FRAMES + 5, 0] = np.nan                  # found only while writing the 2nd chunk
    (tmp_path / "clip.pc2").write_bytes(b"old")
    with pytest.raises(InputError, match="NaN"):
        write_pc2(tmp_path / "clip.pc2", anim)
    with pytest.raises(InputError, match="NaN"):
        write_obj_sequence(tmp_path / "frames", anim, None)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.pc2"]
    assert (tmp_path / "clip.pc2").read_bytes() == b"old"
