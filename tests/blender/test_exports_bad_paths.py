"""Exports to a destination that cannot be written: one clear line, nothing written, the scene as before.

Every export the panel and the headless / library paths offer (glb, fbx, abc, usd through
:func:`voca_addon.blender.exports.engines.export`; PC2 and OBJ sequences through
:mod:`voca_addon.blender.exports.sequences`) is checked up front through :mod:`voca_addon.core.outputs`; where
Blender's exporter still fails after the check (a permission race, a full disk), its error becomes one line
naming the file and the reason — never a traceback. The session runs as root, so ``chmod`` does not stop a
write: an unwritable folder is one under ``/proc``, or a file used as a folder.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_exports import animated_head  # noqa: E402
from voca_addon.blender.exports import engines as exports  # noqa: E402
from voca_addon.blender.exports import sequences as sequence_io  # noqa: E402
from voca_addon.core.errors import InputError  # noqa: E402

UNWRITABLE = Path("/proc")          # not writable even by root
REFUSED = "is not writable|takes no new files"      # core.outputs' words for a folder that refuses new files

BAD_DESTINATIONS = {               # kind: (destination under tmp_path, what the message says)
    "unwritable folder": (lambda tmp, ext: UNWRITABLE / f"out{ext}", REFUSED),
    "missing folder": (lambda tmp, ext: tmp / "missing" / f"out{ext}", "does not exist"),
    "file used as a folder": (lambda tmp, ext: tmp / "file.txt" / f"out{ext}", "does not exist"),
    "folder given as the file": (lambda tmp, ext: tmp / f"folder{ext}", "is a folder"),
    "wrong extension": (lambda tmp, ext: tmp / "out.txt", "must end in"),
}


@pytest.fixture
def head(scene, flame, make_anim):
    """An animated head, not selected; another mesh selected and active; the scene at a frame mid-clip."""
    obj, _ = animated_head(scene, flame, make_anim(frames=40, dims=8), fps=24)
    other = bpy.data.objects.new("other", bpy.data.meshes.new("other"))
    scene.collection.objects.link(other)
    layer = bpy.context.view_layer
    layer.update()
    for o in layer.objects:
        o.select_set(o == other)
    layer.objects.active = other
    scene.frame_set(17)
    return obj


def scene_state(scene, obj) -> dict:
    """What an export must leave as it was: frame, values, the evaluated pose, selection, active object, mode,
    action (read without changing the frame)."""
    from tests.blender.conftest import evaluated_now
    layer = bpy.context.view_layer
    key = obj.data.shape_keys
    return {"frame": (scene.frame_current, scene.frame_subframe),
            "values": [b.value for b in key.key_blocks],
            "pose": evaluated_now(obj).tobytes(),
            "selected": sorted(o.name for o in layer.objects if o.select_get()),
            "active": layer.objects.active.name if layer.objects.active else None,
            "modes": sorted((o.name, o.mode) for o in layer.objects),
            "action": key.animation_data.action.name}


def files_under(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_one_clean_line(message: str, path) -> None:
    assert "\n" not in message and "Traceback" not in message and ".voca-" not in message, message
    assert str(path) in message, message


def prepare(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("a file, not a folder")
    for ext in (".glb", ".fbx", ".abc", ".usd", ".pc2"):
        (tmp_path / f"folder{ext}").mkdir()


@pytest.mark.parametrize("kind", list(BAD_DESTINATIONS))
@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_exports_bad_destination_is_refused_up_front(fmt, kind, scene, head, tmp_path):
    prepare(tmp_path)
    make, says = BAD_DESTINATIONS[kind]
    path = make(tmp_path, f".{fmt}")
    before, files = scene_state(scene, head), files_under(tmp_path)
    with pytest.raises(InputError, match=says) as caught:
        exports.export(scene, head, fmt, path)
    assert_one_clean_line(str(caught.value), path)
    assert files_under(tmp_path) == files and not (UNWRITABLE / f"out.{fmt}").exists()
    assert scene_state(scene, head) == before


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_exports_blenders_failing_exporter_is_one_line_and_the_scene_is_kept(fmt, scene, head, monkeypatch):
    """The exporter itself fails (the check passed, then the folder could not be written: a race)."""
    monkeypatch.setattr(exports.outputs, "check_output", lambda path, *a, **k: Path(os.path.abspath(path)))
    before = scene_state(scene, head)
    path = UNWRITABLE / f"out.{fmt}"
    with pytest.raises(InputError, match="cannot write") as caught:
        exports.export(scene, head, fmt, path)
    assert_one_clean_line(str(caught.value), path)
    assert scene_state(scene, head) == before           # the glTF exporter used to leave the last frame set


def test_exports_success_keeps_the_scene(scene, head, tmp_path):
    before = scene_state(scene, head)
    exports.export(scene, head, "glb", tmp_path / "head.glb")
    assert scene_state(scene, head) == before and files_under(tmp_path) == ["head.glb"]


def test_exports_blender_reason_is_the_last_line_of_a_traceback():
    text = ("Error: Python: Traceback (most recent call last):\n"
            '  File "/x/io_scene_gltf2/io/exp/export.py", line 85, in save_gltf\n'
            '    file = open(export_settings["gltf_filepath"], "wb")\n'
            "FileNotFoundError: [Errno 2] No such file or directory: '/proc/out.glb'\n\n"
            "Location: /x/bpy/ops.py:109\n")
    assert exports.blender_reason(text, "glTF export") == "No such file or directory"
    assert exports.blender_reason("Error: Python: Traceback (most recent call last):\n  File \"a\"\n"
                                  "KeyError: 'bpy_struct'\n") == "KeyError: 'bpy_struct'"
    assert exports.blender_reason("Error: USD Export: unable to write /a.usd\n", "USD export") == \
        "unable to write /a.usd"
    assert exports.blender_reason("Error: one\nError: two\n") == "one; two"
    assert exports.blender_reason("") == "Blender gave no reason"


@pytest.fixture
def registered(scene):
    from voca_addon.blender.exports.operators import VOCA_OT_export_animation
    bpy.utils.register_class(VOCA_OT_export_animation)
    yield
    bpy.utils.unregister_class(VOCA_OT_export_animation)


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_exports_operator_reports_an_unwritable_folder_in_one_line(fmt, registered, scene, head):
    bpy.context.view_layer.objects.active = head
    before = scene_state(scene, head)
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.voca.export_animation(filepath=str(UNWRITABLE / f"out.{fmt}"), format=fmt)
    message = str(caught.value).strip().removeprefix("Error: ")
    assert_one_clean_line(message, UNWRITABLE / f"out.{fmt}")
    assert re.search(REFUSED, message), message
    assert scene_state(scene, head) == before


@pytest.mark.parametrize("kind", ["unwritable folder", "missing folder", "file used as a folder",
                                  "folder given as the file", "wrong extension"])
def test_exports_pc2_bad_destination_is_refused_up_front(kind, scene, head, tmp_path):
    prepare(tmp_path)
    make, says = BAD_DESTINATIONS[kind]
    path = make(tmp_path, ".pc2")
    before, files = scene_state(scene, head), files_under(tmp_path)
    with pytest.raises(InputError, match=says) as caught:
        sequence_io.export_pc2(scene, head, path, mesh_cache=True)
    assert_one_clean_line(str(caught.value), path)
    assert files_under(tmp_path) == files and not head.modifiers
    assert scene_state(scene, head) == before


@pytest.mark.parametrize("kind, says", [("unwritable", REFUSED), ("missing", "does not exist"),
                                        ("under a file", "does not exist"), ("a file", "is a file")])
def test_exports_obj_sequence_bad_folder_is_refused_up_front(kind, says, scene, head, tmp_path):
    prepare(tmp_path)
    folder = {"unwritable": UNWRITABLE / "objs", "missing": tmp_path / "missing" / "objs",
              "under a file": tmp_path / "file.txt" / "objs", "a file": tmp_path / "file.txt"}[kind]
    before, files = scene_state(scene, head), files_under(tmp_path)
    with pytest.raises(InputError, match=says) as caught:
        sequence_io.export_obj_sequence(scene, head, folder)
    assert_one_clean_line(str(caught.value), folder)
    assert files_under(tmp_path) == files and not (UNWRITABLE / "objs").exists()
    assert scene_state(scene, head) == before
