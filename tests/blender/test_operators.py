"""The operators end to end: ``bpy.ops.voca.animate_from_audio`` (execute and the modal's job path) with
random-weight models in the official formats, checked on the EVALUATED mesh against ``core.engine.run``;
every refused input leaves the scene as it was; undo; artist data; save and reopen; the panel's draw."""
from __future__ import annotations

import re
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

import voca_addon  # noqa: E402
from voca_addon.blender.emotion import writer as emotion_writer  # noqa: E402
from voca_addon.blender.speech import operators, panel, pipeline, properties, writer
from voca_addon.blender import jobs, preferences
from voca_addon.core import engine  # noqa: E402
from voca_addon.core.flame import meshio
from voca_addon.core.models import modelfiles

TOLERANCE = 1e-6            # metres: 1 µm
DATA_KINDS = ("objects", "meshes", "shape_keys", "actions", "sounds")


# ---------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def paths(shared_data, voca_ckpt, ds_small_pb):
    return dict(voca=Path(voca_ckpt), deepspeech=Path(ds_small_pb),
                template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test.wav",
                offsets=shared_data / "emotions" / "seed_emotion_offsets.npz")


@pytest.fixture
def addon(scene, paths, model_cache, tmp_path, monkeypatch):
    """The add-on registered from the source tree, with a preferences entry pointing at the models."""
    monkeypatch.setenv("VOCA_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path / "no-default-models"))
    voca_addon.register()
    entry = bpy.context.preferences.addons.new()
    entry.module = preferences.ADDON_ID
    prefs = entry.preferences
    prefs.voca_path, prefs.deepspeech_path = str(paths["voca"]), str(paths["deepspeech"])
    prefs.template_path = str(paths["template"])
    scene.voca.audio_path = str(paths["wav"])
    yield prefs
    entry = bpy.context.preferences.addons.get(preferences.ADDON_ID)
    if entry is not None:
        bpy.context.preferences.addons.remove(entry)
    voca_addon.unregister()


@pytest.fixture
def head(addon, paths):
    obj = pipeline.ensure_head(bpy.context, str(paths["template"]))
    obj.voca_articulation.closures = False      # VOCA's exact result (lip closures: test_articulation*.py)
    return obj


@pytest.fixture(scope="module")
def engine_anim(tmp_path_factory):
    """Factory: ``core.engine.run`` on an audio file with the same models (memoised)."""
    cache, models = {}, tmp_path_factory.mktemp("engine-model-cache")

    def run(paths, audio=None, condition=3):
        key = (str(audio or paths["wav"]), str(condition), str(paths["voca"]))
        if key not in cache:
            ds = modelfiles.load_deepspeech(paths["deepspeech"], cache=models)
            voca = modelfiles.load_voca(paths["voca"], cache=models)
            template = meshio.read_mesh(paths["template"]).vertices
            cache[key] = engine.run(audio or paths["wav"], ds, voca, template,
                                    condition if isinstance(condition, int) else dict(condition))
        return cache[key]
    return run


def snapshot() -> dict:
    """Data-block counts, every object's keys, the strips and the frame range."""
    scene = bpy.context.scene
    state = {kind: len(getattr(bpy.data, kind)) for kind in DATA_KINDS}
    for obj in bpy.data.objects:
        key = obj.data.shape_keys if obj.type == "MESH" else None
        state[obj.name] = [kb.name for kb in key.key_blocks] if key else []
    editor = scene.sequence_editor
    state["strips"] = sorted((s.name, s.channel, s.frame_start) for s in versions.strips_all(scene)) if editor else None
    state["range"] = (scene.frame_start, scene.frame_end)
    return state


def set_fps(scene, fps):
    scene.render.fps, scene.render.fps_base = fps, 1.0


def owned_strips(scene):
    return [s for s in versions.strips_all(scene) if s.get(writer.OWNED)]


def assert_matches(obj, scene, anim, start, evaluated, frames=None, extra=None):
    """Evaluated mesh-local vertices == anim (resampled to the scene rate) at scene frame start + i."""
    resampled = anim.resampled(writer.scene_fps(scene))
    frames = frames or sorted({0, 1, resampled.num_frames // 2, resampled.num_frames - 1})
    expected = resampled.vertices(frames)
    for i, frame in enumerate(frames):
        want = expected[i] + (extra(frame) if extra else 0)
        error = np.abs(evaluated(obj, scene, start + frame) - want).max()
        assert error <= TOLERANCE, f"frame {frame}: {error:.3g} m"
    return resampled


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


def run_op(*args):
    """bpy.ops.voca.animate_from_audio; returns the result set or the RuntimeError's message."""
    try:
        return bpy.ops.voca.animate_from_audio(*args)
    except RuntimeError as exc:
        return str(exc)


# ---------------------------------------------------------------------------- the execute path

@pytest.mark.smoke
@pytest.mark.parametrize("fps", [24, 30, 60])
def test_animate_execute_matches_engine(addon, head, paths, engine_anim, evaluated, fps):
    scene = bpy.context.scene
    set_fps(scene, fps)
    scene.frame_start = 7
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    resampled = assert_matches(head, scene, engine_anim(paths), 7, evaluated)
    assert (scene.frame_start, scene.frame_end) == (7, 7 + resampled.num_frames - 1)
    assert [(s.frame_start, s.type) for s in owned_strips(scene)] == [(7, "SOUND")] * versions.SOUND_STRIPS
    assert len(head.data.shape_keys.key_blocks) == 52 <= 60
    assert len(bpy.data.actions) == 1 and not scene.voca.is_running


def test_animate_custom_start_and_style_blend(addon, head, paths, engine_anim, evaluated):
    scene, props = bpy.context.scene, bpy.context.scene.voca
    props.use_scene_start, props.start_frame = False, 40
    props.style_mode = "BLEND"
    props.blend_weights = (0.5, 0, 0, 0.5, 0, 0, 0, 0)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert_matches(head, scene, engine_anim(paths, condition=((1, 0.5), (4, 0.5))), 40, evaluated)
    assert [s.frame_start for s in owned_strips(scene)] == [40] * versions.SOUND_STRIPS and scene.frame_start == 40


def test_animate_per_frame_mode(addon, head, paths, engine_anim, evaluated, tmp_path):
    scene = bpy.context.scene
    short = write_wav(tmp_path / "short.wav", _speechlike(0.5))
    scene.voca.audio_path, scene.voca.mode = str(short), "per_frame"
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    resampled = assert_matches(head, scene, engine_anim(paths, audio=short), 1, evaluated)
    assert len(head.data.shape_keys.key_blocks) == resampled.num_frames + 1


def test_animate_with_emotion_from_delta_file(addon, head, paths, engine_anim, evaluated):
    scene, props = bpy.context.scene, bpy.context.scene.voca
    props.emotion, props.emotion_source, props.strength, props.ease_frames = "happy", str(paths["offsets"]), 1.5, 6
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    key = head.data.shape_keys
    assert "EMO happy" in key.key_blocks and len(key.key_blocks) == 53 <= 60
    with np.load(paths["offsets"]) as z:
        names = list(z["names"])
        delta = z["offsets"][names.index("happy")] - z["offsets"][names.index("neutral")]
    fcurve = emotion_writer._find_curve(key, "EMO happy")
    end = scene.frame_end
    assert fcurve.group.name == emotion_writer.GROUP
    assert fcurve.evaluate(1) == 0 and fcurve.evaluate(end) == 0
    assert fcurve.evaluate(7) == pytest.approx(1.5) and fcurve.evaluate(end - 6) == pytest.approx(1.5)
    plateau = lambda frame: 1.5 * delta if 6 <= frame <= end - 7 else 0      # noqa: E731  (i = frame - 1)
    assert_matches(head, scene, engine_anim(paths), 1, evaluated, frames=[10, 40, 80], extra=plateau)


def _state_of(obj):
    key = obj.data.shape_keys
    curves = versions.fcurves(key.animation_data.action)
    return ([kb.name for kb in key.key_blocks], len(bpy.data.actions), len(owned_strips(bpy.context.scene)),
            [(fc.data_path, len(fc.keyframe_points)) for fc in curves])


def test_animate_rerun_gives_the_same_scene(addon, head, paths, evaluated):
    props = bpy.context.scene.voca
    props.emotion, props.emotion_source = "sad", str(paths["offsets"])
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    first, state = _state_of(head), snapshot()
    frame = evaluated(head, bpy.context.scene, 30)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}      # the key exists now: keyed as it is
    props.emotion_source = ""
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert _state_of(head) == first and snapshot() == state
    assert first[1:3] == (1, versions.SOUND_STRIPS)
    np.testing.assert_array_equal(evaluated(head, bpy.context.scene, 30), frame)


def test_animate_undo_restores_previous_state(addon, head):
    bpy.ops.ed.undo_push(message="before VOCA")       # background Blender: creates the undo stack
    before = snapshot()
    assert bpy.ops.voca.animate_from_audio("EXEC_DEFAULT", True) == {"FINISHED"}   # undo=True: one step
    assert snapshot() != before
    bpy.ops.ed.undo()
    assert snapshot() == before
    assert bpy.data.objects[pipeline.HEAD_NAME].data.shape_keys is None


def test_animate_leaves_artist_data_untouched(addon, head, paths, engine_anim, evaluated):
    scene = bpy.context.scene
    head.shape_key_add(name="Basis", from_mix=False)
    smile = head.shape_key_add(name="Smile", from_mix=False)
    smile_co = (meshio.read_mesh(paths["template"]).vertices + 0.01).astype(np.float32)
    smile.data.foreach_set("co", smile_co.ravel())
    head.data.shape_keys.key_blocks["Smile"].driver_add("value").driver.expression = "0"
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    scene.collection.objects.link(cube)
    cube.keyframe_insert("location", index=0, frame=1)
    cube_action = cube.animation_data.action
    music = versions.new_sound_strip(scene, "music", paths["wav"], 1, 1) if versions.compat.HAS_AUDIO else None
    bpy.context.view_layer.objects.active = head
    for _ in range(2):
        assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert_matches(head, scene, engine_anim(paths), 1, evaluated)
    key = head.data.shape_keys
    assert len(key.animation_data.drivers) == 1
    np.testing.assert_array_equal(writer.key_co(key.key_blocks["Smile"]), smile_co)
    assert cube.animation_data.action == cube_action and len(bpy.data.actions) == 2
    if music is not None:
        assert (music.name, music.channel, music.frame_start) == ("music", 1, 1)
        assert len(versions.strips_all(scene)) == 2 and owned_strips(scene)[0].channel == 2
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert [kb.name for kb in key.key_blocks] == ["Basis", "Smile"] and len(key.animation_data.drivers) == 1
    assert versions.strips_all(scene) == [music] * versions.SOUND_STRIPS and list(bpy.data.actions) == [cube_action]


def test_animate_save_and_reopen(addon, head, paths, engine_anim, evaluated, tmp_path):
    scene, props = bpy.context.scene, bpy.context.scene.voca
    set_fps(scene, 30)
    props.emotion, props.emotion_source = "fear", str(paths["offsets"])
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    state = snapshot()
    blend = tmp_path / "voca.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene, obj = bpy.context.scene, bpy.data.objects[pipeline.HEAD_NAME]
    assert snapshot() == state and scene.voca.emotion == "fear" and not scene.voca.is_running
    assert emotion_writer.emotion_keys(obj) == {"fear": "EMO fear"}
    assert [s.frame_start for s in owned_strips(scene)] == [1] * versions.SOUND_STRIPS
    last = engine_anim(paths).resampled(30).num_frames - 1
    assert_matches(obj, scene, engine_anim(paths), 1, evaluated, frames=[0, last])   # emotion at 0 there
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"} and snapshot() == state


# ---------------------------------------------------------------------------- the modal's job path

def drive(run, timeout=60.0):
    """Step a JobRun like the modal's timer does, collecting reports."""
    reports, deadline = [], time.monotonic() + timeout
    while True:
        status = run.step(bpy.context, lambda kind, text: reports.append((set(kind), text)))
        if status != "RUNNING_MODAL":
            return status, reports
        assert time.monotonic() < deadline, "the worker did not finish"
        time.sleep(0.02)


def test_modal_job_applies_like_execute(addon, head, paths, engine_anim, evaluated):
    scene = bpy.context.scene
    set_fps(scene, 25)
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    assert scene.voca.is_running and operators.VOCA_OT_animate_from_audio.disabled_reason(bpy.context)
    status, reports = drive(run)
    assert status == "FINISHED" and {"INFO"} in [kind for kind, _ in reports]
    assert {"ERROR"} not in [kind for kind, _ in reports]
    assert not scene.voca.is_running and scene.voca.progress == pytest.approx(1.0)
    assert_matches(head, scene, engine_anim(paths), 1, evaluated)
    assert len(owned_strips(scene)) == versions.SOUND_STRIPS and run.outcome.write.frames == scene.frame_end


def test_invoke_without_event_loop_runs_synchronously(addon, head, paths, engine_anim, evaluated):
    assert bpy.app.background
    assert bpy.ops.voca.animate_from_audio("INVOKE_DEFAULT") == {"FINISHED"}   # no modal without events
    assert_matches(head, bpy.context.scene, engine_anim(paths), 1, evaluated, frames=[0, 50])


def test_modal_job_cancel_changes_nothing(addon, head):
    before = snapshot()
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    run.cancel()
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"WARNING"}, "VOCA: cancelled; nothing was changed.")]
    run.job.join(10)
    assert snapshot() == before and not bpy.context.scene.voca.is_running


def test_modal_job_cancel_flag_stops_the_worker():
    job = pipeline.AnimateJob(pipeline.AnimateSettings(audio_path="unused"))
    job.cancel()
    with pytest.raises(pipeline.Cancelled):
        job._progress(0.5, "speech recognition network")


def test_modal_job_reports_worker_errors(addon, head, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    bpy.context.scene.voca.audio_path = str(bad)
    before = snapshot()
    status, reports = drive(jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context))
    assert status == "CANCELLED" and reports[0][0] == {"ERROR"} and "noise.wav" in reports[0][1]
    assert snapshot() == before


# ---------------------------------------------------------------------------- refused inputs

def _speechlike(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (3000 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 300, t.size))


def test_refuses_mesh_with_other_vertex_count(addon, paths):
    small = writer.build_head("Small", meshio.read_mesh(paths["template"]).vertices[:100],
                              np.array([[0, 1, 2]]), bpy.context.scene.collection)
    bpy.context.view_layer.objects.active = small
    before = snapshot()
    message = run_op()
    assert "has 100 vertices; VOCA needs 5023" in message and "Add FLAME head" in message
    assert snapshot() == before
    settings = pipeline.AnimateSettings(audio_path=str(paths["wav"]), voca_path=str(paths["voca"]),
                                        deepspeech_path=str(paths["deepspeech"]),
                                        template_path=str(paths["template"]))
    with pytest.raises(pipeline.VocaError, match="has 100 vertices"):
        pipeline.animate(bpy.context.scene, small, settings)
    assert snapshot() == before


@pytest.mark.parametrize("which,expected", [
    ("voca_path", r"VOCA checkpoint file 'gstep_52280\.model\.index' not found.*voca\.is\.tue\.mpg\.de"),
    ("deepspeech_path", r"output_graph\.pb' not found.*github\.com/mozilla/DeepSpeech/releases/tag/v0\.1\.0"),
    ("template_path", r"FLAME template mesh not found.*FLAME_sample\.ply.*TimoBolkart/voca"),
])
def test_refuses_missing_model_files(addon, head, tmp_path, which, expected):
    name = {"voca_path": "gstep_52280.model", "deepspeech_path": "output_graph.pb",
            "template_path": "FLAME_sample.ply"}[which]
    setattr(addon, which, str(tmp_path / "missing" / name))
    status = which.replace("_path", "")
    assert not getattr(addon, f"{status}_ok") and "not found" in getattr(addon, f"{status}_status")
    before = snapshot()
    if which == "template_path":            # only a new head needs the template (the scene's is its own)
        try:
            message = str(bpy.ops.voca.add_flame_head())
        except RuntimeError as exc:
            message = str(exc)
    else:
        message = run_op()
    assert re.search(expected, message), message
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["corrupt", "empty", "silent", "short", "missing", "folder"])
def test_refuses_bad_audio(addon, head, tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(500))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "silent":
        write_wav(path, np.zeros(16000))
    elif kind == "short":
        write_wav(path, _speechlike(0.01))
    elif kind == "folder":
        path.mkdir()
    bpy.context.scene.voca.audio_path = str(path)
    before = snapshot()
    message = run_op()
    assert isinstance(message, str) and message.startswith("Error:") and path.name in message, message
    words = {"corrupt": "is a corrupt WAV file", "empty": "is empty (0 bytes)", "silent": "the audio is silent",
             "short": "at least 25 ms", "missing": "was not found", "folder": "is a folder"}[kind]
    assert words in message
    assert snapshot() == before


def test_refuses_unreadable_emotion_source(addon, head, tmp_path):
    props = bpy.context.scene.voca
    garbage = tmp_path / "emotions.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    before = snapshot()
    for source, words in ((garbage, "cannot read emotion file"), (tmp_path / "gone.npz", "not found"),
                          (tmp_path / "notes.txt", "not found")):
        props.emotion, props.emotion_source = "happy", str(source)
        message = run_op()
        assert words in message and snapshot() == before, message
    (tmp_path / "notes.txt").write_text("hello")
    assert "is not an emotion source" in run_op()
    props.emotion_source = ""                     # no source and no such key on the head
    assert "has no emotion key 'happy'" in run_op()
    assert snapshot() == before


def test_refuses_emotion_name_taken_by_an_artist_key(addon, head, paths):
    head.shape_key_add(name="Basis", from_mix=False)
    head.shape_key_add(name="EMO happy", from_mix=False)
    props = bpy.context.scene.voca
    props.emotion, props.emotion_source = "happy", str(paths["offsets"])
    before = snapshot()
    assert "already has a shape key 'EMO happy' that VOCA did not create" in run_op()
    assert snapshot() == before


def test_refuses_foreign_action_and_edit_mode(addon, head):
    head.shape_key_add(name="Basis", from_mix=False)
    head.shape_key_add(name="Smile", from_mix=False).keyframe_insert("value", frame=1)
    before = snapshot()
    assert "did not create" in run_op() and snapshot() == before
    bpy.ops.object.mode_set(mode="EDIT")
    assert "Edit Mode" in run_op()
    bpy.ops.object.mode_set(mode="OBJECT")
    assert snapshot() == before


def test_non_ascii_audio_and_model_paths_work(addon, head, paths, engine_anim, evaluated, tmp_path):
    folder = tmp_path / "modèles 模型 ü"
    folder.mkdir()
    for source in paths["voca"].parent.glob("gstep_52280.model.*"):
        shutil.copy(source, folder / source.name)
    shutil.copy(paths["deepspeech"], folder / "output_graph.pb")
    shutil.copy(paths["template"], folder / "FLAME_sample.ply")
    audio = shutil.copy(paths["wav"], folder / "Sprache 音声 ñ.wav")
    addon.voca_path, addon.deepspeech_path = str(folder / "gstep_52280.model"), str(folder / "output_graph.pb")
    addon.template_path = str(folder / "FLAME_sample.ply")
    assert addon.voca_ok and addon.deepspeech_ok and addon.template_ok
    bpy.context.scene.voca.audio_path = str(audio)
    pipeline.clear_model_cache()
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert_matches(head, bpy.context.scene, engine_anim(paths), 1, evaluated)
    assert [Path(bpy.path.abspath(s.sound.filepath)) for s in owned_strips(bpy.context.scene)] == \
        [Path(audio)] * versions.SOUND_STRIPS


# ---------------------------------------------------------------------------- other operators, prefs, panel

def test_add_flame_head_operator(addon, paths, tmp_path):
    assert bpy.ops.voca.add_flame_head() == {"FINISHED"}
    obj = bpy.context.active_object
    assert len(obj.data.vertices) == 5023 and obj.select_get() and obj[writer.OWNED]
    co = np.empty(5023 * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    template = meshio.read_mesh(paths["template"])
    np.testing.assert_array_equal(co.reshape(-1, 3), template.vertices.astype(np.float32))
    loops = np.empty(len(obj.data.loops), np.int32)                   # every version builds the faces
    obj.data.loops.foreach_get("vertex_index", loops)
    assert len(obj.data.polygons) == len(template.faces) == 9976
    np.testing.assert_array_equal(loops.reshape(-1, 3), template.faces)
    before = snapshot()
    with pytest.raises(RuntimeError, match="FLAME template mesh not found"):
        bpy.ops.voca.add_flame_head(filepath=str(tmp_path / "none.ply"))
    other = tmp_path / "tri.obj"
    other.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(RuntimeError, match="has 3 vertices; VOCA needs 5023"):
        bpy.ops.voca.add_flame_head(filepath=str(other))
    assert snapshot() == before


def test_remove_animation_restores_plain_head(addon, head):
    before = snapshot()
    assert "has no VOCA animation" in str(_raises(bpy.ops.voca.remove_animation))
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    after = snapshot()
    assert head.data.shape_keys is None and after == dict(before, range=after["range"], strips=[])


def test_remove_after_every_shape_key_was_deleted_takes_what_is_left(addon, head):
    """Delete All Shape Keys on an animated head: Remove is still offered and takes the sound strip, the head's
    record of it and gives back the artist's frame range."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 300
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end) != (1, 300)
    bpy.ops.object.shape_key_remove(all=True)                  # Shape Key Specials › Delete All Shape Keys
    assert head.data.shape_keys is None
    assert operators.VOCA_OT_remove_animation.disabled_reason(bpy.context) is None
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert owned_strips(scene) == [] and writer.HEAD_STRIP not in head and writer.FRAME_RANGE not in scene
    assert (scene.frame_start, scene.frame_end) == (1, 300)
    assert "has no VOCA animation" in str(_raises(bpy.ops.voca.remove_animation))


def _raises(op):
    try:
        op()
    except RuntimeError as exc:
        return exc
    raise AssertionError("no error")


def test_preferences_checks(addon, paths, tmp_path):
    assert preferences.ADDON_ID == "voca_addon"
    assert addon.voca_ok and "8 speaking styles" in addon.voca_status
    archive = tmp_path / "deepspeech-0.1.0-models.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08" + bytes(100))
    addon.deepspeech_path = str(archive)
    assert not addon.deepspeech_ok and "extract models/output_graph.pb" in addon.deepspeech_status
    text = tmp_path / "output_graph.pb"
    text.write_text("node { name: 'x' }")
    addon.deepspeech_path = str(text)
    assert not addon.deepspeech_ok and "not a TensorFlow frozen graph" in addon.deepspeech_status
    addon.flame_model_path = str(paths["offsets"])
    assert not addon.flame_model_ok and "not a FLAME model pickle" in addon.flame_model_status
    addon.flame_model_path = ""
    assert addon.flame_model_ok and "Not set" in addon.flame_model_status
    addon.voca_path = str(paths["template"])              # a file that is no checkpoint
    assert not addon.voca_ok
    addon.voca_path = str(paths["voca"].parent)           # the folder works
    assert addon.voca_ok and bpy.ops.voca.check_model_files() == {"FINISHED"}


def test_settings_from_scene(addon, head, paths):
    props = bpy.context.scene.voca
    props.emotion, props.use_scene_start, props.start_frame = " happy ", False, 12
    settings = properties.settings_from_scene(bpy.context.scene, addon, head)
    assert settings.condition == 3 and settings.emotion == "happy" and settings.emotion_source is None
    assert settings.start_frame == 12 and settings.voca_path == str(paths["voca"])
    addon.flame_model_path = "/models/generic_model.pkl"
    assert properties.settings_from_scene(bpy.context.scene, addon, head).emotion_source == addon.flame_model_path
    props.style_mode = "BLEND"
    props.blend_weights = (0,) * 8
    assert properties.settings_from_scene(bpy.context.scene, None, head).voca_path is None
    settings = properties.settings_from_scene(bpy.context.scene, addon, head)
    assert settings.condition == {}
    with pytest.raises(pipeline.VocaError, match="no positive weight"):
        pipeline.validate_settings(settings)
    assert properties.emotion_suggestions(head)[:2] == ["happy", "sad"]


class FakeLayout:
    """Records a panel's draw calls and checks every property and operator it names."""

    ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())

    def __init__(self, log):
        self.log, self.enabled, self.active = log, True, True

    def _child(self, *args, **kwargs):
        return FakeLayout(self.log)

    row = column = box = split = _child

    def _icon(self, kwargs):
        assert kwargs.get("icon", "NONE") in self.ICONS, kwargs["icon"]

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, name
        self._icon(kwargs)
        self.log.append(("prop", name))

    def operator(self, idname, **kwargs):
        self._icon(kwargs)
        category, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, category), name), idname
        self.log.append(("operator", idname, self.enabled))
        return type("Props", (), {})()

    def label(self, text="", **kwargs):
        self._icon(kwargs)
        self.log.append(("label", text))

    def progress(self, **kwargs):
        self.log.append(("progress", kwargs["factor"]))

    def separator(self, **kwargs):
        pass


def draw(panel_class):
    log = []
    panel_class.draw(type("P", (), {"layout": FakeLayout(log)})(), bpy.context)
    return log


def test_panels_draw_every_state(addon, paths):
    log = draw(panel.VIEW3D_PT_voca)
    assert ("operator", "voca.animate_from_audio", False) in log
    assert any("Select a FLAME head" in entry[1] for entry in log if entry[0] == "label")
    bpy.ops.voca.add_flame_head()
    log = draw(panel.VIEW3D_PT_voca)
    assert ("operator", "voca.animate_from_audio", True) in log
    assert ("label", "FLAME head: 5023 vertices ✓") in log
    bpy.context.scene.voca.style_mode = "BLEND"
    assert sum(entry == ("prop", "blend_weights") for entry in draw(panel.VIEW3D_PT_voca)) == 8
    bpy.context.scene.voca.emotion_source = str(paths["offsets"])
    assert bpy.ops.voca.add_emotions() == {"FINISHED"}
    log = draw(panel.VOCA_PT_emotions)
    assert ("operator", "voca.key_emotion", True) in log
    assert any(entry[0] == "label" and "happy" in entry[1] for entry in log)
    assert ("label", "VOCA") in draw(panel.VOCA_PT_models)
    from types import SimpleNamespace
    jobs._running[bpy.context.scene.session_uid] = SimpleNamespace(op=operators.VOCA_OT_animate_from_audio)
    try:
        assert ("progress", 0.0) in draw(panel.VIEW3D_PT_voca)
        assert "animating this scene" in run_op()
    finally:
        del jobs._running[bpy.context.scene.session_uid]


def enum_names(scene):
    """The speaking-style menu as Blender builds it (the dynamic items for this context)."""
    rna = scene.voca.bl_rna.properties["condition"]
    return [item.name for item in rna.enum_items_static] or [
        name for _, name, *_ in properties._condition_enum_items(scene.voca, bpy.context)]


def test_panel_text_fits_the_sidebar_and_reads_plainly(addon, paths):
    """Every label fits the default sidebar width (panel.WRAP characters); property labels are short; the
    emotion sub-panel speaks plainly; Ease names its unit."""
    bpy.ops.voca.add_flame_head()
    props = bpy.context.scene.voca
    logs = [draw(panel.VIEW3D_PT_voca), draw(panel.VOCA_PT_emotions), draw(panel.VOCA_PT_models)]
    props.emotion, props.strength = "surprised", 1.25
    logs.append(draw(panel.VOCA_PT_emotions))
    labels = [entry[1] for log in logs for entry in log if entry[0] == "label"]
    assert labels and max(map(len, labels)) <= panel.WRAP, max(labels, key=len)
    assert "Choose an emotion in the VOCA panel above to key it here." in " ".join(labels)
    assert "Key the emotion 'surprised' at intensity 1.25:" in " ".join(labels)
    assert "…" not in " ".join(labels)
    assert props.bl_rna.properties["ease_frames"].name == "Ease (frames)"
    for name in ("strength", "ease_frames", "key_frame_start", "key_frame_end"):   # own row: name + value
        assert len(props.bl_rna.properties[name].name) <= 14, name


def test_panel_key_range_follows_the_scene_until_set(addon):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 250
    props = scene.voca
    assert (props.key_frame_start, props.key_frame_end) == (1, 250)
    scene.frame_start, scene.frame_end = 10, 90
    assert (props.key_frame_start, props.key_frame_end) == (10, 90)
    props.key_frame_end = 40
    scene.frame_end = 300
    assert (props.key_frame_start, props.key_frame_end) == (10, 40)


def test_operators_style_menu_shows_the_checkpoints_condition_names(addon, head, paths, tmp_path, engine_anim):
    """The release (8 conditions, no names file) shows VOCASET's subjects; a retrained checkpoint with 4
    named conditions shows its names, and its condition 4 animates exactly like the engine's."""
    from voca_addon.core.models import conditions
    from voca_addon.core.formats import tfbundle
    scene = bpy.context.scene
    assert enum_names(scene)[2] == "3 · VOCASET speaker 00137" and len(enum_names(scene)) == 8
    tips = [item[2] for item in properties._condition_enum_items(scene.voca, bpy.context)]
    assert "FaceTalk_170725_00137_TA" in tips[2] and "VOCASET subject" in tips[2]
    tensors = tfbundle.read_checkpoint(paths["voca"])
    rng = np.random.default_rng(4)
    for name in ("VOCA/SpeechEncoder/conv1/weights", "VOCA/SpeechEncoder/fc1/weights"):
        shape = list(tensors[name].shape)
        shape[-2] -= 4                                  # 8 → 4 conditions
        tensors[name] = rng.standard_normal(shape).astype(np.float32) * 0.1
    prefix = tfbundle.write_checkpoint(tmp_path / "emo" / "gstep_300.model", tensors)
    conditions.write_conditions(prefix, ["neutral", "happy", "sad", "angry"], condition_by="emotion")
    addon.voca_path = str(prefix)
    assert enum_names(scene) == ["1 · neutral", "2 · happy", "3 · sad", "4 · angry"]
    scene.voca.condition = "4"
    scene.voca.style_mode = "BLEND"
    scene.voca.blend_weights = (0, 0, 0, 0, 1, 1, 1, 1)        # sliders beyond the model's 4 are ignored
    with pytest.raises(pipeline.VocaError, match="no positive weight"):
        pipeline.validate_settings(properties.settings_from_scene(scene, addon, head))
    scene.voca.style_mode = "SINGLE"
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    expected = engine_anim(dict(paths, voca=prefix), condition=4).resampled(writer.scene_fps(scene))
    frame = scene.frame_start + 40
    scene.frame_set(frame)
    evaluated = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    got = np.empty(len(evaluated.vertices) * 3, np.float32)
    evaluated.vertices.foreach_get("co", got)
    head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh_clear()
    assert np.abs(got.reshape(-1, 3) - expected.vertices([40])[0]).max() <= TOLERANCE


def test_animate_an_existing_head_needs_no_template_file(addon, head, paths, engine_anim, evaluated):
    """The head in the scene is the template: no template path set, none in the model folder."""
    addon.template_path = ""
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert_matches(head, bpy.context.scene, engine_anim(paths), 1, evaluated)


def test_animate_uses_the_chosen_channel_of_a_stereo_file(addon, head, paths, engine_anim, evaluated, tmp_path):
    """Channel 0 silent, the speech on channel 1: 'First' is refused with a clear message, 'Second' and
    'Mix' (the speech at half level) animate; 'Second' equals the engine on the mono speech."""
    import wave
    with wave.open(str(paths["wav"])) as w:
        rate, mono = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(np.column_stack([np.zeros_like(mono), mono]).astype("<i2").tobytes())
    scene = bpy.context.scene
    scene.voca.audio_path = str(stereo)
    before = snapshot()
    assert "silent" in run_op()
    assert snapshot() == before
    scene.voca.channel = "1"
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert_matches(head, scene, engine_anim(paths), 1, evaluated)
    scene.voca.channel = "mix"
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}


def test_modal_job_survives_renaming_the_scene_and_the_head(addon, head, paths, engine_anim, evaluated):
    """Renaming the scene or the head while the worker runs: the run still applies, and the scene is not
    left 'running' (found by session_uid, not by name)."""
    scene = bpy.context.scene
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    scene.name, head.name = "Renamed scene", "Renamed head"
    status, reports = drive(run)
    assert status == "FINISHED" and not scene.voca.is_running, reports
    assert_matches(head, scene, engine_anim(paths), 1, evaluated, frames=[0, 40])


def test_modal_error_closes_the_runs_own_scene(addon, head, monkeypatch, tmp_path):
    """An unexpected error while Animate's modal steps the run (the modal loop shared with the Character
    jobs): one reported line, and the run's scene, not the window's, is no longer 'running'."""
    from types import SimpleNamespace
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path / "logs"))
    scene = bpy.context.scene
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    assert scene.voca.is_running

    def broken(*_):
        raise RuntimeError("injected")
    monkeypatch.setattr(run, "step", broken)
    reports, ended = [], []
    op = SimpleNamespace(_run=run, bl_idname="voca.animate_from_audio",
                         report=lambda k, t: reports.append((k, t)), _end=ended.append)
    other = bpy.data.scenes.new("Other")
    with bpy.context.temp_override(scene=other):
        status = operators.VOCA_OT_animate_from_audio.modal(op, bpy.context,
                                                           SimpleNamespace(type="TIMER", value="NOTHING"))
    assert status == {"CANCELLED"} and ended
    assert len(reports) == 1 and reports[0][0] == {"ERROR"} and "injected" in reports[0][1]
    assert not scene.voca.is_running and scene.voca.progress_stage == "cancelled"
    run.job.join(60)
    assert head.data.shape_keys is None                                   # nothing was applied
