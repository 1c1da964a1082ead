"""The command line, run as a user runs it, in processes where bpy and tensorflow cannot be imported."""
import subprocess
import sys

import numpy as np
import pytest

from tests.core.test_isolation import BLOCKER, ROOT
from voca_addon.core import engine
from voca_addon.core.flame import meshio
from voca_addon.core.models import modelfiles
from voca_addon.core.formats import tfbundle


def cli(*args, cache=None):
    """Run ``python -m voca_addon ARGS`` with bpy/tensorflow imports blocked."""
    code = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                     "runpy.run_module('voca_addon', run_name='__main__')"
    env = {"VOCA_CACHE_DIR": str(cache), "HOME": str(cache), "PATH": "/usr/bin:/bin"} if cache else None
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


NON_RELEASE = "is not the DeepSpeech v0.1.0 release file"   # our random-weight test graphs are not


def assert_user_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.strip().splitlines()
             if not (line.startswith("warning: ") and NON_RELEASE in line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture(scope="module")
def models(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cli-cache")
    return dict(voca=voca_ckpt, ds=ds_small_pb, template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test_sentence.wav", cache=cache)


def infer_args(m, out, *extra):
    return ["infer", m["wav"], "--deepspeech", m["ds"], "--voca", m["voca"], "--template", m["template"],
            "--out", out, *extra]


def test_cli_features_writes_logits_and_windows(models, tmp_path):
    out = tmp_path / "f.npz"
    r = cli("features", models["wav"], "--deepspeech", models["ds"], "--out", out, cache=models["cache"])
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        assert z["logits"].shape == (int(np.ceil(frames_10ms(models["wav"]) / 2)), 29)
        assert z["windows"].shape == (306, 16, 29) and float(z["fps"]) == 60.0
        # windows are VOCA's: 8 zero rows, then the interpolated logits; row 0 of frame 8 is frame 0
        assert np.all(z["windows"][0, :8] == 0)
        np.testing.assert_array_equal(z["windows"][8, 0], z["windows"][0, 8])
        np.testing.assert_allclose(z["windows"][0, 8], z["logits"][0], rtol=0, atol=1e-6)


def frames_10ms(wav):
    from voca_addon.core.speech import audio, features
    return features.frame_count(len(audio.prepare_for_deepspeech(audio.load_audio(wav))))


def test_cli_infer_from_audio_and_from_features_agree(models, tmp_path):
    a, f, b = tmp_path / "a.npz", tmp_path / "f.npz", tmp_path / "b.npz"
    assert cli(*infer_args(models, a, "--no-closures"), cache=models["cache"]).returncode == 0   # VOCA's exact
    assert cli("features", models["wav"], "--deepspeech", models["ds"], "--out", f,
               cache=models["cache"]).returncode == 0
    r = cli("infer", "--features", f, "--voca", models["voca"], "--template", models["template"], "--out", b,
            cache=models["cache"])
    assert r.returncode == 0, r.stderr
    with np.load(a) as za, np.load(b) as zb:
        assert za["vertices"].shape == (306, 5023, 3) and za["vertices"].dtype == np.float32
        np.testing.assert_array_equal(za["vertices"], zb["vertices"])
        recon = za["template"] + za["bias"] + np.einsum("fd,dvc->fvc", za["weights"], za["basis"])
        assert np.abs(recon - za["vertices"]).max() < 1e-7
        assert za["basis"].shape == (50, 5023, 3) and za["weights"].shape == (306, 50)


def test_cli_infer_style_blend_equals_engine(models, tmp_path, model_cache):
    out = tmp_path / "s.npz"
    r = cli(*infer_args(models, out, "--style", "1:0.5,4:0.5", "--no-closures"), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    ds = modelfiles.load_deepspeech(models["ds"], model_cache)
    vm = modelfiles.load_voca(models["voca"], model_cache)
    template = meshio.read_mesh(models["template"]).vertices
    expected = engine.run(models["wav"], ds, vm, template, {1: 0.5, 4: 0.5}).vertices()
    single = engine.run(models["wav"], ds, vm, template, 1).vertices()
    with np.load(out) as z:
        # vertices are written 256 frames at a time: float32 rounding of the blocked product (~1e-8 m)
        np.testing.assert_allclose(z["vertices"], expected, rtol=0, atol=1e-7)
        assert np.abs(z["vertices"] - single).max() > 1e-5


def test_cli_missing_models_say_what_and_where(models, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    r = cli(*infer_args(dict(models, voca=empty / "gstep_52280.model"), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "gstep_52280.model.index", "voca.is.tue.mpg.de", str(empty))
    r = cli("features", models["wav"], "--deepspeech", empty / "output_graph.pb", "--out", tmp_path / "f.npz",
            cache=tmp_path)
    assert_user_error(r, "output_graph.pb", "v0.1.0", str(empty))
    r = cli(*infer_args(dict(models, template=empty / "FLAME_sample.ply"), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "FLAME_sample.ply", "TimoBolkart/voca")
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "f.npz").exists()


def test_cli_default_model_folder_is_documented_and_checked(models, tmp_path):
    """Without flags the documented folder (~/voca_models) is searched and named in the message."""
    r = cli("features", models["wav"], "--out", tmp_path / "f.npz", cache=tmp_path)
    assert_user_error(r, str(tmp_path / "voca_models" / "output_graph.pb"))


def test_cli_missing_weights_data_file(models, tmp_path):
    prefix = tmp_path / "gstep_52280.model"
    prefix.with_name(prefix.name + ".index").write_bytes(models["voca"].with_name("gstep_52280.model.index").read_bytes())
    r = cli(*infer_args(dict(models, voca=prefix), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "gstep_52280.model.data-00000-of-00001")


def test_cli_truncated_weights(models, tmp_path):
    prefix = tmp_path / "gstep_52280.model"
    src = models["voca"]
    prefix.with_name(prefix.name + ".index").write_bytes(src.with_name(src.name + ".index").read_bytes())
    data = src.with_name(src.name + ".data-00000-of-00001").read_bytes()
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(data[: len(data) // 2])
    r = cli(*infer_args(dict(models, voca=prefix), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "truncated", "9,714,776")


def test_cli_checkpoint_with_wrong_shapes(models, tmp_path):
    tensors = tfbundle.read_checkpoint(models["voca"])
    name = "VOCA/SpeechEncoder/fc1/weights"
    tensors[name] = np.zeros((70, 128), np.float32)
    prefix = tfbundle.write_checkpoint(tmp_path / "bad.model", tensors)
    r = cli(*infer_args(dict(models, voca=prefix), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, name, "[70, 128]", "[72, 128]")


def test_cli_checkpoint_that_is_not_voca(models, tmp_path):
    prefix = tfbundle.write_checkpoint(tmp_path / "other.model", {"dense/kernel": np.ones((3, 3), np.float32)})
    r = cli(*infer_args(dict(models, voca=prefix), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "is this a VOCA checkpoint")


def test_cli_refuses_newer_deepspeech_graph(models, newer_deepspeech_pb, tmp_path):
    r = cli("features", models["wav"], "--deepspeech", newer_deepspeech_pb, "--out", tmp_path / "f.npz",
            cache=tmp_path)
    assert_user_error(r, "not DeepSpeech v0.1.0", "lstm_fused_cell", "deepspeech-0.1.0-models.tar.gz")


@pytest.fixture(scope="module")
def newer_deepspeech_pb(tmp_path_factory):
    """A frozen graph laid out like DeepSpeech 0.2+ (fused LSTM cell, 16-step input windows)."""
    import tensorflow as tf
    path = tmp_path_factory.mktemp("ds02") / "output_graph.pb"
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 16, 19, 26], name="input_node")
        h1 = tf.compat.v1.get_variable("h1", [494, 8])
        k = tf.compat.v1.get_variable("lstm_fused_cell/kernel", [16, 32])
        y = tf.matmul(tf.reshape(x, [16, 494]), h1)
        out = tf.identity(tf.matmul(tf.concat([y, y], 1), k), name="logits")
        with tf.compat.v1.Session(graph=g) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(s, g.as_graph_def(), [out.op.name])
    path.write_bytes(frozen.SerializeToString())
    return path


def test_cli_wrong_template_vertex_count(models, tmp_path):
    small = tmp_path / "cube.obj"
    meshio.write_obj(small, np.eye(3), np.array([[0, 1, 2]]))
    r = cli(*infer_args(dict(models, template=small), tmp_path / "o.npz"), cache=models["cache"])
    assert_user_error(r, "3 vertices", "5023")
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("args,fragments", [
    (["--condition", "0"], ["condition 0", "1..8"]),
    (["--condition", "9"], ["condition 9", "1..8"]),
    (["--style", "1:0.5,x"], ["--style"]),
    (["--style", "2:-1"], ["-1", "≥ 0"]),
    (["--style", "3:0"], ["no positive weight"]),
    (["--fps", "0"], ["fps"]),
])
def test_cli_bad_options(models, tmp_path, args, fragments):
    r = cli(*infer_args(models, tmp_path / "o.npz", *args), cache=models["cache"])
    assert_user_error(r, *fragments)
    assert not (tmp_path / "o.npz").exists()


def test_cli_audio_and_features_both_or_neither(models, tmp_path):
    r = cli("infer", "--voca", models["voca"], "--template", models["template"], "--out", tmp_path / "o.npz")
    assert_user_error(r, "exactly one")


def test_cli_output_folder_missing(models, tmp_path):
    r = cli(*infer_args(models, tmp_path / "nope" / "o.npz"), cache=models["cache"])
    assert_user_error(r, "does not exist")


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "silent", "too_short"])
def test_cli_bad_audio(models, tmp_path, kind):
    from scipy.io import wavfile
    wav = tmp_path / f"{kind}.wav"
    if kind == "empty":
        wav.write_bytes(b"")
    elif kind == "corrupt":
        wav.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    elif kind == "silent":
        wavfile.write(wav, 16000, np.zeros(16000, np.int16))
    elif kind == "too_short":
        wavfile.write(wav, 16000, np.ones(100, np.int16))
    r = cli(*infer_args(dict(models, wav=wav), tmp_path / "o.npz"), cache=models["cache"])
    assert_user_error(r, wav.name)
    assert not (tmp_path / "o.npz").exists()


def test_cli_non_ascii_paths(models, tmp_path):
    folder = tmp_path / "Stimme_ü_音"
    folder.mkdir()
    wav = folder / "sätze_話.wav"
    wav.write_bytes(models["wav"].read_bytes())
    out = folder / "ausgabe_出力.npz"
    r = cli(*infer_args(dict(models, wav=wav), out), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        assert z["vertices"].shape == (306, 5023, 3)


# --- issue 9: one set of rules, no output lost, model integrity, internal errors ---------------------

def test_cli_out_gets_exactly_the_name_given_or_a_refusal(models, tmp_path):
    r = cli(*infer_args(models, tmp_path / "out.txt"), cache=models["cache"])
    assert_user_error(r, "out.txt", "must end in .npz")
    r = cli("features", models["wav"], "--deepspeech", models["ds"], "--out", tmp_path / "f", cache=models["cache"])
    assert_user_error(r, "must end in .npz")
    assert list(tmp_path.iterdir()) == []


def test_cli_existing_output_kept_without_overwrite(models, tmp_path):
    out = tmp_path / "o.npz"
    out.write_bytes(b"the user's earlier result")
    fresh = tmp_path / "cache"
    fresh.mkdir()
    assert_user_error(cli(*infer_args(models, out), cache=fresh), f"'{out}' already exists", "--overwrite")
    assert out.read_bytes() == b"the user's earlier result"
    assert list(fresh.iterdir()) == []                      # refused before any model was read
    r = cli(*infer_args(models, out, "--overwrite"), cache=models["cache"])
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        assert z["vertices"].shape == (306, 5023, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "o.npz"]     # no temporary file left


def test_cli_unwritable_output_folder_refused_before_computing(models, tmp_path):
    from tests.blender.test_headless import unwritable_folder
    fresh = tmp_path / "cache"
    fresh.mkdir()
    out = unwritable_folder(tmp_path) / "o.npz"
    assert_user_error(cli(*infer_args(models, out), cache=fresh), f"cannot write '{out}'", "not writable")
    assert list(fresh.iterdir()) == []


def test_cli_fps_range_is_the_same_for_features_and_infer(models, tmp_path):
    for fps in ("1001", "0", "-5", "nan"):
        a = cli(*infer_args(models, tmp_path / "o.npz", "--fps", fps), cache=models["cache"])
        b = cli("features", models["wav"], "--deepspeech", models["ds"], "--fps", fps, "--out", tmp_path / "f.npz",
                cache=models["cache"])
        assert_user_error(a, "--fps must be a frame rate above 0 and at most 1000")
        assert a.stderr == b.stderr
    r = cli("features", models["wav"], "--deepspeech", models["ds"], "--fps", "1000", "--out", tmp_path / "f.npz",
            cache=models["cache"])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("style", ["1:0.5,4", "4", "1:0.5,,2:0.5", "1:0.5,1:0.5", "1:inf", "a:1"])
def test_cli_malformed_style_refused(models, tmp_path, style):
    assert_user_error(cli(*infer_args(models, tmp_path / "o.npz", "--style", style), cache=models["cache"]),
                      f"--style '{style}'", "1:0.5,4:0.5")


def test_cli_parse_style_reads_well_formed_blends():
    from voca_addon.cli.common import parse_style
    assert parse_style("1:0.5,4:0.5") == {1: 0.5, 4: 0.5}
    assert parse_style(" 2 : 1 ") == {2: 1.0}


def test_cli_every_missing_model_file_in_one_message(models, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    r = cli("infer", models["wav"], "--voca", empty, "--deepspeech", empty / "output_graph.pb", "--template",
            empty / "FLAME_sample.ply", "--out", tmp_path / "o.npz", cache=tmp_path)
    assert_user_error(r, "3 model files are missing", "gstep_52280.model.index", "output_graph.pb",
                      "FLAME_sample.ply")


def _write_codecs(tmp_path, wav):
    """The clip at 16 kHz as WAV (reference) and as FLAC, OGG Vorbis and MP3 (soundfile's libsndfile)."""
    sf = pytest.importorskip("soundfile", reason="soundfile decodes mp3/flac/ogg outside Blender")
    from voca_addon.core.speech import audio
    clip = audio.load_audio(wav)
    signal = audio.to_int16_like_voca(audio.resample(clip.samples, clip.rate, 16000))
    paths = {}
    for ext, fmt in (("wav", "WAV"), ("flac", "FLAC"), ("ogg", "OGG"), ("mp3", "MP3")):
        paths[ext] = tmp_path / f"speech.{ext}"
        sf.write(paths[ext], signal, 16000, format=fmt)
    return paths


def test_cli_infer_reads_mp3_flac_ogg(models, tmp_path):
    paths = _write_codecs(tmp_path, models["wav"])
    results = {}
    for ext, path in paths.items():
        out = tmp_path / f"{ext}.npz"
        r = cli(*infer_args(dict(models, wav=path), out), cache=models["cache"])
        assert r.returncode == 0, (ext, r.stderr)
        with np.load(out) as z:
            results[ext] = z["weights"]
    np.testing.assert_array_equal(results["flac"], results["wav"])          # lossless: the same animation
    for lossy in ("ogg", "mp3"):
        n = min(len(results[lossy]), len(results["wav"]))
        assert abs(len(results[lossy]) - len(results["wav"])) <= 3           # codec padding, ≤ 50 ms
        corr = np.corrcoef(results[lossy][:n].ravel(), results["wav"][:n].ravel())[0, 1]
        assert corr > 0.9, (lossy, corr)


def test_cli_channel_choice(models, tmp_path):
    from scipy.io import wavfile
    from voca_addon.core.speech import audio
    clip = audio.load_audio(models["wav"])
    mono = clip.samples.astype(np.int16)
    stereo = np.stack([np.zeros_like(mono), mono], axis=1)
    path = tmp_path / "stereo.wav"
    wavfile.write(path, clip.rate, stereo)
    assert_user_error(cli(*infer_args(dict(models, wav=path), tmp_path / "a.npz"), cache=models["cache"]),
                      "channel 0", "silent", "--channel N|mix")
    outs = {}
    for choice in ("1", "mix"):
        outs[choice] = tmp_path / f"{choice}.npz"
        r = cli(*infer_args(dict(models, wav=path), outs[choice], "--channel", choice), cache=models["cache"])
        assert r.returncode == 0, r.stderr
    ref = tmp_path / "mono.npz"
    assert cli(*infer_args(models, ref), cache=models["cache"]).returncode == 0
    half = tmp_path / "half.wav"                                   # 'mix' = the mean of the channels
    wavfile.write(half, clip.rate, (mono.astype(np.float64) / 2).astype(np.int16))
    with np.load(outs["1"]) as a, np.load(ref) as b:
        np.testing.assert_array_equal(a["weights"], b["weights"])
    with np.load(outs["mix"]) as a:
        assert not np.array_equal(a["weights"], np.load(ref)["weights"])
    assert_user_error(cli(*infer_args(dict(models, wav=path), tmp_path / "c.npz", "--channel", "2"),
                          cache=models["cache"]), "channel 2 does not exist")


def test_cli_damaged_checkpoint_message(models, tmp_path):
    prefix = tmp_path / "gstep_52280.model"
    src = models["voca"]
    prefix.with_name(prefix.name + ".index").write_bytes(src.with_name(src.name + ".index").read_bytes())
    size = src.with_name(src.name + ".data-00000-of-00001").stat().st_size
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(size))
    r = cli(*infer_args(dict(models, voca=prefix), tmp_path / "o.npz"), cache=tmp_path)
    assert_user_error(r, "the file is damaged (checksum mismatch in tensor 'VOCA/", "download it again from")
    assert not (tmp_path / "o.npz").exists()


def test_cli_non_release_graph_warns_in_one_line(models, tmp_path):
    r = cli("features", models["wav"], "--deepspeech", models["ds"], "--out", tmp_path / "f.npz",
            cache=models["cache"])
    assert r.returncode == 0, r.stderr
    (line,) = [line for line in r.stderr.splitlines() if "warning" in line.lower()]   # (+ progress lines)
    assert line.startswith("warning: ") and NON_RELEASE in line and str(models["ds"]) in line
