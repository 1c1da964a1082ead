"""Checkpoints written by training run unchanged in the add-on's engine (no TF), in TF's own reader and,
in the release's shape, in the official ``.meta`` graph; their condition names reach the extension."""
import json

import numpy as np
import pytest

from tests.training.conftest import engine_windows, piece_names
from voca_addon import cli
from voca_addon.core import conditions, engine, modelfiles, tfbundle, voca

tf = pytest.importorskip("tensorflow", reason="training needs TensorFlow 2")

TOLERANCE_M = 1e-6           # vertices, metres
RELEASE_DATA_BYTES = 9_714_776


def _windows_and_conditions(ds_model, clips, num_conditions):
    windows = engine_windows(ds_model, clips["official_test_sentence"])[::3]      # 102 frames
    rng = np.random.default_rng(0)
    blend = rng.random(num_conditions).astype(np.float32)
    return windows, [1, num_conditions, {k + 1: float(w) for k, w in enumerate(blend)}]


def _condition_matrix(model, condition, n):
    return np.broadcast_to(voca.condition_vector(model, condition), (n, model.dims.num_conditions))


def _compare_engine_with_tf(run, ds_model, clips, template, model_cache):
    model = modelfiles.load_voca(run.result.prefix, model_cache)                   # numpy only
    windows, conds = _windows_and_conditions(ds_model, clips, model.dims.num_conditions)
    worst = 0.0
    for condition in conds:
        ours = voca.decode(model, voca.encode(model, windows, condition), template)
        theirs = run.result.model.predict(windows, _condition_matrix(model, condition, len(windows)), template)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def test_compat_engine_gives_the_trained_tf_models_vertices(tiny_run, ds_model, clips, template, model_cache):
    worst = _compare_engine_with_tf(tiny_run, ds_model, clips, template, model_cache)
    print(f"\n[figures] engine (numpy) vs trained TF model, 2 conditions: max |Δ| {worst:.2e} m")
    assert worst <= TOLERANCE_M


def test_compat_engine_reads_the_checkpoint_where_tensorflow_cannot_be_imported(tiny_run, ds_model, clips,
                                                                                template, tmp_path):
    from tests.core.test_isolation import run_blocked
    windows, _ = _windows_and_conditions(ds_model, clips, 2)
    np.save(tmp_path / "w.npy", windows)
    np.save(tmp_path / "t.npy", template)
    r = run_blocked("""
        import sys, numpy as np
        from voca_addon.core import modelfiles, voca
        model = modelfiles.load_voca(sys.argv[1], sys.argv[2])
        w, t = np.load(sys.argv[3]), np.load(sys.argv[4])
        np.save(sys.argv[5], voca.decode(model, voca.encode(model, w, 2), t))
        assert not [m for m in sys.modules if m.startswith('tensorflow')]
    """, str(tiny_run.result.prefix), str(tmp_path / "cache"), str(tmp_path / "w.npy"), str(tmp_path / "t.npy"),
        str(tmp_path / "out.npy"))
    assert r.returncode == 0, r.stderr
    trained = tiny_run.result.model.predict(windows, np.tile([[0, 1]], (len(windows), 1)), template)
    assert np.abs(np.load(tmp_path / "out.npy") - trained).max() <= TOLERANCE_M


def test_compat_release_shape_has_the_releases_53_tensors(release_run, shared_data):
    prefix = release_run.result.prefix
    ours = {n: (e.dtype, e.shape) for n, e in tfbundle.read_index(prefix).items()}
    release = {n: (e.dtype, e.shape) for n, e in
               tfbundle.read_index(shared_data / "voca_official" / "gstep_52280.model").items()}
    assert ours == release and len(ours) == 53
    assert (prefix.parent / (prefix.name + ".data-00000-of-00001")).stat().st_size == RELEASE_DATA_BYTES
    reader = tf.train.load_checkpoint(str(prefix))                                # TensorFlow's own reader
    mine = tfbundle.read_checkpoint(prefix)
    for name in ours:
        np.testing.assert_array_equal(reader.get_tensor(name), mine[name], err_msg=name)


def test_compat_official_graph_restores_the_release_shape_checkpoint(release_run, ds_model, clips, template,
                                                                     model_cache, shared_data):
    from tests.reference.tf_voca import OfficialVoca
    model = modelfiles.load_voca(release_run.result.prefix, model_cache)
    windows, conds = _windows_and_conditions(ds_model, clips, 8)
    worst = {"engine": 0.0, "official": 0.0}
    with OfficialVoca(release_run.result.prefix, shared_data / "voca_official" / "gstep_52280.model.meta") as graph:
        for condition in conds:
            matrix = _condition_matrix(model, condition, len(windows))
            trained = release_run.result.model.predict(windows, matrix, template)
            official = graph.run(windows, condition - 1 if isinstance(condition, int) else matrix, template)
            ours = voca.decode(model, voca.encode(model, windows, condition), template)
            worst["official"] = max(worst["official"], float(np.abs(official - trained).max()))
            worst["engine"] = max(worst["engine"], float(np.abs(ours - trained).max()))
    print(f"\n[figures] release shape (8 conditions): official .meta graph vs trained TF model max |Δ| "
          f"{worst['official']:.2e} m; engine vs trained {worst['engine']:.2e} m")
    assert worst["official"] <= TOLERANCE_M and worst["engine"] <= TOLERANCE_M
    assert release_run.result.losses[-10:].mean() < release_run.result.losses[:10].mean()


def test_compat_extension_animates_with_the_checkpoint_and_its_names(release_run, clips, ds_model, model_cache,
                                                                      shared_data, tmp_path):
    """What the add-on does with a trained model: load it without TF, name its conditions, animate."""
    prefix = release_run.result.prefix
    model = modelfiles.load_voca(prefix, model_cache)
    names = conditions.condition_names(prefix, model.dims.num_conditions)
    assert names == piece_names(clips) != list(voca.VOCASET_SUBJECTS)
    meta = json.loads(conditions.conditions_path(prefix).read_text("utf-8"))
    assert meta["condition_by"] == "subject" and meta["conditions"] == names
    clip = clips["official_test"]
    feats = engine.SpeechFeatures(np.zeros((1, 29), np.float32), engine_windows(ds_model, clip), 60.0)
    feats.save_npz(tmp_path / "f.npz")
    out = tmp_path / "anim.npz"
    rc = cli.main(["infer", "--features", str(tmp_path / "f.npz"), "--voca", str(prefix) + ".index",
                   "--template", str(shared_data / "flame" / "FLAME_sample.ply"), "--condition", "8",
                   "--out", str(out), "--cache", str(model_cache)])
    assert rc == 0
    with np.load(out) as z:
        assert z["vertices"].shape == (len(clip.vertices), 5023, 3)
