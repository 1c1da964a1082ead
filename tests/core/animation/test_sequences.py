"""sequences: the official VOCA output as shape keys, numeric frame order, clear refusals."""
import numpy as np
import pytest

from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.flame.meshio import read_mesh
from voca_addon.core.animation.sequences import DEFAULT_TOLERANCE, frame_files, import_sequence, read_sequence

OFFICIAL_FRAMES = 306
FLAME_VERTICES = 5023
VOCA_CODE_SIZE = 50                     # VOCA's decoder is linear in a 50-d code
FLOAT32_SLACK = 1e-8                    # metres: float32 spacing near FLAME's 0.1 m coordinates
FOLDER_STEP = 5                         # every 5th official frame: names 0, 5, ..., 95, 100, ... 305


@pytest.fixture(scope="module")
def official(shared_data):
    path = shared_data / "voca_official" / "output_test_sentence_cond3.npz"
    with np.load(path) as data:
        return path, data["vertices"], shared_data / "flame" / "FLAME_sample.ply"


def _errors(anim, frames):
    """(largest per-coordinate error, largest per-vertex distance) of the animation against the frames."""
    diff = anim.vertices().astype(np.float64) - frames
    return float(np.abs(diff).max()), float(np.linalg.norm(diff, axis=-1).max())


def _write_obj(path, vertices, faces):
    """An OBJ with 10 significant digits (float32 positions survive exactly)."""
    lines = [f"v {x:.9e} {y:.9e} {z:.9e}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- import_sequence

def test_import_sequence_official_output_default_tolerance(official):
    path, frames, template = official
    anim = import_sequence(path, template)
    assert anim.num_frames == OFFICIAL_FRAMES and anim.fps == 60
    assert 0 < anim.basis.shape[0] <= VOCA_CODE_SIZE
    coordinate, vertex = _errors(anim, frames)
    assert coordinate <= DEFAULT_TOLERANCE + FLOAT32_SLACK
    assert vertex <= np.sqrt(3) * DEFAULT_TOLERANCE + FLOAT32_SLACK
    np.testing.assert_array_equal(anim.template, read_mesh(template).vertices.astype(np.float32))


def test_import_sequence_rank_cap_and_fps(official, tmp_path):
    path, frames, template = official
    coarse = import_sequence(path, template, max_rank=10, fps=30)
    assert coarse.basis.shape[0] == 10 and coarse.fps == 30
    assert _errors(coarse, frames)[0] > 10 * DEFAULT_TOLERANCE
    np.savez(tmp_path / "clip.npz", vertices=frames[:20], fps=np.float64(25))
    assert import_sequence(tmp_path / "clip.npz", template).fps == 25


def test_import_sequence_refuses_wrong_template(official, tmp_path):
    _, frames, template = official
    small = tmp_path / "small.npy"
    np.save(small, frames[:3, :100])
    with pytest.raises(MeshError, match="have 100 vertices but the template"):
        import_sequence(small, template)
    with pytest.raises(MeshError, match="have 100 vertices but the template"):
        read_sequence(small, template)


# ---------------------------------------------------------------------------- read_sequence

def test_read_sequence_folder_in_numeric_order(official, tmp_path):
    _, frames, template = official
    faces = read_mesh(template).faces
    indices = np.arange(0, OFFICIAL_FRAMES, FOLDER_STEP)
    names = [f"{i}.obj" for i in indices]
    assert sorted(names) != names                   # text order would be wrong
    for i in np.random.default_rng(3).permutation(indices):
        _write_obj(tmp_path / f"{i}.obj", frames[i], faces)
    (tmp_path / "notes.txt").write_text("not a frame")
    vertices, fps = read_sequence(tmp_path, template)
    assert fps is None and vertices.dtype == np.float32
    np.testing.assert_array_equal(vertices, frames[indices])


def test_read_sequence_padded_and_prefixed_names(official, tmp_path):
    _, frames, template = official
    faces = read_mesh(template).faces
    for index, name in zip((2, 9, 10, 11), ("frame_0002.obj", "meshes_9.obj", "meshes_10.obj",
                                            "take2_frame11.obj")):
        _write_obj(tmp_path / name, frames[index], faces)
    assert [p.split("/")[-1] for p in frame_files(tmp_path)] == [
        "frame_0002.obj", "meshes_9.obj", "meshes_10.obj", "take2_frame11.obj"]
    vertices, _ = read_sequence(tmp_path)
    np.testing.assert_array_equal(vertices, frames[[2, 9, 10, 11]])


def test_read_sequence_arrays(official, tmp_path):
    _, frames, _ = official
    np.save(tmp_path / "frames.npy", frames[:4])
    vertices, fps = read_sequence(tmp_path / "frames.npy")
    assert fps is None
    np.testing.assert_array_equal(vertices, frames[:4])
    np.savez(tmp_path / "clip.npz", vertices=frames[:4].astype(np.float64), fps=np.float64(25))
    vertices, fps = read_sequence(tmp_path / "clip.npz")
    assert fps == 25 and vertices.dtype == np.float32
    np.testing.assert_array_equal(vertices, frames[:4])


def test_read_sequence_refuses_bad_inputs(official, tmp_path):
    _, frames, _ = official
    with pytest.raises(InputError, match="was not found"):
        read_sequence(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no .obj or .ply frames"):
        read_sequence(tmp_path / "empty")
    np.savez(tmp_path / "novertices.npz", frames=frames[:2])
    with pytest.raises(InputError, match="no 'vertices'"):
        read_sequence(tmp_path / "novertices.npz")
    np.save(tmp_path / "flat.npy", frames[0])
    with pytest.raises(InputError, match=r"expected \[frames, vertices, 3\]"):
        read_sequence(tmp_path / "flat.npy")
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    with pytest.raises(InputError, match="is not a sequence"):
        read_sequence(tmp_path / "clip.wav")


def test_read_sequence_refuses_mixed_topology_naming_the_file(official, tmp_path):
    _, frames, template = official
    faces = read_mesh(template).faces
    for i in range(4):
        _write_obj(tmp_path / f"{i}.obj", frames[i], faces)
    _write_obj(tmp_path / "2.obj", frames[2][:100], faces[:10])
    with pytest.raises(MeshError, match=r"2\.obj' \(frame 3 of 4\) has 100 vertices"):
        read_sequence(tmp_path)
    _write_obj(tmp_path / "2.obj", frames[2], faces[::-1])
    with pytest.raises(MeshError, match=r"2\.obj' .* different triangles"):
        read_sequence(tmp_path)


def test_read_sequence_refuses_unnumbered_and_duplicate_frames(official, tmp_path):
    _, frames, template = official
    faces = read_mesh(template).faces
    _write_obj(tmp_path / "frame_1.obj", frames[0], faces)
    _write_obj(tmp_path / "take_01.obj", frames[1], faces)
    with pytest.raises(InputError, match="both have frame number 1"):
        read_sequence(tmp_path)
    (tmp_path / "take_01.obj").rename(tmp_path / "neutral.obj")
    with pytest.raises(InputError, match="'neutral.obj'.*no frame number"):
        read_sequence(tmp_path)
