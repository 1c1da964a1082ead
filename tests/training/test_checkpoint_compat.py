"""Checkpoints written by training run unchanged in the add-on's engine (no TF), in TF's own reader and,
in the release's shape, in the official ``.meta`` graph; their condition names reach the extension."""
import json

import numpy as np
import pytest

from tests.training.conftest import engine_windows, piece_names
from voca_addon.cli import main as cli
from voca_addon.core.models import conditions, modelfiles
from voca_addon.core.formats import tfbundle
from voca_addon.core import engine
from voca_addon.core.face import voca

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
        from voca_addon.core.models import modelfiles
        from voca_addon.core.face import voca
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


def test_compat_blender_operator_animates_with_the_trained_checkpoint(release_run, ds_small_pb, shared_data,
                                                                      model_cache, tmp_path, monkeypatch):
    """The Blender extension, given the trained checkpoint in its preferences, lists the checkpoint's own
    condition names in the speaking-style menu and animates exactly like the engine with it."""
    bpy = pytest.importorskip("bpy")
    import voca_addon
    from voca_addon.blender.speech import pipeline, properties, writer
    from voca_addon.blender import preferences
    prefix = release_run.result.prefix
    wav = shared_data / "audio" / "test.wav"
    template = shared_data / "flame" / "FLAME_sample.ply"
    monkeypatch.setenv("VOCA_CACHE_DIR", str(model_cache))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    voca_addon.register()
    try:
        entry = bpy.context.preferences.addons.new()
        entry.module = preferences.ADDON_ID
        prefs = entry.preferences
        prefs.voca_path, prefs.deepspeech_path, prefs.template_path = str(prefix), str(ds_small_pb), str(template)
        scene = bpy.context.scene
        menu = [name for _, name, *_ in properties._condition_enum_items(scene.voca, bpy.context)]
        names = conditions.condition_names(prefix, 8)
        assert menu == [f"{k} · {n}" for k, n in enumerate(names, 1)] and names != list(voca.VOCASET_SUBJECTS)
        scene.voca.audio_path, scene.voca.condition = str(wav), "6"
        head = pipeline.ensure_head(bpy.context, str(template))
        assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
        expected = engine.run(wav, modelfiles.load_deepspeech(ds_small_pb, model_cache),
                              modelfiles.load_voca(prefix, model_cache), read_template(template), 6)
        expected = expected.resampled(writer.scene_fps(scene))
        for offset in (0, 50, expected.num_frames - 1):
            scene.frame_set(scene.frame_start + offset)
            owner = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
            mesh = owner.to_mesh()
            got = np.empty(len(mesh.vertices) * 3, np.float32)
            mesh.vertices.foreach_get("co", got)
            owner.to_mesh_clear()
            assert np.abs(got.reshape(-1, 3) - expected.vertices([offset])[0]).max() <= 1e-6
    finally:
        entry = bpy.context.preferences.addons.get(preferences.ADDON_ID)
        if entry is not None:
            bpy.context.preferences.addons.remove(entry)
        voca_addon.unregister()


def read_template(path):
    from voca_addon.core.flame import meshio
    return meshio.read_mesh(path).vertices
