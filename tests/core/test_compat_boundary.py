"""Every Blender version difference lives in voca_addon/blender/compat.py: the APIs that differ across the
supported versions (4.2 LTS … 5.3) are named nowhere else in the package (calls through ``compat.`` are fine)."""
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "voca_addon"

# What differs across the versions the add-on supports, and where compat.py handles it:
VERSION_SPECIFIC = {
    r"channelbag": "4.4+ layered actions (slots / layers / channelbags)",
    r"\.slots\b|action_slot\b|\.layers\.new\b": "4.4+ action slots and layers",
    r"action\.fcurves\b|\.fcurves\.new\b": "the legacy Action.fcurves (4.2, 4.3) and fcurves.new's group argument",
    r"\.strips\b|strips_all|sequences_all|sequence_editor\.sequences\b": "the sequencer's sequences → strips",
    r"media_type": "ImageFormatSettings.media_type (5.0+)",
    r"flip_axis": "the Mesh Cache modifier's flip_axis (enum set / bool array)",
    r"build_options": "builds without Audaspace (compat.HAS_AUDIO)",
    r"bpy\.app\.version\b": "version numbers instead of feature detection",
    r"binary_path|atexit|io_scene_gltf2": "the bpy module's teardown at exit (4.2 glTF crash, 4.5 hang)",
}


def _outside_compat(root: Path) -> list:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "compat.py" and path.parent.name == "blender":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = re.sub(r"\bcompat\.\w+", "", line.split("#", 1)[0])
            for pattern, what in VERSION_SPECIFIC.items():
                if re.search(pattern, code):
                    found.append(f"{path.relative_to(root.parent)}:{number}: {what}: {line.strip()}")
    return found


def test_version_specific_blender_apis_only_in_compat():
    found = _outside_compat(PACKAGE)
    assert not found, "version-specific Blender API outside blender/compat.py:\n" + "\n".join(found)


def test_the_scan_finds_each_kind_outside_compat_and_allows_it_inside(tmp_path):
    lines = ["bag = anim.action.layers[0].strips[0].channelbag(slot)", "s = action_slot", "a.layers.new('x')",
             "c = action.fcurves.new('location')", "ed.sequence_editor.sequences.new_sound()", "f.media_type = 'x'",
             "m.flip_axis = set()", "bpy.app.build_options.audaspace", "if bpy.app.version >= (4, 4, 0):",
             "atexit.register(f)"]
    (tmp_path / "voca_addon" / "blender").mkdir(parents=True)
    (tmp_path / "voca_addon" / "blender" / "writer.py").write_text("\n".join(lines) + "\n")
    (tmp_path / "voca_addon" / "blender" / "compat.py").write_text("\n".join(lines) + "\n")
    (tmp_path / "voca_addon" / "ok.py").write_text("compat.set_slot(a, b)  # channelbag in a comment\n")
    found = _outside_compat(tmp_path / "voca_addon")
    assert {f.split(":")[1] for f in found} == {str(n) for n in range(1, len(lines) + 1)}
    assert all(f.startswith("voca_addon/blender/writer.py:") for f in found)
    assert {f.split(": ")[1] for f in found} == set(VERSION_SPECIFIC.values())
