"""The preferences' "Download public model files" button: honours Allow Online Access, downloads from a
local server (no internet) in a worker thread or synchronously, Esc stops and the next run resumes."""
import dataclasses
import threading
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

import voca_addon  # noqa: E402
from tests.core.models.test_fetch import Server, local_specs, release_archive  # noqa: E402
from tests.blender.test_operators import drive  # noqa: E402  (a JobRun stepped like the modal's timer)
from voca_addon.blender import fetch_operator, jobs, preferences  # noqa: E402
from voca_addon.core.errors import VocaError  # noqa: E402
from voca_addon.core.models import fetch  # noqa: E402


@pytest.fixture
def graph():
    import numpy as np
    return np.random.default_rng(3).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()


@pytest.fixture
def server(shared_data, graph):
    files = {"/release/deepspeech-0.1.0-models.tar.gz": release_archive(graph)}
    for name in ("FLAME_sample.ply", "texture_mesh.obj", "texture_mesh.png"):
        files[f"/voca/template/{name}"] = (shared_data / "flame" / name).read_bytes()
    s = Server(files)
    yield s
    s.close()


@pytest.fixture
def addon(scene, tmp_path, monkeypatch, server, graph):
    """Registered add-on with a preferences entry; the model folder is empty; downloads go to the server."""
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(fetch_operator, "FILES", local_specs(server, graph))
    voca_addon.register()
    entry = bpy.context.preferences.addons.new()
    entry.module = preferences.ADDON_ID
    online = bpy.context.preferences.system.use_online_access
    yield entry.preferences
    bpy.context.preferences.system.use_online_access = online
    bpy.context.preferences.addons.remove(bpy.context.preferences.addons[preferences.ADDON_ID])
    voca_addon.unregister()


def test_fetch_operator_is_grey_and_silent_while_online_access_is_off(addon, server):
    bpy.context.preferences.system.use_online_access = False
    assert not bpy.app.online_access
    assert not bpy.ops.voca.fetch_models.poll()
    assert "Allow Online Access" in fetch_operator.VOCA_OT_fetch_models.disabled_reason(bpy.context)
    with pytest.raises(RuntimeError, match="poll"):
        bpy.ops.voca.fetch_models("EXEC_DEFAULT")
    assert server.requests == []                                       # nothing connected


def test_fetch_operator_downloads_and_refreshes_the_checks(addon, server, graph, tmp_path):
    bpy.context.preferences.system.use_online_access = True
    assert bpy.ops.voca.fetch_models("EXEC_DEFAULT") == {"FINISHED"}
    models = tmp_path / "models"
    assert (models / "output_graph.pb").read_bytes() == graph
    assert all(fetch.verified(spec, models) for spec in fetch_operator.FILES)
    assert addon.template_ok and "5023 vertices" in addon.template_status      # the checks ran again
    assert str(models / "output_graph.pb") in addon.deepspeech_status          # (random bytes: not a graph)


def test_fetch_job_stops_on_esc_and_the_next_run_resumes(addon, server, graph, tmp_path, monkeypatch):
    """The download through the one job runner (app-wide): Esc half-way keeps the part, the next run resumes it."""
    bpy.context.preferences.system.use_online_access = True
    models = tmp_path / "models"
    op = fetch_operator.VOCA_OT_fetch_models
    real = fetch.fetch
    runs = []

    def esc_half_way(folder, files, progress=None, **kw):       # Esc pressed half-way through the graph
        def watched(fraction, stage):
            if stage == "downloading output_graph.pb" and fraction > 0.5:
                runs[-1].cancel()
            progress(fraction, stage)
        return real(folder, files, watched, **kw)
    monkeypatch.setattr(fetch, "fetch", esc_half_way)
    runs.append(jobs.JobRun(op, bpy.context))
    status, reports = drive(runs[-1])
    assert status == "CANCELLED" and reports == [({"WARNING"}, op.CANCELLED)]
    assert not jobs.busy_reason() and op.disabled_reason(bpy.context) is None
    part = models / ".deepspeech-0.1.0-models.tar.gz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(server.files["/release/deepspeech-0.1.0-models.tar.gz"])
    assert not (models / "output_graph.pb").exists()                   # no final name touched by the cancel
    monkeypatch.setattr(fetch, "fetch", real)
    status, reports = drive(jobs.JobRun(op, bpy.context))
    assert status == "FINISHED" and [kind for kind, _ in reports] == [{"INFO"}], reports
    assert (f"bytes={kept}-") in [r for _, r in server.requests]       # resumed where Esc stopped it
    assert (models / "output_graph.pb").read_bytes() == graph
    assert addon.template_ok                                           # the checks ran again


def test_a_second_download_is_refused_while_one_runs(addon, server, tmp_path, monkeypatch):
    bpy.context.preferences.system.use_online_access = True
    op = fetch_operator.VOCA_OT_fetch_models
    gate = threading.Event()

    def held(folder, files, progress=None, **kw):              # a download that waits for the test
        while not gate.wait(0.01):
            progress(0.0, "connecting")
        return []
    monkeypatch.setattr(fetch, "fetch", held)
    run = jobs.JobRun(op, bpy.context)
    try:
        assert op.disabled_reason(bpy.context) == op.BUSY and not bpy.ops.voca.fetch_models.poll()
        with pytest.raises(VocaError, match="downloading"):
            jobs.JobRun(op, bpy.context)
        other = bpy.data.scenes.new("Other")                           # app-wide: another scene is no way round
        with bpy.context.temp_override(scene=other):
            with pytest.raises(VocaError, match="downloading"):
                jobs.JobRun(op, bpy.context)
        assert not jobs.is_running(bpy.context.scene)                  # …and the scenes themselves are free
    finally:
        gate.set()
    assert drive(run)[0] == "FINISHED" and op.disabled_reason(bpy.context) is None
    assert server.requests == []


def _no_temporary(folder: Path) -> list:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".")) if folder.exists() else []


def test_a_damaged_download_is_a_user_error_and_leaves_no_temporary_file(addon, server, tmp_path, monkeypatch):
    bpy.context.preferences.system.use_online_access = True
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path / "logs"))
    bad = [dataclasses.replace(spec, sha256="0" * 64) if spec.name == "FLAME_sample.ply" else spec
           for spec in fetch_operator.FILES]
    monkeypatch.setattr(fetch_operator, "FILES", bad)
    status, reports = drive(jobs.JobRun(fetch_operator.VOCA_OT_fetch_models, bpy.context))
    assert status == "CANCELLED" and len(reports) == 1 and reports[0][0] == {"ERROR"}
    assert "FLAME_sample.ply" in reports[0][1] and "Traceback" not in reports[0][1]
    assert not (tmp_path / "logs").exists()                            # a user error: no log
    models = tmp_path / "models"
    assert _no_temporary(models) == [] and not (models / "FLAME_sample.ply").exists()
    assert not addon.template_ok                                       # the checks ran again: still missing
    assert not jobs.busy_reason()


def test_a_download_bug_is_one_line_and_a_log_and_leaves_no_temporary_file(addon, server, tmp_path, monkeypatch):
    """A bug inside the download (not the user's doing): the one error path — one line naming a log file —
    through the synchronous path too; no temporary file, nothing left 'running'."""
    bpy.context.preferences.system.use_online_access = True
    logs = tmp_path / "logs"
    monkeypatch.setenv("VOCA_LOG_DIR", str(logs))
    real = fetch.fetch

    def broken(folder, files, progress=None, **kw):
        def failing(fraction, stage):
            if fraction > 0.2:
                raise ZeroDivisionError("injected")
            if progress is not None:
                progress(fraction, stage)
        return real(folder, files, failing, **kw)
    monkeypatch.setattr(fetch, "fetch", broken)
    status, reports = drive(jobs.JobRun(fetch_operator.VOCA_OT_fetch_models, bpy.context))
    assert status == "CANCELLED" and len(reports) == 1 and reports[0][0] == {"ERROR"}
    assert "ZeroDivisionError" in reports[0][1] and str(logs) in reports[0][1] and "\n" not in reports[0][1]
    assert len(list(logs.iterdir())) == 1
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):       # execute: reported, not raised raw
        bpy.ops.voca.fetch_models("EXEC_DEFAULT")
    assert len(list(logs.iterdir())) == 2
    models = tmp_path / "models"
    assert [n for n in _no_temporary(models) if not n.endswith(".part")] == []
    assert not jobs.busy_reason()


_HOLD = r"""
import sys
from voca_addon.core import claims
with claims.claiming():
    claims.claim(sys.argv[1])
    print("held", flush=True)
    sys.stdin.read()                                    # until the test closes our stdin
"""


def test_a_download_into_a_folder_another_process_writes_is_refused_naming_it(addon, server, tmp_path):
    """A terminal's `models fetch`/`install` (here: a process holding the folder's claim as they do) and the
    button at once: the button's run is one user error naming the other process, and nothing is written."""
    import subprocess
    import sys
    bpy.context.preferences.system.use_online_access = True
    models = tmp_path / "models"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(models)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        status, reports = drive(jobs.JobRun(fetch_operator.VOCA_OT_fetch_models, bpy.context))
        assert status == "CANCELLED" and len(reports) == 1 and reports[0][0] == {"ERROR"}
        assert "is being written by" in reports[0][1] and str(holder.pid) in reports[0][1]
        assert server.requests == [] and not models.exists()          # nothing connected, nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert drive(jobs.JobRun(fetch_operator.VOCA_OT_fetch_models, bpy.context))[0] == "FINISHED"   # then it runs
    assert (models / "output_graph.pb").is_file()
