"""The headless entry, run as a user runs it: ``python -m voca_addon <command>`` and ``python
voca_addon/headless.py -- <command>`` (the argument path of ``blender -b -P headless.py -- ...``, which needs
a Blender binary this environment does not have) in subprocesses with the bpy module; the scenes they save
are reopened here and checked on the EVALUATED mesh."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

from tests.blender.conftest import evaluated_vertices  # noqa: E402
from tests.blender.test_render import tracks  # noqa: E402
from tests.core.test_isolation import BLOCKER  # noqa: E402
from voca_addon import headless  # noqa: E402  (the script entry)
from voca_addon.cli import main as cli_main  # noqa: E402
from voca_addon.core import engine  # noqa: E402
from voca_addon.core.animation import exporters
from voca_addon.core.flame import meshio
from voca_addon.core.models import modelfiles
from tests.core.test_cli import assert_user_error  # noqa: E402  (one line, exit 2, no traceback)

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-6            # metres: 1 µm
CORRECTION_KEYS = ("voca_lips_close", "voca_lips_tuck")    # lip closures (on by default): separate keys


def run(*args, script=False, cache, blocked=False):
    """``python -m voca_addon ARGS`` (or ``python voca_addon/headless.py -- ARGS``) in a fresh process."""
    args = [str(a) for a in args]
    if script:
        command = [sys.executable, str(ROOT / "voca_addon" / "headless.py"), "--", *args]
    elif blocked:
        code = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                         "runpy.run_module('voca_addon', run_name='__main__')"
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "voca_addon", *args]
    env = dict(os.environ, VOCA_CACHE_DIR=str(cache), VOCA_MODEL_DIR=str(cache / "no-models"))
    env.pop("PYTHONPATH", None)
    return subprocess.run(command, cwd=ROOT if not script else cache, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def m(voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("headless-cache")
    return dict(voca=voca_ckpt, ds=ds_small_pb, template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test.wav", cache=cache, data=shared_data,
                npz=shared_data / "voca_official" / "output_test_sentence_cond3.npz")


def animate_args(m, out, *extra, wav=None):  # noqa: D103
    return ["animate", wav or m["wav"], "--voca", m["voca"], "--deepspeech", m["ds"], "--template",
            m["template"], "--out", out, *extra]


@pytest.fixture(scope="module")
def engine_output(m):
    ds = modelfiles.load_deepspeech(m["ds"], m["cache"])
    model = modelfiles.load_voca(m["voca"], m["cache"])
    template = meshio.read_mesh(m["template"]).vertices
    return engine.run(str(m["wav"]), ds, model, template, 3, 60.0)


def open_blend(path):
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    scene = bpy.context.scene
    (head,) = [o for o in scene.objects if o.type == "MESH"]
    return scene, head


def sound_strips(scene):
    return [s for s in versions.strips(scene) if s.type == "SOUND"]


def test_headless_animate_module_form_saves_the_animation(m, engine_output, tmp_path):
    out = tmp_path / "scene.blend"
    result = run(*animate_args(m, out), cache=m["cache"])
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and [p.name for p in tmp_path.iterdir()] == ["scene.blend"]
    scene, head = open_blend(out)
    assert scene.render.fps / scene.render.fps_base == 60.0
    assert (scene.frame_start, scene.frame_end) == (1, engine_output.num_frames)
    if versions.compat.HAS_AUDIO:
        (strip,) = sound_strips(scene)
        assert strip.frame_final_start == 1 and Path(bpy.path.abspath(strip.sound.filepath)).resolve() == m["wav"].resolve()
    else:                                                 # the PyPI bpy 4.2: said in one line, no strip
        assert sound_strips(scene) == [] and "warning: This Blender build has no audio support" in result.stdout
    for frame in (0, 1, 100, engine_output.num_frames - 1):
        expected = engine_output.vertices([frame])[0]
        error = np.abs(evaluated_vertices(head, scene, frame + 1) - expected).max()
        assert error <= TOLERANCE, f"frame {frame}: {error:.3g} m"


@pytest.mark.smoke
def test_headless_animate_script_form_with_fps_start_and_render(m, engine_output, tmp_path):
    out, video = tmp_path / "scene.blend", tmp_path / "clip.mp4"
    result = run(*animate_args(m, out, "--fps", 30, "--start-frame", 10, "--render", video, "--frames",
                               "10-15", "--resolution", "96x72"), script=True, cache=m["cache"])
    assert result.returncode == 0, result.stderr
    assert tracks(video) == [(b"vide", b"avc1"), (b"soun", b"mp4a")][:1 + versions.SOUND_STRIPS]
    scene, head = open_blend(out)
    expected = engine_output.resampled(30.0)
    assert scene.render.fps == 30 and (scene.frame_start, scene.frame_end) == (10, 9 + expected.num_frames)
    assert scene.camera is not None and scene.camera.get("voca_owned")     # framed before saving
    for frame in (0, 37, expected.num_frames - 1):
        error = np.abs(evaluated_vertices(head, scene, 10 + frame) - expected.vertices([frame])[0]).max()
        assert error <= TOLERANCE


def test_headless_animate_into_an_opened_scene_reuses_its_head(m, tmp_path):
    first, second = tmp_path / "a.blend", tmp_path / "b.blend"
    assert run(*animate_args(m, first), cache=m["cache"]).returncode == 0
    result = run(*animate_args(m, second, "--scene", first, "--style", "1:0.5,4:0.5"), cache=m["cache"])
    assert result.returncode == 0, result.stderr
    scene, head = open_blend(second)                      # one head, one strip: the re-run replaced
    assert len(sound_strips(scene)) == versions.SOUND_STRIPS and scene.render.fps == 60


def test_headless_animate_with_emotion(m, tmp_path):
    out = tmp_path / "e.blend"
    result = run(*animate_args(m, out, "--emotion", "happy", "--emotion-source",
                               m["data"] / "emotions" / "seed_emotion_offsets.npz", "--strength", "0.5"),
                 cache=m["cache"])
    assert result.returncode == 0, result.stderr
    scene, head = open_blend(out)
    names = [k.name for k in head.data.shape_keys.key_blocks]
    assert any("happy" in n for n in names), names


@pytest.mark.parametrize("case", ["voca", "deepspeech", "audio-missing", "audio-garbage", "out-folder",
                                  "template", "scene", "render-folder", "resolution", "suffix"])
def test_headless_animate_refuses_bad_inputs(m, tmp_path, case):
    out = tmp_path / "out.blend"
    garbage = tmp_path / "noise.wav"
    garbage.write_bytes(b"this is not audio" * 100)
    tri = tmp_path / "tri.obj"
    tri.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    args = animate_args(m, out)
    expect = {
        "voca": (lambda a: a[:3] + [tmp_path / "nothing.model"] + a[4:], "VOCA checkpoint"),
        "deepspeech": (lambda a: a[:5] + [tmp_path / "output_graph.pb"] + a[6:], "output_graph.pb"),
        "audio-missing": (lambda a: [a[0], tmp_path / "none.wav"] + a[2:], "none.wav"),
        "audio-garbage": (lambda a: [a[0], garbage] + a[2:], "noise.wav"),
        "out-folder": (lambda a: a[:-1] + [tmp_path / "missing" / "out.blend"], "does not exist"),
        "template": (lambda a: a[:7] + [tri] + a[8:], "5023"),
        "scene": (lambda a: a + ["--scene", tri], "not a .blend"),
        "render-folder": (lambda a: a + ["--render", tmp_path / "no" / "v.mp4"], "does not exist"),
        "resolution": (lambda a: a + ["--render", tmp_path / "v.mp4", "--resolution", "321x240"], "even"),
        "suffix": (lambda a: a[:-1] + [tmp_path / "out.txt"], ".blend"),
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_user_error(run(*expect[0](args), cache=m["cache"]), expect[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == before            # nothing written


def test_headless_script_form_reports_errors_the_same_way(m, tmp_path):
    result = run(*animate_args(m, tmp_path / "missing" / "x.blend"), script=True, cache=m["cache"])
    assert_user_error(result, "does not exist")


def test_headless_without_bpy_says_how_to_run_it(m, tmp_path):
    result = run(*animate_args(m, tmp_path / "x.blend"), blocked=True, cache=m["cache"])
    assert_user_error(result, "needs Blender", "blender -b -P", "headless.py", "pip install bpy==5.0.1")
    assert list(tmp_path.iterdir()) == []


def test_headless_script_args_take_what_follows_the_double_dash():
    blender = ["blender", "-b", "in.blend", "-P", "headless.py", "--", "export-pc2", "x.blend", "--out", "a.pc2"]
    assert headless.script_args(blender) == ["export-pc2", "x.blend", "--out", "a.pc2"]
    assert headless.script_args(["headless.py", "animate", "a.wav"]) == ["animate", "a.wav"]
    args = cli_main.build_parser(headless.PROG).parse_args(headless.script_args(blender))
    assert (args.command, args.blend, args.out, args.object) == ("export-pc2", "x.blend", "a.pc2", None)


@pytest.fixture(scope="module")
def imported_blend(m, tmp_path_factory):
    out = tmp_path_factory.mktemp("seq") / "seq.blend"
    result = run("import-sequence", m["npz"], "--template", m["template"], "--audio",     # the exact sequence:
                 m["data"] / "audio" / "test_sentence.wav", "--no-closures", "--out", out,  # no lip closures
                 cache=m["cache"])
    assert result.returncode == 0, result.stderr
    return out


def test_headless_import_sequence_reproduces_the_official_output(m, imported_blend):
    scene, head = open_blend(imported_blend)
    vertices = np.load(m["npz"])["vertices"]
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (1, 306, 60)
    assert len(head.data.shape_keys.key_blocks) - 1 <= 51 and len(sound_strips(scene)) == versions.SOUND_STRIPS
    for frame in (1, 150, 306):
        assert np.abs(evaluated_vertices(head, scene, frame) - vertices[frame - 1]).max() <= TOLERANCE


def test_headless_export_pc2_and_obj(m, imported_blend, tmp_path):
    vertices = np.load(m["npz"])["vertices"]
    result = run("export-pc2", imported_blend, "--out", tmp_path / "a.pc2", cache=m["cache"])
    assert result.returncode == 0, result.stderr
    frames, start, rate = exporters.read_pc2(tmp_path / "a.pc2")
    assert (start, rate) == (1.0, 1.0) and np.abs(frames - vertices).max() <= TOLERANCE
    result = run("export-obj", imported_blend, "--out", tmp_path / "objs", "--object", "FLAME head", cache=m["cache"])
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "objs").iterdir())
    assert len(files) == 306
    assert np.abs(meshio.read_mesh(files[99]).vertices - vertices[99]).max() <= TOLERANCE + 5e-7


@pytest.mark.parametrize("case", ["missing-blend", "object", "pc2-folder", "pc2-suffix", "obj-folder"])
def test_headless_exports_refuse_bad_inputs(m, imported_blend, tmp_path, case):
    args = {"missing-blend": (["export-pc2", tmp_path / "none.blend", "--out", tmp_path / "a.pc2"], "none.blend"),
            "object": (["export-pc2", imported_blend, "--out", tmp_path / "a.pc2", "--object", "Nope"], "Nope"),
            "pc2-folder": (["export-pc2", imported_blend, "--out", tmp_path / "x" / "a.pc2"], "does not exist"),
            "pc2-suffix": (["export-pc2", imported_blend, "--out", tmp_path / "a.mdd"], ".pc2"),
            "obj-folder": (["export-obj", imported_blend, "--out", tmp_path / "x" / "objs"], "does not exist"),
            }[case]
    assert_user_error(run(*args[0], cache=m["cache"]), args[1])
    assert list(tmp_path.iterdir()) == []


def test_headless_import_sequence_refuses_bad_inputs(m, tmp_path):
    tri = tmp_path / "tri.obj"
    tri.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert_user_error(run("import-sequence", m["npz"], "--template", tri, "--out", tmp_path / "s.blend",
                          cache=m["cache"]), "5023")
    assert_user_error(run("import-sequence", tmp_path / "none.npz", "--template", m["template"], "--out",
                          tmp_path / "s.blend", cache=m["cache"]), "none.npz")
    assert_user_error(run("import-sequence", m["npz"], "--template", m["template"], "--audio", tri, "--out",
                          tmp_path / "s.blend", cache=m["cache"]), "audio" if versions.compat.HAS_AUDIO else "tri.obj")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tri.obj"]


def test_headless_animate_chooses_among_several_heads_by_name(m, flame, tmp_path):
    from voca_addon.blender.speech import writer
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    for name in ("Left", "Right"):
        writer.build_head(name, flame.vertices, flame.faces, scene.collection)
    bpy.context.view_layer.objects.active = None
    two = tmp_path / "two.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(two))
    out = tmp_path / "out.blend"
    assert_user_error(run(*animate_args(m, out, "--scene", two), cache=m["cache"]), "--object", "Left, Right")
    assert_user_error(run(*animate_args(m, out, "--scene", two, "--object", "Nope"), cache=m["cache"]), "Nope")
    assert not out.exists()
    result = run(*animate_args(m, out, "--scene", two, "--object", "Right"), cache=m["cache"])
    assert result.returncode == 0, result.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out), load_ui=False)
    keys = {o.name: o.data.shape_keys for o in bpy.context.scene.objects}
    voca = [k for k in keys["Right"].key_blocks if k.name not in CORRECTION_KEYS]   # lip closures: their own keys
    assert keys["Left"] is None and len(voca) == 52                              # Basis + 50 + bias


# --- no output ever lost; one set of rules (issue 9) ------------------------------------------------

def unwritable_folder(tmp_path) -> Path:
    """A real folder this process cannot create files in: a read-only copy of tmp_path's child, or, for
    root (who writes anywhere), a system folder that refuses it; skips when there is none."""
    import tempfile
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in ("/sys", "/proc/self"):
        try:
            os.close(tempfile.mkstemp(dir=candidate)[0])
        except OSError:
            return Path(candidate)
    pytest.skip("running as root with no read-only folder to write into")


def test_headless_unwritable_render_is_refused_before_computing_and_leaves_no_blend(m, tmp_path):
    cache = tmp_path / "fresh-cache"
    cache.mkdir()
    video = unwritable_folder(tmp_path) / "v.mp4"
    out = tmp_path / "out.blend"
    result = run(*animate_args(m, out, "--render", video), cache=cache)
    assert_user_error(result, f"cannot write '{video}'", "not writable")
    assert not out.exists() and ".part" not in result.stderr
    assert not any(p.name.startswith(("voca-", "deepspeech-")) for p in cache.iterdir())   # no model was read


def test_headless_existing_output_is_kept_unless_overwrite_then_backed_up(m, tmp_path):
    out = tmp_path / "scene.blend"
    out.write_bytes(b"the user's earlier scene")
    assert_user_error(run(*animate_args(m, out), cache=m["cache"]), f"'{out}' already exists", "--overwrite",
                      "scene.blend1")
    assert out.read_bytes() == b"the user's earlier scene"
    result = run(*animate_args(m, out, "--overwrite"), cache=m["cache"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scene.blend1").read_bytes() == b"the user's earlier scene"
    assert open_blend(out)[1].data.shape_keys is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.blend", "scene.blend1"]   # no temporary left


def test_headless_existing_render_and_pc2_are_kept(m, imported_blend, tmp_path):
    video, pc2 = tmp_path / "v.mp4", tmp_path / "a.pc2"
    video.write_bytes(b"an earlier video")
    pc2.write_bytes(b"an earlier cache")
    out = tmp_path / "out.blend"
    assert_user_error(run(*animate_args(m, out, "--render", video), cache=m["cache"]), f"'{video}' already exists")
    assert_user_error(run("export-pc2", imported_blend, "--out", pc2, cache=m["cache"]), f"'{pc2}' already exists")
    assert video.read_bytes() == b"an earlier video" and pc2.read_bytes() == b"an earlier cache"
    assert not out.exists()
    out.write_bytes(b"an earlier scene")
    assert_user_error(run("import-sequence", m["npz"], "--template", m["template"], "--out", out, cache=m["cache"]),
                      f"'{out}' already exists", "--overwrite")
    assert out.read_bytes() == b"an earlier scene"


def test_headless_scene_as_out_needs_overwrite_and_keeps_blend1(m, tmp_path):
    scene_file = tmp_path / "a.blend"
    assert run(*animate_args(m, scene_file), cache=m["cache"]).returncode == 0
    original = scene_file.read_bytes()
    args = animate_args(m, scene_file, "--scene", scene_file, "--condition", "1")
    assert_user_error(run(*args, cache=m["cache"]), "already exists", "--overwrite")
    assert scene_file.read_bytes() == original
    result = run(*args, "--overwrite", cache=m["cache"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.blend1").read_bytes() == original and scene_file.read_bytes() != original


def test_headless_outputs_must_differ_from_each_other_and_the_audio(m, tmp_path):
    clip = tmp_path / "clip.mp4"                       # a WAV under a video's name (read by its header)
    clip.write_bytes(m["wav"].read_bytes())
    out = tmp_path / "o.blend"
    result = run(*animate_args(m, out, "--render", clip, "--overwrite", wav=clip), cache=m["cache"])
    assert_user_error(result, f"--render '{clip}' is also the AUDIO input")
    assert clip.read_bytes() == m["wav"].read_bytes() and not out.exists()


def test_headless_template_needed_only_for_a_new_head(m, tmp_path):
    first = tmp_path / "a.blend"
    assert run(*animate_args(m, first), cache=m["cache"]).returncode == 0
    # VOCA_MODEL_DIR points at an empty folder: no default template exists, and none is given
    args = ["animate", m["wav"], "--voca", m["voca"], "--deepspeech", m["ds"], "--scene", first,
            "--condition", "2", "--out", tmp_path / "b.blend"]
    result = run(*args, cache=m["cache"])
    assert result.returncode == 0, result.stderr
    scene, head = open_blend(tmp_path / "b.blend")
    assert len([k for k in head.data.shape_keys.key_blocks if k.name not in CORRECTION_KEYS]) == 52
    # an empty scene needs a new head: then the template is required, named with the other missing files
    result = run("animate", m["wav"], "--voca", tmp_path, "--deepspeech", m["ds"], "--out", tmp_path / "c.blend",
                 cache=m["cache"])
    assert_user_error(result, "2 model files are missing", "gstep_52280.model.index", "FLAME_sample.ply")


def _stereo(tmp_path, wav, silent_channel):
    from voca_addon.core.speech import audio
    from scipy.io import wavfile
    clip = audio.load_audio(wav)
    stereo = np.zeros((clip.num_samples, 2), np.int16)
    stereo[:, 1 - silent_channel] = clip.samples.astype(np.int16)
    path = tmp_path / "stereo.wav"
    wavfile.write(path, clip.rate, stereo)
    return path


def test_headless_animate_channel_choice(m, engine_output, tmp_path):
    stereo = _stereo(tmp_path, m["wav"], silent_channel=0)
    assert_user_error(run(*animate_args(m, tmp_path / "a.blend", wav=stereo), cache=m["cache"]),
                      "channel 0", "silent", "--channel")
    out = tmp_path / "b.blend"
    result = run(*animate_args(m, out, "--channel", "1", wav=stereo), cache=m["cache"])
    assert result.returncode == 0, result.stderr
    scene, head = open_blend(out)
    error = np.abs(evaluated_vertices(head, scene, 101) - engine_output.vertices([100])[0]).max()
    assert error <= TOLERANCE                          # channel 1 holds the mono clip: the same animation
    assert_user_error(run(*animate_args(m, tmp_path / "c.blend", "--channel", "2", wav=stereo),
                          cache=m["cache"]), "channel 2 does not exist", "2 channel(s)")


@pytest.mark.parametrize("flag, value, fragment", [("--fps", "1001", "at most 1000"), ("--fps", "0", "above 0"),
                                                    ("--style", "1:0.5,4", "'4' is not condition:weight")])
def test_headless_same_option_rules_as_infer(m, tmp_path, flag, value, fragment):
    from tests.core.test_cli import cli
    a = run(*animate_args(m, tmp_path / "a.blend", flag, value), cache=m["cache"])
    b = cli("infer", m["wav"], "--voca", m["voca"], "--deepspeech", m["ds"], "--template", m["template"],
            "--out", tmp_path / "a.npz", flag, value, cache=m["cache"])
    assert_user_error(a, fragment)
    assert_user_error(b, fragment)
    assert a.stderr == b.stderr                        # one wording in every command
