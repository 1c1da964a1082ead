"""The one job runner (:mod:`voca_addon.blender.jobs`): one running registry per scene for Animate from audio
and the Character jobs — each refused (a clear reason, nothing changed) while the other runs on the same
scene, both allowed on two scenes; a file saved mid-job holds the scene as before the job; closing the file
or disabling the add-on cancels live jobs. Driven without a window through :meth:`JobRun.step`, as the modal
timer does. Real data: the FLAME template, the ARKit face with its landmark pairs, test.wav."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.blender import jobs  # noqa: E402
from voca_addon.blender.character import operators as character_ops  # noqa: E402
from voca_addon.blender.character import writer as character_writer  # noqa: E402
from voca_addon.blender.speech import operators  # noqa: E402
from voca_addon.core.character import landmarks as lm  # noqa: E402
from voca_addon.core.errors import VocaError  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402

from tests.blender.test_operators import addon, head, paths, snapshot  # noqa: E402,F401  (fixtures)
from tests.blender.test_character_jobs import drive, state  # noqa: E402

ANIMATE, FIT = operators.VOCA_OT_animate_from_audio, character_ops.VOCA_OT_character_fit


def character_on(scene, shared_data, tmp_path):
    """The ARKit face as the Character target of ``scene`` (its 68 landmark pairs, 60 fps)."""
    folder = shared_data / "arkit"
    mesh = meshio.read_mesh(folder / "ARKit_blendshapes" / "Neutral.obj")
    obj = character_writer.build_target("Face", mesh.vertices, mesh.faces, scene.collection)
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(folder / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(folder / "ARKit_landmarks.txt", dtype=int))
    scene.voca_character.target, scene.voca_character.pairs_path = obj, str(pairs)
    return obj


@pytest.fixture
def both(addon, head, shared_data, tmp_path):
    """One scene with the FLAME head (Animate) and the ARKit face (Character)."""
    return head, character_on(bpy.context.scene, shared_data, tmp_path)


@pytest.mark.smoke
def test_animate_is_refused_while_a_character_job_runs_on_the_scene(both):
    head, face = both
    before, face_before = snapshot(), state(face)
    run = jobs.JobRun(FIT, bpy.context)
    try:
        assert ANIMATE.disabled_reason(bpy.context) == character_ops.CHARACTER_BUSY
        with pytest.raises(RuntimeError, match="working on the character"):
            bpy.ops.voca.animate_from_audio()
        with pytest.raises(VocaError, match="working on the character"):
            jobs.JobRun(ANIMATE, bpy.context)
        assert jobs.live(bpy.context.scene) is run                       # the Character job is still the one
        assert bpy.context.scene.voca.is_running and bpy.context.scene.voca_character.is_running
        assert not bpy.ops.voca.remove_animation.poll()
    finally:
        run.cancel()
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"WARNING"}, FIT.cancelled_text())]
    run.job.join(120)
    assert snapshot() == before and state(face) == face_before and head.data.shape_keys is None
    assert ANIMATE.disabled_reason(bpy.context) is None and not jobs.is_running(bpy.context.scene)


def test_a_character_job_is_refused_while_animate_runs_on_the_scene(both):
    head, face = both
    before, face_before = snapshot(), state(face)
    run = jobs.JobRun(ANIMATE, bpy.context)
    try:
        for op in (FIT, character_ops.VOCA_OT_character_guess_landmarks, character_ops.VOCA_OT_character_transfer,
                   character_ops.VOCA_OT_character_drive):
            assert op.disabled_reason(bpy.context) == ANIMATE.BUSY, op
        with pytest.raises(RuntimeError, match="animating this scene"):
            bpy.ops.voca.character_fit()
        with pytest.raises(VocaError, match="animating this scene"):
            jobs.JobRun(FIT, bpy.context)
        with pytest.raises(VocaError, match="animating this scene"):   # nor a second Animate
            jobs.JobRun(ANIMATE, bpy.context)
    finally:
        run.cancel()
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"WARNING"}, ANIMATE.CANCELLED)]
    run.job.join(120)
    assert snapshot() == before and state(face) == face_before and character_io_fit(face) is None


def character_io_fit(obj):
    from voca_addon.blender.character import data as character_io
    return character_io.residuals(obj)


def test_animate_and_a_character_job_run_side_by_side_on_two_scenes(addon, head, paths, shared_data, tmp_path):
    first = bpy.context.scene
    second = bpy.data.scenes.new("Second")
    second.render.fps, second.render.fps_base = 60, 1.0
    face = character_on(second, shared_data, tmp_path)
    animate = jobs.JobRun(ANIMATE, bpy.context)
    with bpy.context.temp_override(scene=second):
        assert FIT.disabled_reason(bpy.context) is None
        fit = jobs.JobRun(FIT, bpy.context)
        assert ANIMATE.disabled_reason(bpy.context) == character_ops.CHARACTER_BUSY
    assert ANIMATE.disabled_reason(bpy.context) == ANIMATE.BUSY
    assert jobs.live(first) is animate and jobs.live(second) is fit
    assert drive(fit)[0] == "FINISHED" and drive(animate)[0] == "FINISHED"
    assert character_io_fit(face) is not None and head.data.shape_keys is not None
    assert second.voca_character.progress == pytest.approx(1.0) and first.voca.progress == pytest.approx(1.0)
    assert not jobs._running


def test_a_file_saved_mid_job_holds_the_scene_as_before_the_job(addon, head, tmp_path):
    """Saving (Ctrl-S, an autosave) while Animate runs: the saved file holds the scene before the run, never
    half of it, and is not 'running' when reopened; the run still finishes in the open session."""
    before, name = snapshot(), head.name
    run = jobs.JobRun(ANIMATE, bpy.context)
    saved = tmp_path / "mid-job.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(saved), copy=True)
    status, reports = drive(run)
    assert status == "FINISHED", reports
    assert head.data.shape_keys is not None                              # applied here, after the save
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    assert snapshot() == before
    assert bpy.data.objects[name].data.shape_keys is None
    assert not bpy.context.scene.voca.is_running and ANIMATE.disabled_reason(bpy.context) is None


def test_closing_the_file_or_disabling_the_add_on_cancels_live_jobs(both, tmp_path):
    name = both[0].name
    empty = tmp_path / "empty.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(empty), copy=True)
    run = jobs.JobRun(ANIMATE, bpy.context)
    bpy.ops.wm.open_mainfile(filepath=str(empty))                        # load_pre: the file goes away
    assert run.job.cancelled and not jobs._running
    assert run.step(bpy.context, lambda *_: pytest.fail("reported after the file closed")) == "CANCELLED"
    run.job.join(120)
    assert bpy.data.objects[name].data.shape_keys is None
    run = jobs.JobRun(FIT, bpy.context)
    jobs.unregister()                                                    # what the add-on's unregister does
    try:
        assert run.job.cancelled and not jobs._running
    finally:
        jobs.register()
    run.job.join(120)
    assert character_io_fit(bpy.context.scene.voca_character.target) is None


QUIT_SCRIPT = r"""
import sys, time
import bpy
import voca_addon
from voca_addon.blender import jobs, preferences
from voca_addon.blender.speech import operators, pipeline
voca, ds, template, wav, saved = sys.argv[1:6]
bpy.ops.wm.read_factory_settings(use_empty=True)
voca_addon.register()
prefs = bpy.context.preferences.addons.new()
prefs.module = preferences.ADDON_ID
prefs.preferences.voca_path, prefs.preferences.deepspeech_path = voca, ds
prefs.preferences.template_path = template
bpy.context.scene.voca.audio_path = wav
head = pipeline.ensure_head(bpy.context, template)
head.voca_articulation.closures = False
bpy.ops.wm.save_as_mainfile(filepath=saved)
run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
while not run.job.messages.qsize():
    time.sleep(0.01)
print("QUITTING", flush=True)
voca_addon.unregister()     # what Blender's quit does to an add-on (WM_exit): live jobs cancelled
from voca_addon.blender import compat
compat.exit_now(0)          # then leave as the add-on's own commands do (the bpy module's teardown hangs on 4.5)
sys.exit(0)
"""


def test_quitting_mid_job_loses_nothing(voca_ckpt, ds_small_pb, model_cache, shared_data, tmp_path):
    """The process quits while Animate's worker computes: it ends (the worker is a daemon thread and writes
    nothing; a hang would hit the 120 s limit), no traceback, no temporary file, and the file saved before
    the run reopens whole."""
    import os
    import subprocess
    import sys
    saved = tmp_path / "before.blend"
    env = dict(os.environ, VOCA_CACHE_DIR=str(model_cache), VOCA_MODEL_DIR=str(tmp_path / "no-models"))
    args = [str(voca_ckpt), str(ds_small_pb), str(shared_data / "flame" / "FLAME_sample.ply"),
            str(shared_data / "audio" / "test.wav"), str(saved)]
    run = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, *args], capture_output=True, text=True, timeout=120,
                         env=env, cwd=os.getcwd())
    assert "QUITTING" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 0 and "Traceback" not in run.stderr + run.stdout, run.stdout + run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before.blend"]      # no temporary left beside it
    bpy.ops.wm.open_mainfile(filepath=str(saved))
    assert bpy.data.objects["FLAME head"].data.shape_keys is None
