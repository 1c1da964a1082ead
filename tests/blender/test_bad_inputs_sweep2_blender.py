"""The second sweep of bad inputs (issue 19; docs/troubleshooting.md, "Bad inputs, second sweep") on the
Articulation sub-panel's operators, the cases that were not clean: Import alignment given a folder (the
message named a file type '(none)'); Words as markers with words longer than a marker name holds (Blender cuts
them at 63 bytes, and Remove word markers then left them behind: markers the add-on made but no longer owned).
"""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_articulation_operators import alignment, curves, head, track  # noqa: E402,F401
from tests.blender.test_operators import addon, paths  # noqa: E402,F401
from voca_addon.blender.articulation import writer as articulation_writer  # noqa: E402
from voca_addon.core.phonemes import Phone, PhoneTrack, write_alignment  # noqa: E402


def animated(head, alignment):
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    return curves(head), articulation_writer.stored_track(head)


def unchanged(head, alignment, before, track):
    assert bpy.context.scene.voca_phones.alignment_path == str(alignment)
    assert articulation_writer.stored_track(head) == track
    after = curves(head)
    assert after.keys() == before.keys()
    for path, points in before.items():
        np.testing.assert_array_equal(after[path], points)


def test_sweep2_import_alignment_given_a_folder_says_so_and_changes_nothing(head, alignment, tmp_path):
    """The file browser's OK with no file chosen hands over the folder itself. Before: "unknown alignment
    file type '(none)'" (the extension was judged before the path); after: "is a folder, not a file"."""
    before, track = animated(head, alignment)
    with pytest.raises(RuntimeError, match="is a folder, not a file"):
        bpy.ops.voca.import_alignment(filepath=str(tmp_path) + "/")
    unchanged(head, alignment, before, track)


@pytest.mark.parametrize("word", ["supercalifragilisticexpialidocious" * 3, "台词" * 30, "naïve"])
def test_sweep2_word_markers_long_and_non_latin_words_stay_removable(head, tmp_path, word):
    """A marker name holds 63 bytes: a longer word is cut by Blender; the markers must still be the add-on's
    (removed by Remove word markers), the artist's own marker untouched."""
    track = PhoneTrack((Phone("M", 0.40, 0.48, word), Phone("AA", 0.48, 0.60, word),
                        Phone("P", 0.90, 0.98, "pa")), "json")
    path = write_alignment(track, tmp_path / "w.json")
    animated(head, path)
    scene = bpy.context.scene
    scene.timeline_markers.new("my cue", frame=3)
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    names = sorted(m.name for m in scene.timeline_markers)
    assert len(names) == 3 and "pa" in names and "my cue" in names
    kept = next(n for n in names if n not in ("pa", "my cue"))
    assert word.startswith(kept) and len(kept.encode()) <= 63          # Blender's own cut, at a character
    assert bpy.ops.voca.remove_word_markers() == {"FINISHED"}
    assert [m.name for m in scene.timeline_markers] == ["my cue"]
