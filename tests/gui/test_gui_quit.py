"""Quitting Blender's real window mid-job loses nothing (issue 19).

A window session of its own per case (:mod:`gui_quit`: the set-up scenarios, then the file saved, Animate
clicked and Ctrl+Q pressed while the networks run): with the file saved Blender asks nothing; with an
unsaved change it asks "save changes?" and the suite answers Save. Then: Blender ended by itself, soon
and with status 0; no traceback in its output; beside the file no temporary of the add-on (``.voca-…``)
or of Blender's save (``X.blend@``); and the file, opened in the bpy module, holds either the scene as it
was before the run (the unsaved change included when Save was chosen) or the run's complete result.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.conftest import ROOT, SESSIONS, read_report, run_window, session_config, write_clip
from voca_addon.core import outputs

SETUP = ["window_setup", "install", "preferences", "voca_tab", "settings"]
QUIT_LIMIT = 60.0       # s from Ctrl+Q (or the dialog's answer) to Blender's process gone: a hang is far longer
VOCA_KEYS = 50 + 1      # a complete run: the 50 VOCA keys and the bias key, each with its F-curve
CLIP_REPEATS = 40       # the reference sentence this many times (3.4 min): the run lasts past the dialog's answer

READ_FILE = r"""
import json, sys
import bpy
sys.path.insert(0, sys.argv[2])
import gui_scene
gui_scene.ADDON = "voca_addon"                 # the working tree's compat in the bpy module
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene = bpy.context.scene
scene.frame_set(gui_scene.SNAPSHOT_FRAME)
snap = gui_scene._snapshot(scene, bpy.context.view_layer)
key = bpy.data.objects["FLAME head"].data.shape_keys
names = [b.name for b in key.key_blocks] if key else []
action = key.animation_data.action if key and key.animation_data else None
curves = {fc.data_path: len(fc.keyframe_points) for fc in gui_scene.compat().action_fcurves(action)} if action else {}
print("@@file " + json.dumps({"snapshot": snap, "keys": names, "curves": curves}))
"""


@pytest.fixture(scope="module", params=["saved", "unsaved-change"])
def quit_session(request, gui_zip, voca_ckpt, ds_small_pb, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("gui-quit")
    config = session_config(out, gui_zip, voca_ckpt, ds_small_pb, shared_data)
    config.update(scenarios=SETUP + ["quit_mid_job"], quit_file=str(out / "artist" / "scene.blend"),
                  quit_change=request.param != "saved",
                  audio=str(write_clip(shared_data / "audio" / "test_sentence.wav", out / "long.wav", CLIP_REPEATS)))
    binds = (out, shared_data, gui_zip.parent, Path(voca_ckpt).parent, Path(ds_small_pb).parent)
    status, output, seconds, ended = run_window(out, config, binds)
    report = read_report(out, status, output)
    for name in SETUP:
        assert "error" not in report["scenarios"].get(name, {"error": "not run"}), (name, output[-3000:])
    assert (out / "quit.json").is_file(), f"the quit scenario did not reach Ctrl+Q:\n" \
                                          f"{json.dumps(report['scenarios'].get('quit_mid_job'))}\n{output[-3000:]}"
    entry = json.loads((out / "quit.json").read_text())
    SESSIONS.append((seconds, out, report["scenarios"]["window_setup"].get("version", "?"),
                     f"quit mid-job, {request.param}, dialog: {entry['dialog'] is not None}, answered while "
                     f"the job ran: {entry.get('running_at_dialog')}"))
    return dict(case=request.param, status=status, output=output, ended=ended, entry=entry,
                file=Path(config["quit_file"]), error=report["scenarios"].get("quit_mid_job", {}).get("error"))


def read_blend(path: Path) -> dict:
    """What the file on disk holds, read by the bpy module (.venv) in a process of its own."""
    done = subprocess.run([sys.executable, "-c", READ_FILE, str(path), str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("@@file ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("@@file "):])


RNA_GROUPS = {"voca_articulation"}   # the add-on's registered property group on Object: 4.3 stores its defaults
#                                      as an ID property once the run's prepare step reads it (not a change)


def without_rna_groups(snap: dict) -> dict:
    objects = {name: dict(o, props=[p for p in o["props"] if p not in RNA_GROUPS])
               for name, o in snap["objects"].items()}
    return dict(snap, objects=objects)


def complete_run(found: dict) -> bool:
    """All VOCA keys of a run (50 + the bias key), each driven by its F-curve."""
    voca = [n for n in found["keys"] if n.startswith("VOCA_")]
    keyed = [n for n in voca if found["curves"].get(f'key_blocks["{n}"].value', 0) >= 1]
    return len(voca) >= VOCA_KEYS and "VOCA_bias" in voca and len(keyed) == len(voca)


def test_gui_quitting_mid_job_loses_nothing(quit_session):
    s, entry = quit_session, quit_session["entry"]
    assert s["error"] is None and "still_open" not in entry, (s["error"], entry.get("dialog"))
    assert entry["busy"] and entry["running"], entry["at_quit"]                   # quit while computing
    assert entry["dirty_before"] is (s["case"] != "saved"), entry
    if s["case"] == "saved":
        assert entry["dialog"] is None, entry["dialog"]                         # a saved file: no question
    else:
        assert entry["dialog"] is not None, "no 'save changes?' dialog for an unsaved change"
    asked = entry.get("answered", entry["quit_pressed"])
    assert s["status"] == 0 and s["ended"] - asked < QUIT_LIMIT, (s["status"], s["ended"] - asked)
    assert "Traceback" not in s["output"] and "Exception" not in s["output"], s["output"][-4000:]
    beside = sorted(p.name for p in s["file"].parent.iterdir())
    assert not [n for n in beside if n.startswith(outputs.TEMP_PREFIX) or outputs.is_temp(Path(n))
                or n.endswith("@")], beside
    assert set(beside) <= {"scene.blend", "scene.blend1"}, beside
    found = read_blend(s["file"])
    head = "FLAME head"                                                         # where the artist left it
    assert found["snapshot"]["objects"][head]["matrix"] == entry["before"]["objects"][head]["matrix"]
    if not complete_run(found):                                                 # else: the run's whole result
        before, on_disk = without_rna_groups(entry["before"]), without_rna_groups(found["snapshot"])
        assert on_disk == before, [[k, before.get(k), on_disk.get(k)] for k in before if before[k] != on_disk.get(k)]
    if s["case"] != "saved":                                                    # Save kept the artist's edit
        assert os.path.isfile(s["file"].with_name("scene.blend1"))
