"""flame_model: a FLAME-format pickle is read with the restricted unpickler and skins exactly like the
published formulas (an independent numpy reference in tests/core/flame/flame_format.py)."""
import pickle

import numpy as np
import pytest

from tests.core.flame.flame_format import reference_lbs
from voca_addon.core.errors import MeshError, ModelFileError
from voca_addon.core.flame import flame_model
from voca_addon.core.flame.meshio import read_mesh


def _random_poses(rng, count, scale=0.3):
    """[count, 5, 3] rotation vectors: random neck, jaw and eye poses (root too), up to ~0.5 rad."""
    return rng.uniform(-scale, scale, size=(count, 5, 3))


def test_flame_model_reads_flame_format_pickle(flame_format, shared_data):
    path, arrays = flame_format
    model = flame_model.load_flame_model(path)
    template = read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    assert model.num_vertices == 5023 and model.num_shape == 300 and model.num_expression == 100
    np.testing.assert_array_equal(model.v_template, template.vertices)
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"].toarray())
    np.testing.assert_array_equal(model.parents, [-1, 0, 1, 1, 1])
    np.testing.assert_array_equal(model.faces, template.faces)


@pytest.mark.parametrize("correctives", [True, False])
def test_flame_model_skin_matches_reference_for_random_poses(flame_format, correctives):
    path, arrays = flame_format
    model = flame_model.load_flame_model(path)
    rng = np.random.default_rng(1)
    poses = _random_poses(rng, 6)
    ours = flame_model.skin(model, poses, correctives=correctives)
    for pose, got in zip(poses, ours):
        want = reference_lbs(arrays, pose, correctives=correctives)
        assert np.abs(got - want).max() < 1e-12


def test_flame_model_skin_with_identity_and_expression_matches_reference(flame_format):
    path, arrays = flame_format
    model = flame_model.load_flame_model(path)
    rng = np.random.default_rng(2)
    betas, psi, pose = rng.standard_normal(20), rng.standard_normal(50), _random_poses(rng, 1)[0]
    shaped = flame_model.blend_shapes(model, betas, psi)
    got = flame_model.skin(model, pose, shaped)
    want = reference_lbs(arrays, pose, betas=betas, expression=psi)
    assert np.abs(got - want).max() < 1e-12


def test_flame_model_zero_pose_leaves_the_shaped_head(flame_format):
    model = flame_model.load_flame_model(flame_format[0])
    np.testing.assert_allclose(flame_model.skin(model, np.zeros((5, 3))), model.v_template, atol=1e-15)


def test_flame_model_neck_pose_moves_forehead_far_more_than_neck_base(flame_format, shared_data):
    with open(shared_data / "flame" / "FLAME_masks.pkl", "rb") as handle:
        masks = pickle.load(handle, encoding="latin1")
    model = flame_model.load_flame_model(flame_format[0])
    pose = np.zeros((5, 3))
    pose[1] = (0.2, 0.3, 0.1)                                   # a 0.37 rad neck rotation
    moved = np.linalg.norm(flame_model.skin(model, pose) - model.v_template, axis=1)
    neck = np.asarray(masks["neck"])
    base = neck[model.v_template[neck, 1] < np.percentile(model.v_template[neck, 1], 10)]
    forehead, base_motion = moved[masks["forehead"]].mean(), moved[base].mean()
    print(f"neck rotation 0.37 rad: forehead moves {forehead * 1e3:.1f} mm, neck base {base_motion * 1e3:.2f} mm")
    assert forehead > 0.02 and base_motion < 0.1 * forehead


def test_flame_model_identity_sliders_are_the_first_shape_components(flame_format):
    path, arrays = flame_format
    model = flame_model.load_flame_model(path)
    sliders = flame_model.identity_sliders(model, 10)
    assert sliders.shape == (10, 5023, 3) and sliders.dtype == np.float32
    np.testing.assert_allclose(sliders[3], arrays["shapedirs"][:, :, 3], atol=1e-9)


def test_flame_model_refuses_files_that_are_not_flame_models(tmp_path, flame_format):
    _, arrays = flame_format
    cases = {
        "list.pkl": [1, 2, 3],
        "masks.pkl": {"neck": np.arange(5)},                             # a FLAME file, not a model
        "posedirs.pkl": {**arrays, "posedirs": arrays["posedirs"][:, :, :9]},
        "weights.pkl": {**arrays, "weights": arrays["weights"] * 2},
        "kintree.pkl": {**arrays, "kintree_table": np.array([[0, 0, 1, 1, 1], [0, 1, 2, 3, 4]])},
    }
    messages = {"list.pkl": "not a FLAME model", "masks.pkl": "has no v_template",
                "posedirs.pkl": "posedirs of shape", "weights.pkl": "do not sum to 1",
                "kintree.pkl": "kintree_table"}
    for name, content in cases.items():
        path = tmp_path / name
        with open(path, "wb") as handle:
            pickle.dump(content, handle, protocol=2)
        with pytest.raises(ModelFileError, match=messages[name]):
            flame_model.load_flame_model(path)
    with pytest.raises(ModelFileError, match="was not found"):
        flame_model.load_flame_model(tmp_path / "missing.pkl")


def test_flame_model_check_topology_refuses_other_vertex_counts(flame_format):
    model = flame_model.load_flame_model(flame_format[0])
    flame_model.check_topology(model, 5023)
    with pytest.raises(MeshError, match="5023 vertices but the head has 1220"):
        flame_model.check_topology(model, 1220)


def test_flame_model_reads_a_flame_2020_layout_with_chumpy_arrays(tmp_path, monkeypatch, flame_format):
    """FLAME 2020's generic_model.pkl keeps v_template, shapedirs and weights as chumpy ``Ch`` objects and
    J_regressor as a scipy CSC matrix, pickled with protocol 2: all read without chumpy."""
    from tests.core.formats.test_safepickle import _fake_chumpy, _forget_chumpy
    _, arrays = flame_format
    Ch, _, _ = _fake_chumpy(monkeypatch)
    layout = {**arrays, **{k: Ch(x=arrays[k]) for k in ("v_template", "shapedirs", "weights")},
              "bs_style": "lbs", "bs_type": "lrotmin"}
    path = tmp_path / "generic_model.pkl"
    with open(path, "wb") as handle:
        pickle.dump(layout, handle, protocol=2)
    _forget_chumpy(monkeypatch)
    model = flame_model.load_flame_model(path)
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(model.weights, arrays["weights"])
    pose = np.random.default_rng(4).uniform(-0.3, 0.3, (5, 3))
    assert np.abs(flame_model.skin(model, pose) - reference_lbs(arrays, pose)).max() < 1e-12
