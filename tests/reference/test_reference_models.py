"""Checks of the TensorFlow references themselves (tf_voca, tf_deepspeech): sizes, names, determinism.

The parity tests of the numpy engine trust these references, so they are pinned here first: the
random VOCA checkpoint has the release's layout, the official graph's structure is what the engine
follows, and the rebuilt DeepSpeech graph has the 0.1.0 names, shapes and parameter count.
"""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tests.reference import tf_deepspeech as tds  # noqa: E402
from tests.reference import tf_voca as tv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = 64   # n_hidden of the fast DeepSpeech graphs


@pytest.fixture(scope="module")
def meta(shared_data) -> Path:
    return shared_data / "voca_official" / "gstep_52280.model.meta"


@pytest.fixture(scope="module")
def voca_prefix(meta, fixture_cache) -> Path:
    return tv.ensure_voca_checkpoint(fixture_cache, seed=0, meta_path=meta)


@pytest.fixture(scope="module")
def official_voca(meta, voca_prefix):
    with tv.OfficialVoca(voca_prefix, meta) as model:
        yield model


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0, 3.0, (20, 16, 29)).astype(np.float32)


@pytest.fixture(scope="module")
def template(shared_data) -> np.ndarray:
    return np.load(shared_data / "flame" / "vocaset_templates.npz")["FaceTalk_170725_00137_TA"]


@pytest.fixture(scope="module")
def small_pb(fixture_cache) -> Path:
    return tds.ensure_deepspeech_pb(fixture_cache, SMALL, seed=0)


# ---------------------------------------------------------------- VOCA checkpoint and graph

def test_voca_checkpoint_has_release_layout(shared_data, voca_prefix):
    data = Path(str(voca_prefix) + tv.DATA_SUFFIX)
    assert voca_prefix.name == "gstep_52280.model"
    assert data.stat().st_size == 9_714_776
    release = str(shared_data / "voca_official" / "gstep_52280.model")   # its .index alone is enough
    ours = dict(tf.train.list_variables(str(voca_prefix)))
    assert len(ours) == 53
    assert ours == dict(tf.train.list_variables(release))                  # same names and shapes
    reader = tf.train.load_checkpoint(str(voca_prefix))
    assert reader.get_variable_to_dtype_map() == tf.train.load_checkpoint(release).get_variable_to_dtype_map()
    assert reader.get_tensor("VOCA/global_step") == 52280
    assert reader.get_tensor("VOCA/SpeechEncoder/batch_norm/moving_variance")[0] > 0


def test_voca_checkpoint_same_seed_same_bytes(meta, voca_prefix, tmp_path):
    again = tv.make_random_checkpoint(meta, tmp_path / "a" / tv.CHECKPOINT_NAME, seed=0)
    other = tv.make_random_checkpoint(meta, tmp_path / "b" / tv.CHECKPOINT_NAME, seed=1)
    data = lambda prefix: Path(str(prefix) + tv.DATA_SUFFIX).read_bytes()  # noqa: E731
    assert data(again) == data(voca_prefix)
    assert data(other) != data(voca_prefix)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "gstep_52280.model.data-00000-of-00001", "gstep_52280.model.index"]


def test_voca_graph_facts_match_module_doc(meta):
    facts = tv.graph_facts(meta)
    assert facts["bn_op"] == "FusedBatchNorm" and facts["bn_is_training"] is False
    assert facts["bn_epsilon"] == pytest.approx(1.001e-5, rel=1e-6)
    assert facts["bn_cond_on_is_training"]
    assert facts["one_hot_depth"] == 8
    assert facts["speech_reshape"] == [-1, 16, 1, 29]
    assert facts["condition_reshape"] == [-1, 8, 1, 1]
    assert facts["condition_transpose"] == [0, 2, 3, 1]
    assert facts["condition_tile"] == [1, 16, 1, 1]
    assert facts["conv_input_concat"] == ["Reshape", "Tile", "axis"]      # features, then condition
    assert facts["conv_padding"] == ["SAME"] and facts["conv_strides"] == [(1, 2, 1, 1)]
    assert facts["flatten_shape"] == [-1, 64]
    assert facts["fc_input_concat"][:2] == ["VOCA/SpeechEncoder/Reshape_3", "VOCA/SpeechEncoder/Reshape_1"]
    assert facts["fc1_activation"] == "Tanh"
    assert facts["fc2_consumer"] == "VOCA/SpeechEncoder/fc2/fc2/xw_plus_b"  # no activation on fc2
    assert facts["decoder_reshape"] == [-1, 5023, 3, 1]
    assert facts["num_variables"] == 53


def test_voca_graph_output_shape_and_scale(official_voca, windows, template):
    out = official_voca.run(windows, 2, template)
    assert out.shape == (20, 5023, 3) and out.dtype == np.float32
    offsets = out - template.astype(np.float32)
    assert np.isfinite(out).all()
    assert 1e-4 < np.abs(offsets).mean() < 2e-2              # mm..cm like real VOCA output
    assert np.abs(offsets[1:] - offsets[:-1]).max() > 1e-4   # frames differ


def test_voca_graph_output_varies_across_conditions(official_voca, windows, template):
    outs = [official_voca.run(windows, c, template) for c in range(8)]
    for a in range(8):
        for b in range(a + 1, 8):
            assert np.abs(outs[a] - outs[b]).max() > 1e-4, (a, b)


def test_voca_graph_one_hot_feed_equals_condition_id(official_voca, windows, template):
    by_id = official_voca.run(windows, 5, template)
    by_vector = official_voca.run(windows, np.eye(8)[5], template)
    per_frame = official_voca.run(windows, np.tile(np.eye(8)[5], (len(windows), 1)), template)
    np.testing.assert_array_equal(by_vector, by_id)
    np.testing.assert_array_equal(per_frame, by_id)
    blend = official_voca.run(windows, [0.5, 0.5, 0, 0, 0, 0, 0, 0], template)
    assert np.abs(blend - official_voca.run(windows, 0, template)).max() > 1e-5


def test_voca_graph_adds_template(official_voca, windows, template):
    zero = official_voca.run(windows, 0, np.zeros((5023, 3)))
    shifted = official_voca.run(windows, 0, template)
    np.testing.assert_allclose(shifted - zero, np.broadcast_to(template, zero.shape), atol=1e-6)


@pytest.mark.parametrize("bad", [8, -1, [1.0] * 7, np.ones((3, 8))])
def test_voca_graph_rejects_bad_condition(official_voca, windows, template, bad):
    with pytest.raises(ValueError):
        official_voca.run(windows, bad, template)


def test_voca_cli_run_matches_api(meta, voca_prefix, official_voca, windows, template, tmp_path):
    np.save(tmp_path / "w.npy", windows)
    np.save(tmp_path / "t.npy", template)
    cmd = [sys.executable, "-m", "tests.reference.tf_voca", "--meta", str(meta), "run", str(voca_prefix),
           str(tmp_path / "w.npy"), str(tmp_path / "t.npy"), str(tmp_path / "o.npy"),
           "--condition", "0,0,1,0,0,0,0,0"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), official_voca.run(windows, 2, template))


# ---------------------------------------------------------------- DeepSpeech graph

def _node(graph_def, name):
    return next(n for n in graph_def.node if n.name == name)


def test_deepspeech_small_graph_names_and_shapes(small_pb):
    graph_def = tds.read_graph_def(small_pb)
    consts = tds.const_arrays(small_pb)
    assert {k: v.shape for k, v in consts.items()} == tds.expected_shapes(SMALL)
    assert all(v.dtype == np.float32 for v in consts.values())
    assert not [n.name for n in graph_def.node if n.op.startswith("Variable")]
    assert tf.make_ndarray(_node(graph_def, "logits/shape/2").attr["value"].tensor) == 29
    assert _node(graph_def, "logits").op == "Reshape"
    node = _node(graph_def, "input_node")
    assert node.op == "Placeholder" and node.attr["dtype"].type == tf.float32.as_datatype_enum
    assert [d.size for d in node.attr["shape"].shape.dim] == [-1, -1, 494]
    node = _node(graph_def, "input_lengths")
    assert node.attr["dtype"].type == tf.int32.as_datatype_enum
    assert [d.size for d in node.attr["shape"].shape.dim] == [-1]


def test_deepspeech_small_graph_same_seed_same_bytes(small_pb, tmp_path):
    again = tds.build_frozen_graph(tmp_path / "a.pb", seed=0, n_hidden=SMALL)
    other = tds.build_frozen_graph(tmp_path / "b.pb", seed=1, n_hidden=SMALL)
    assert again.read_bytes() == small_pb.read_bytes()
    assert other.read_bytes() != small_pb.read_bytes()


@pytest.mark.parametrize("steps", [1, 7, 60])
def test_deepspeech_run_returns_logits_per_step(small_pb, steps):
    inputs = np.random.default_rng(steps).standard_normal((steps, 494)).astype(np.float32)
    logits = tds.run_frozen_graph(small_pb, inputs)
    assert logits.shape == (steps, 29) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert np.abs(logits).max() > 1e-3


def test_deepspeech_lstm_is_bidirectional(small_pb):
    inputs = np.random.default_rng(3).standard_normal((30, 494)).astype(np.float32)
    changed_last, changed_first = inputs.copy(), inputs.copy()
    changed_last[-1] += 1.0
    changed_first[0] += 1.0
    with tds.FrozenDeepSpeech(small_pb) as model:
        base = model.run(inputs)
        assert np.abs(model.run(changed_last)[0] - base[0]).max() > 1e-6     # backward direction
        assert np.abs(model.run(changed_first)[-1] - base[-1]).max() > 1e-6  # forward direction


def test_deepspeech_unoptimized_session_gives_same_logits(small_pb):
    inputs = np.random.default_rng(4).standard_normal((40, 494)).astype(np.float32)
    np.testing.assert_allclose(tds.run_frozen_graph(small_pb, inputs, optimize=False),
                               tds.run_frozen_graph(small_pb, inputs, optimize=True), rtol=0, atol=1e-6)


def test_deepspeech_cli_ensure_and_run(fixture_cache, small_pb, tmp_path):
    inputs = np.random.default_rng(5).standard_normal((12, 494)).astype(np.float32)
    np.save(tmp_path / "x.npy", inputs)
    mod = [sys.executable, "-m", "tests.reference.tf_deepspeech"]
    done = subprocess.run(mod + ["ensure", str(fixture_cache), "--n-hidden", str(SMALL)], cwd=ROOT,
                          check=True, capture_output=True, text=True, timeout=300)
    assert Path(done.stdout.strip()) == small_pb
    subprocess.run(mod + ["run", str(small_pb), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), tds.run_frozen_graph(small_pb, inputs))


@pytest.mark.fullsize
def test_deepspeech_full_size_has_release_parameter_count(fixture_cache):
    pb = tds.ensure_deepspeech_pb(fixture_cache, 2048, seed=0)
    consts = tds.const_arrays(pb)
    assert {k: v.shape for k, v in consts.items()} == tds.expected_shapes(2048)
    assert sum(v.size for v in consts.values()) == 122_732_573
    assert 480e6 < pb.stat().st_size < 500e6                   # the release's file is ~491 MB
    del consts
    logits = tds.run_frozen_graph(pb, np.random.default_rng(0).standard_normal((5, 494)))
    assert logits.shape == (5, 29) and np.isfinite(logits).all()


# ---------------------------------------------------------------- VOCA's feature path

def test_audio_to_inputs_layout():
    from python_speech_features import mfcc
    audio = (np.random.default_rng(0).normal(0, 3000, 16000 + 123)).astype(np.int16)
    inputs = tds.audio_to_inputs(audio)
    frames = mfcc(audio, 16000, numcep=26)
    assert len(frames) == 1 + math.ceil((len(audio) - 400) / 160)
    assert inputs.shape == (math.ceil(len(frames) / 2), 494)
    assert abs(inputs.mean()) < 1e-9 and abs(inputs.std() - 1.0) < 1e-9
    steps = frames[::2]
    padded = np.concatenate([np.zeros((9, 26)), steps, np.zeros((9, 26))])
    unnorm = np.stack([padded[t:t + 19].reshape(-1) for t in range(len(steps))])
    np.testing.assert_allclose(inputs, (unnorm - unnorm.mean()) / unnorm.std(), atol=1e-12)
    np.testing.assert_allclose(unnorm[5, 9 * 26:10 * 26], steps[5])       # k = 9 is frame t


def test_reference_windows_on_voca_test_sentence(shared_data, small_pb):
    windows = tds.reference_windows(shared_data / "audio" / "test_sentence.wav", small_pb)
    assert windows.shape == (306, 16, 29)                       # the release's output has 306 frames
    assert not windows[0, :8].any() and windows[0, 8:].any()    # 8 zero rows of padding
    np.testing.assert_array_equal(windows[1:, 7], windows[:-1, 8])   # stride 1


def test_reference_windows_on_16khz_int16_wav(small_pb, tmp_path):
    from scipy.io import wavfile
    t = np.arange(int(1.37 * 16000)) / 16000.0
    audio = (8000 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.int16)
    wavfile.write(tmp_path / "a.wav", 16000, audio)
    windows = tds.reference_windows(tmp_path / "a.wav", small_pb)
    assert windows.shape == (round(1.37 * 60), 16, 29)
    logits = tds.run_frozen_graph(small_pb, tds.audio_to_inputs(audio))
    np.testing.assert_allclose(windows[0, 8], logits[0], atol=1e-6)   # frame 0 at t = 0
