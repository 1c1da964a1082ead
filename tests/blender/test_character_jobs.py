"""Fit / Transfer / Drive off the main thread (:mod:`voca_addon.blender.jobs`): a :class:`JobRun` stepped like
the modal's timer applies exactly what ``execute`` applies; Esc (cancel) and a target edited meanwhile leave
the scene untouched; a worker's error is one reported line; without a window ``INVOKE_DEFAULT`` runs
synchronously; the panel shows the progress bar. Real data: the ARKit face, its 68 landmark pairs with
FLAME, its 51 ARKit keys and the official VOCA sequence."""
from __future__ import annotations

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.blender.character import (data as character_io, panel as character_panel,
                                          writer as character_writer)  # noqa: E402
from voca_addon.blender import jobs
from voca_addon.blender.character import operators as ops  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.core.character import fit as fitting, keyfiles, landmarks as lm  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402

from tests.blender.test_operators import draw  # noqa: E402  (the recording layout)
from tests.blender.character_fixtures import addon, face  # noqa: E402,F401  (fixtures)


def drive(run, timeout=120.0):
    """Step a JobRun like the modal's timer does; (status, reports)."""
    reports, deadline = [], time.monotonic() + timeout
    while True:
        status = run.step(bpy.context, lambda kind, text: reports.append((set(kind), text)))
        if status != "RUNNING_MODAL":
            return status, reports
        assert time.monotonic() < deadline, "the worker did not finish"
        time.sleep(0.02)


def state(obj) -> dict:
    """The target's keys, fit, action curves (path → keyframes) and the data-block counts."""
    key = obj.data.shape_keys
    action = key.animation_data.action if key is not None and key.animation_data else None
    curves = {fc.data_path: [tuple(p.co) for p in fc.keyframe_points] for fc in compat.action_fcurves(action)} \
        if action is not None else {}
    return dict(keys=[b.name for b in key.key_blocks] if key else [], fit=character_io.residuals(obj),
                curves=curves, actions=len(bpy.data.actions), range=(bpy.context.scene.frame_start,
                                                                     bpy.context.scene.frame_end))


def test_character_job_fit_applies_what_execute_applies(face, shared_data):
    obj, mesh = face
    settings = bpy.context.scene.voca_character
    run = jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    assert settings.is_running
    assert "working on the character" in ops.VOCA_OT_character_transfer.disabled_reason(bpy.context)
    assert ("progress", 0.0) in [entry[:2] for entry in draw(character_panel.VOCA_PT_character)]
    status, reports = drive(run)
    assert status == "FINISHED" and reports[-1][0] == {"INFO"} and "Fitted 'Face'" in reports[-1][1]
    assert not settings.is_running and settings.progress == pytest.approx(1.0)
    template = meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    pairs = (np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
             np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    vertices, faces = character_io.mesh_arrays(obj)
    want = fitting.fit_target(template.vertices, template.faces, vertices, faces, *pairs)
    got = character_io.load_fit(obj, vertices, template.faces)
    np.testing.assert_array_equal(got.flame, want.flame)
    np.testing.assert_array_equal(got.roles, want.roles)


def test_character_job_cancel_leaves_the_scene_untouched(face):
    obj, _ = face
    before = state(obj)
    run = jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    run.cancel()                                           # Esc
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"WARNING"}, "VOCA Fit: cancelled; nothing was changed.")]
    run.job.join(60)
    assert state(obj) == before and not bpy.context.scene.voca_character.is_running


def test_character_job_drive_cancel_keeps_the_previous_curves(face, shared_data):
    obj, mesh = face
    keys = keyfiles.read_key_folder(shared_data / "arkit" / "ARKit_blendshapes", mesh)
    character_writer.add_rig_keys(obj, keys.rest, keys.names, keys.deltas)
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    before = state(obj)
    run = jobs.JobRun(ops.VOCA_OT_character_drive, bpy.context)
    while not run.job.messages.qsize():                    # the worker has started computing
        time.sleep(0.01)
    run.cancel()
    status, reports = drive(run)
    assert status == "CANCELLED" and reports[0][0] == {"WARNING"}
    run.job.join(60)
    assert state(obj) == before and len(before["curves"]) == 51


def test_character_job_target_edited_meanwhile_writes_nothing(face):
    obj, _ = face
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    run = jobs.JobRun(ops.VOCA_OT_character_transfer, bpy.context)
    obj.data.vertices[0].co.x += 0.01                     # the artist edits the mesh meanwhile
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"ERROR"}, "'Face' was edited while VOCA was working; "
                                                             "nothing was written. Run again.")]
    assert obj.data.shape_keys is None


def test_character_job_reports_a_workers_error_in_one_line(face, shared_data, tmp_path):
    obj, _ = face
    t = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    mirror = np.r_[t[16::-1], t[26:16:-1], t[27:31], t[35:30:-1], t[45:41:-1], t[47:45:-1], t[39:35:-1],
                   t[41:39:-1], t[54:47:-1], t[59:54:-1], t[64:59:-1], t[67:64:-1]]
    pairs = tmp_path / "mirrored.txt"                     # valid, distinct ids: the fit (worker) finds the mirror
    lm.write_pairs(pairs, lm.FLAME_IBUG68, mirror)
    bpy.context.scene.voca_character.pairs_path = str(pairs)
    status, reports = drive(jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context))
    assert status == "CANCELLED" and len(reports) == 1 and reports[0][0] == {"ERROR"}
    assert "mirrored" in reports[0][1] and character_io.residuals(obj) is None


def test_character_job_refusals_come_before_the_worker(face, tmp_path):
    pairs = tmp_path / "three.txt"
    lm.write_pairs(pairs, lm.FLAME_IBUG68[:3], [1, 2, 3])
    bpy.context.scene.voca_character.pairs_path = str(pairs)
    with pytest.raises(Exception, match="3 landmark pairs given"):
        jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    assert not bpy.context.scene.voca_character.is_running


def test_character_job_invoke_without_a_window_runs_synchronously(face):
    obj, _ = face
    assert bpy.app.background
    assert bpy.ops.voca.character_fit("INVOKE_DEFAULT") == {"FINISHED"}
    assert bpy.ops.voca.character_transfer("INVOKE_DEFAULT") == {"FINISHED"}
    assert character_io.residuals(obj) is not None and "VOCA_bias" in obj.data.shape_keys.key_blocks


def test_character_panel_draws_the_source_choice_and_why_buttons_are_grey(face):
    settings = bpy.context.scene.voca_character
    log = draw(character_panel.VOCA_PT_character)
    assert ("prop", "source_path") in log and ("operator", "voca.character_transfer", True) in log
    settings.source = "HEAD"
    log = draw(character_panel.VOCA_PT_character)
    assert ("prop", "source_head") in log and ("operator", "voca.character_drive", False) in log
    assert any(entry[0] == "label" and entry[1].startswith("Pick the FLAME head") for entry in log)


def test_character_operators_undo_in_one_step(face):
    bpy.ops.ed.undo_push(message="before")               # background Blender: creates the undo stack
    assert bpy.ops.voca.character_fit("EXEC_DEFAULT", True) == {"FINISHED"}
    assert bpy.ops.voca.character_transfer("EXEC_DEFAULT", True) == {"FINISHED"}
    assert bpy.data.objects["Face"].data.shape_keys is not None
    bpy.ops.ed.undo()
    obj = bpy.data.objects["Face"]
    assert obj.data.shape_keys is None and character_io.residuals(obj) is not None
    bpy.ops.ed.undo()
    assert character_io.residuals(bpy.data.objects["Face"]) is None


def test_character_job_writes_into_the_scene_it_started_in(face):
    """The artist renames the scene and the target and switches to another scene while Transfer runs: the
    result goes to the run's own target and scene, which is not left 'running'."""
    obj, _ = face
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    first = bpy.context.scene
    run = jobs.JobRun(ops.VOCA_OT_character_transfer, bpy.context)
    first.name, obj.name = "Renamed meanwhile", "Face renamed meanwhile"
    other = bpy.data.scenes.new("Other")
    other.frame_start, other.frame_end = 500, 600
    with bpy.context.temp_override(scene=other):
        assert bpy.context.scene == other
        status, _ = drive(run)
    assert status == "FINISHED" and (first.frame_start, first.frame_end) == (1, 306)
    assert not first.voca_character.is_running and first.voca_character.progress == 1.0
    assert (other.frame_start, other.frame_end) == (500, 600) and obj.data.shape_keys is not None


def test_character_job_esc_mid_fit_stops_the_worker_within_a_step(face, monkeypatch):
    """NICP reports each of its steps: Esc mid-fit ends the worker at the next one (not seconds later).
    Counted in steps, not seconds (a step takes 0.1 s alone and several on a loaded machine): after Esc the
    registration reports once more, that report raises, and it runs no further step."""
    from voca_addon.core.character import nicp
    obj, _ = face
    steps, real = [], nicp.register

    def register(*args, progress=None, **kwargs):
        def counted(share):
            steps.append("step")
            try:
                progress(share)
            except BaseException:
                steps.append("raised")
                raise
        result = real(*args, progress=counted, **kwargs)
        steps.append("finished")
        return result
    monkeypatch.setattr(nicp, "register", register)
    run = jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    settings = bpy.context.scene.voca_character
    deadline = time.monotonic() + 120                     # only a guard against a hang
    while settings.progress < 0.2:                        # well inside the registration
        assert run.step(bpy.context, lambda *_: None) == "RUNNING_MODAL" and time.monotonic() < deadline
        time.sleep(0.01)
    before = len(steps)
    run.cancel()
    assert drive(run)[0] == "CANCELLED"
    run.job.join(120)
    assert not run.job.is_alive()
    assert "finished" not in steps and steps[-1] == "raised" and steps.count("raised") == 1
    assert before >= 1 and len(steps) - before <= 3       # ≤ 1 step (reported before Esc landed) ran on
    assert character_io.residuals(obj) is None


def test_character_job_that_cannot_start_leaves_no_scene_running(face, monkeypatch):
    """The worker's thread cannot start (``can't start new thread``): the scene is not left 'running' (every
    Character button grey until Blender restarts); the next run works."""
    settings = bpy.context.scene.voca_character

    def no_thread(self):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(jobs.WorkerJob, "start", no_thread)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    assert not settings.is_running and not jobs.is_running(bpy.context.scene)
    assert settings.progress_stage != "starting"
    assert ops.VOCA_OT_character_fit.disabled_reason(bpy.context) is None and bpy.ops.voca.character_fit.poll()
    monkeypatch.undo()
    status, _ = drive(jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context))
    assert status == "FINISHED" and not settings.is_running


def test_character_job_modal_error_resets_the_runs_own_progress(face, monkeypatch, tmp_path):
    """An unexpected error while the modal steps the run: one reported line, and the run's scene (found by
    its session_uid, not the window's scene) is neither 'running' nor left showing the run's progress."""
    from types import SimpleNamespace
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path / "logs"))
    first = bpy.context.scene
    settings = first.voca_character
    run = jobs.JobRun(ops.VOCA_OT_character_fit, bpy.context)
    settings.progress, settings.progress_stage = 0.4, "registering"       # mid-run
    first.name = "Renamed meanwhile"

    def broken(*_):
        raise RuntimeError("injected")
    monkeypatch.setattr(run, "step", broken)
    reports, ended = [], []
    op = SimpleNamespace(_run=run, bl_idname="voca.character_fit", report=lambda k, t: reports.append((k, t)),
                         _end=ended.append)
    other = bpy.data.scenes.new("Other")
    with bpy.context.temp_override(scene=other):
        assert jobs.JobOperator.modal(op, bpy.context, SimpleNamespace(type="TIMER", value="NOTHING")) \
            == {"CANCELLED"}
    assert len(reports) == 1 and reports[0][0] == {"ERROR"} and "injected" in reports[0][1] and ended
    assert not settings.is_running and settings.progress == 0.0 and settings.progress_stage == "cancelled"
    run.job.join(60)
    assert character_io.residuals(bpy.data.objects["Face"]) is None
