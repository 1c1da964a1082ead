"""emotions: FLAME presets on a FLAME-format model, the seed's offsets, EmoVOCA targets, checks, ease curves."""
import json
import pickle
import sys
import types

import numpy as np
import pytest

from voca_addon.core.emotion import emotions
from voca_addon.core.emotion.emotions import Emotion, ease_curve, validate
from voca_addon.core.errors import InputError, MeshError, ModelFileError
from voca_addon.core.flame.meshio import read_mesh, write_obj

FLAME_VERTICES = 5023
FLAME_COMPONENTS = 400          # 300 shape + 100 expression
FLAME_SHAPE = 300
SEED_EMOTIONS = 9               # incl. neutral
EMOVOCA_MESHES = 11


@pytest.fixture(scope="module")
def seed_presets(shared_data):
    with open(shared_data / "emotions" / "seed_flame_expression_presets.json", encoding="utf-8") as f:
        return json.load(f)["presets"]


def _flame_model(shared_data, rng):
    """A FLAME-format model dict: the real template, random shapedirs of the real shape."""
    template = read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    return {"v_template": template.vertices, "f": template.faces.astype(np.uint32),
            "shapedirs": rng.standard_normal((FLAME_VERTICES, 3, FLAME_COMPONENTS)) * 1e-3,
            "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
            "bs_style": "lbs", "bs_type": "lrotmin"}


@pytest.fixture(scope="module")
def flame_model(shared_data, tmp_path_factory):
    model = _flame_model(shared_data, np.random.default_rng(7))
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    with open(path, "wb") as handle:
        pickle.dump(model, handle, protocol=2)
    return path, model


def _expected(model, coeffs):
    """delta = expression basis · coeffs, computed with einsum in float64."""
    coeffs = np.asarray(coeffs, dtype=np.float64)
    basis = model["shapedirs"][:, :, FLAME_SHAPE:FLAME_SHAPE + coeffs.size]
    return np.einsum("vck,k->vc", basis, coeffs)


# ---------------------------------------------------------------------------- FLAME presets

def test_from_flame_presets_builtin_match_the_seed_json(flame_model, seed_presets):
    path, model = flame_model
    result = emotions.from_flame_presets(path)
    assert [e.name for e in result] == [n for n in seed_presets if n != "neutral"]
    assert len(result) == SEED_EMOTIONS - 1
    for emotion in result:
        assert emotion.delta.dtype == np.float32 and emotion.delta.shape == (FLAME_VERTICES, 3)
        expected = _expected(model, seed_presets[emotion.name]).astype(np.float32)
        np.testing.assert_array_max_ulp(emotion.delta, expected, maxulp=1)
        assert str(path) in emotion.source


def test_from_flame_presets_user_json_and_names(flame_model, tmp_path):
    path, model = flame_model
    user = {"smirk": [0.5, -1.0, 0.25], "brows": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3.0]}
    preset_file = tmp_path / "mine.json"
    preset_file.write_text(json.dumps({"presets": user}))
    result = emotions.from_flame_presets(path, preset_file, names=["brows", "smirk"])
    assert [e.name for e in result] == ["brows", "smirk"]
    for emotion in result:
        np.testing.assert_array_max_ulp(emotion.delta, _expected(model, user[emotion.name]).astype(np.float32),
                                        maxulp=1)


def test_from_flame_presets_measures_from_a_nonzero_neutral(flame_model, tmp_path):
    path, model = flame_model
    user = {"neutral": [0.2, 0.1], "wide": [1.2, -0.9, 0.5]}
    result = emotions.from_flame_presets(path, user)
    assert [e.name for e in result] == ["wide"]
    expected = _expected(model, user["wide"]) - _expected(model, user["neutral"])
    np.testing.assert_allclose(result[0].delta, expected, rtol=1e-6, atol=1e-12)


def test_from_flame_presets_reads_chumpy_shapedirs(shared_data, tmp_path, monkeypatch, seed_presets):
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x, self._dirty_vars, self._itr = x, {"x"}, None

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    model = _flame_model(shared_data, np.random.default_rng(8))
    stored = dict(model, shapedirs=Ch(model["shapedirs"]), v_template=Ch(model["v_template"]))
    path = tmp_path / "flame_chumpy.pkl"
    with open(path, "wb") as handle:
        pickle.dump(stored, handle, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")

    (happy,) = emotions.from_flame_presets(path, names=["happy"])
    np.testing.assert_array_max_ulp(happy.delta, _expected(model, seed_presets["happy"]).astype(np.float32),
                                    maxulp=1)


def test_from_flame_presets_refuses_bad_models_and_presets(flame_model, tmp_path):
    path, _ = flame_model
    not_flame = tmp_path / "masks.pkl"
    with open(not_flame, "wb") as handle:
        pickle.dump({"lips": np.arange(10)}, handle, protocol=2)
    with pytest.raises(ModelFileError, match="no 'shapedirs'"):
        emotions.from_flame_presets(not_flame)
    shape_only = tmp_path / "shape_only.pkl"
    with open(shape_only, "wb") as handle:
        pickle.dump({"shapedirs": np.zeros((FLAME_VERTICES, 3, FLAME_SHAPE))}, handle, protocol=2)
    with pytest.raises(ModelFileError, match="expression components"):
        emotions.from_flame_presets(shape_only)
    with pytest.raises(ModelFileError, match="was not found"):
        emotions.from_flame_presets(tmp_path / "missing.pkl")
    with pytest.raises(InputError, match="'grumpy'"):
        emotions.from_flame_presets(path, names=["grumpy"])
    with pytest.raises(InputError, match="only 100"):
        emotions.from_flame_presets(path, {"too_long": [0.1] * 101})
    with pytest.raises(InputError, match="finite numbers"):
        emotions.from_flame_presets(path, {"bad": [1.0, float("nan")]})
    (tmp_path / "flat.json").write_text(json.dumps({"happy": [1.0]}))
    with pytest.raises(InputError, match='"presets"'):
        emotions.from_flame_presets(path, tmp_path / "flat.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        emotions.from_flame_presets(path, tmp_path / "broken.json")


# ---------------------------------------------------------------------------- delta files

def test_from_delta_file_seed_offsets_measured_from_neutral(shared_data):
    path = shared_data / "emotions" / "seed_emotion_offsets.npz"
    with np.load(path) as data:
        names, offsets = [str(n) for n in data["names"]], data["offsets"]
    assert len(names) == SEED_EMOTIONS and np.abs(offsets[names.index("neutral")]).max() > 0
    result = emotions.from_delta_file(path)
    assert [e.name for e in result] == [n for n in names if n != "neutral"]
    neutral = offsets[names.index("neutral")]
    for emotion in result:
        np.testing.assert_array_equal(emotion.delta, offsets[names.index(emotion.name)] - neutral)
    picked = emotions.from_delta_file(path, names=["sad", "happy"])
    assert [e.name for e in picked] == ["sad", "happy"]


def test_from_delta_file_npy_single_and_stacked(shared_data, tmp_path):
    eyelid = np.load(shared_data / "flame" / "l_eyelid.npy")
    (single,) = emotions.from_delta_file(shared_data / "flame" / "l_eyelid.npy")
    assert single.name == "l_eyelid" and single.delta.dtype == np.float32
    np.testing.assert_array_equal(single.delta, eyelid.astype(np.float32))
    stacked = np.stack([eyelid, np.load(shared_data / "flame" / "r_eyelid.npy")])
    np.save(tmp_path / "blink.npy", stacked)
    result = emotions.from_delta_file(tmp_path / "blink.npy")
    assert [e.name for e in result] == ["blink_1", "blink_2"]
    np.testing.assert_array_equal(result[1].delta, stacked[1].astype(np.float32))


def test_from_delta_file_refuses_bad_files(tmp_path):
    with pytest.raises(InputError, match="was not found"):
        emotions.from_delta_file(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.zeros((10, 2)))
    with pytest.raises(InputError, match=r"\[V, 3\]"):
        emotions.from_delta_file(tmp_path / "flat.npy")
    np.savez(tmp_path / "other.npz", vertices=np.zeros((2, 10, 3)))
    with pytest.raises(InputError, match="no 'offsets'"):
        emotions.from_delta_file(tmp_path / "other.npz")
    np.savez(tmp_path / "short.npz", offsets=np.zeros((2, 10, 3)), names=np.array(["a"]))
    with pytest.raises(InputError, match="1 names for 2 offsets"):
        emotions.from_delta_file(tmp_path / "short.npz")
    np.savez(tmp_path / "twice.npz", offsets=np.zeros((2, 10, 3)), names=np.array(["a", "a"]))
    with pytest.raises(InputError, match="twice"):
        emotions.from_delta_file(tmp_path / "twice.npz")
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="cannot read"):
        emotions.from_delta_file(tmp_path / "objects.npy")
    (tmp_path / "garbage.npz").write_bytes(b"PK not really a zip")
    with pytest.raises(InputError, match="cannot read"):
        emotions.from_delta_file(tmp_path / "garbage.npz")


# ---------------------------------------------------------------------------- target meshes

def _ply_vertices(path):
    """Vertices of a binary little-endian PLY with double x y z, parsed here from the raw bytes."""
    data = path.read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:body].decode("ascii").split("\n")
    count = int(next(line for line in header if line.startswith("element vertex")).split()[2])
    assert "format binary_little_endian 1.0" in header and "property double x" in header
    return np.frombuffer(data, dtype="<f8", count=count * 3, offset=body).reshape(count, 3)


def test_from_target_meshes_emovoca_deltas_are_file_differences(shared_data):
    paths = sorted((shared_data / "emotions" / "emovoca_COMA_CH01").glob("*.ply"))
    assert len(paths) == EMOVOCA_MESHES
    neutral, targets = paths[0], paths[1:]          # EmoVOCA ships no neutral: use one emotion as it
    result = emotions.from_target_meshes(targets, neutral)
    assert [e.name for e in result] == [p.stem for p in targets]
    base = _ply_vertices(neutral)
    for emotion, path in zip(result, targets):
        np.testing.assert_array_equal(emotion.delta, (_ply_vertices(path) - base).astype(np.float32))
        assert np.abs(emotion.delta).max() > 0
    assert validate(result, FLAME_VERTICES) == tuple(result)


def test_from_target_meshes_refuses_bad_meshes(shared_data, tmp_path):
    paths = sorted((shared_data / "emotions" / "emovoca_COMA_CH01").glob("*.ply"))
    with pytest.raises(MeshError, match="neutral.obj"):
        emotions.from_target_meshes(paths[:2], tmp_path / "neutral.obj")
    small = tmp_path / "small.obj"
    write_obj(small, _ply_vertices(paths[1])[:100])
    with pytest.raises(MeshError, match="small.obj' has 100 vertices"):
        emotions.from_target_meshes([paths[1], small], paths[0])
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 5023\nproperty double x\n")
    with pytest.raises(MeshError, match="garbage.ply"):
        emotions.from_target_meshes([garbage], paths[0])
    with pytest.raises(InputError, match="share a file name"):
        emotions.from_target_meshes([paths[1], tmp_path / paths[1].name], paths[0])
    with pytest.raises(InputError, match="no target meshes"):
        emotions.from_target_meshes([], paths[0])


# ---------------------------------------------------------------------------- validate, ease_curve

def test_validate_refuses_wrong_vertex_count_duplicates_and_nan():
    good = Emotion("happy", np.zeros((10, 3), np.float32), "test")
    assert validate([good], 10) == (good,)
    with pytest.raises(MeshError, match="moves 10 vertices but the mesh has 5023"):
        validate([good], FLAME_VERTICES)
    with pytest.raises(InputError, match="two emotions are named 'happy'"):
        validate([good, Emotion("happy", good.delta, "other")], 10)
    with pytest.raises(InputError, match="NaN"):
        validate([Emotion("bad", np.full((10, 3), np.nan, np.float32), "test")], 10)
    with pytest.raises(InputError, match="1 to 63 bytes"):
        validate([Emotion("", good.delta, "test")], 10)


def test_ease_curve_rises_holds_and_falls_smoothly():
    frames, values = ease_curve(10, 50, 8, peak=0.75)
    assert frames[0] == 10 and frames[-1] == 50 and values[0] == 0 and values[-1] == 0
    assert np.all(np.diff(frames) > 0)
    rise = frames <= 18
    np.testing.assert_array_equal(frames[rise], np.arange(10, 19))
    t = (frames[rise] - 10) / 8
    np.testing.assert_allclose(values[rise], 0.75 * (3 * t ** 2 - 2 * t ** 3))
    assert values[frames == 14][0] == pytest.approx(0.375)           # half way up at mid-ramp
    hold = (frames >= 18) & (frames <= 42)
    np.testing.assert_array_equal(frames[hold], [18, 42])
    np.testing.assert_array_equal(values[hold], [0.75, 0.75])
    np.testing.assert_allclose(values[frames >= 42], values[rise][::-1])   # the fall mirrors the rise


def test_ease_curve_shortens_long_ramps_and_refuses_bad_ranges():
    frames, values = ease_curve(0, 6, 10)
    assert frames[0] == 0 and frames[-1] == 6 and np.all(np.diff(frames) > 0)
    assert values.max() == 1.0 and frames[values.argmax()] == 3
    for args in ((5, 5, 2), (5, 4, 2), (0, 10, 0), (0, float("inf"), 2)):
        with pytest.raises(InputError):
            ease_curve(*args)
