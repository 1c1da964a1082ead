"""The preferences' "Download public model files" button: honours Allow Online Access, downloads from a
local server (no internet) in a worker thread or synchronously, Esc stops and the next run resumes."""
import pytest

bpy = pytest.importorskip("bpy")

import voca_addon  # noqa: E402
from tests.core.models.test_fetch import Server, local_specs, release_archive  # noqa: E402
from voca_addon.blender import fetch_operator, preferences  # noqa: E402
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


def test_fetch_worker_stops_on_esc_and_the_next_run_resumes(addon, server, graph, tmp_path):
    models = tmp_path / "models"
    job = fetch_operator._Job(models)
    original = job.progress

    def progress(fraction, stage):                                     # Esc pressed half-way
        if stage == "downloading output_graph.pb" and fraction > 0.5:
            job.stop.set()
        original(fraction, stage)
    job.progress = progress
    job.run()
    messages = []
    while not job.messages.empty():
        messages.append(job.messages.get())
    assert messages[-1][0] == "ERROR" and isinstance(messages[-1][1], fetch_operator.Stopped)
    assert all(m[0] == "PROGRESS" for m in messages[:-1]) and len(messages) > 2
    part = models / ".deepspeech-0.1.0-models.tar.gz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(server.files["/release/deepspeech-0.1.0-models.tar.gz"])
    again = fetch_operator._Job(models)
    again.run()
    assert again.messages.get()[0] == "PROGRESS"
    while True:
        kind, *rest = again.messages.get()
        if kind != "PROGRESS":
            break
    assert kind == "DONE", rest
    assert (f"bytes={kept}-") in [r for _, r in server.requests]       # resumed where Esc stopped it
    assert (models / "output_graph.pb").read_bytes() == graph
