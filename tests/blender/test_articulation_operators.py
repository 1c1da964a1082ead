"""Animate from audio with lip closures, end to end through the operators, with the project's random-weight
models in the official formats (tests/conftest.py): the phone track from an alignment file, a transcript beside
the audio, or detection in the worker thread; without PocketSphinx; Import alignment (good and bad files);
words as timeline markers; the Articulation sub-panel's draw. Checked on the EVALUATED mesh against
``core.engine.run`` + ``core.articulation``.
"""
from __future__ import annotations

import shutil
import sys
import threading

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_operators import FakeLayout, addon, drive, engine_anim, paths  # noqa: E402,F401
from voca_addon.blender.articulation import (operators as articulation_operators, panel as articulation_panel,
                                             phones as articulation_phones, writer as articulation_writer)  # noqa: E402
from voca_addon.blender import compat, jobs, keyframes
from voca_addon.blender.speech import operators, pipeline
from voca_addon.core import phonemes  # noqa: E402
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402
from voca_addon.core.phonemes import Phone, PhoneTrack, write_alignment  # noqa: E402

TOLERANCE = 1e-6            # metres: Blender's float32 shape-key sums against numpy (measured ≤ 0.3 µm)
# An artist's alignment of test.wav (its own words do not matter here: the closures follow the file).
PHONES = (("M", 0.40, 0.48, "my"), ("AY", 0.48, 0.60, "my"), ("P", 0.90, 0.98, "paper"),
          ("EY", 0.98, 1.10, "paper"), ("F", 1.30, 1.40, "fun"), ("B", 1.60, 1.66, "bob"))


@pytest.fixture
def head(addon, paths):
    """A FLAME head with closures on (the default), made by Add FLAME head's code."""
    obj = pipeline.ensure_head(bpy.context, str(paths["template"]))
    assert obj.voca_articulation.closures
    return obj


@pytest.fixture
def track():
    return PhoneTrack(tuple(Phone(*row) for row in PHONES), "json")


@pytest.fixture
def alignment(track, tmp_path):
    return write_alignment(track, tmp_path / "artist alignment.json")


def evaluated_all(obj) -> np.ndarray:
    from tests.blender.conftest import evaluated_vertices
    scene = bpy.context.scene
    return np.stack([evaluated_vertices(obj, scene, f) for f in range(scene.frame_start, scene.frame_end + 1)])


def expected(engine_anim, paths, track, settings=ArticulationSettings()):
    return apply_controls(engine_anim(paths).resampled(24.0), track, settings).vertices()


def curves(obj) -> dict:
    key = obj.data.shape_keys
    return {fc.data_path: keyframes.curve_points(fc).copy() for fc in compat.action_fcurves(key.animation_data.action)}


# ---------------------------------------------------------------------------- Animate from audio

def test_animate_with_an_alignment_file_closes_like_core(head, paths, engine_anim, alignment, track):
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert articulation_writer.stored_track(head) == track
    assert np.abs(evaluated_all(head) - expected(engine_anim, paths, track)).max() <= TOLERANCE
    assert [b.name for b in head.data.shape_keys.key_blocks][-2:] == ["voca_lips_close", "voca_lips_tuck"]
    head.voca_articulation.closures = False
    exact = engine_anim(paths).resampled(24.0).vertices()
    assert np.abs(evaluated_all(head) - exact).max() <= TOLERANCE


def test_animate_detects_the_phones_in_a_worker_beside_deepspeech(head, paths, monkeypatch, shared_data):
    bpy.context.scene.voca.audio_path = str(shared_data / "audio" / "test_sentence.wav")
    monkeypatch.setenv("VOCA_PHONE_CACHE", "0")      # the pass itself, not a track kept from an earlier test
    # the pass runs from the worker thread: in a child Python when sys.executable is one (the venv's, with
    # the bpy module), else in the thread itself
    name = "phones_in_process" if phonemes.child_python() else "phones_for_audio"
    threads, real = [], getattr(phonemes, name)

    def spy(audio, transcript=None, *args, **kw):
        threads.append((threading.current_thread().name, transcript))
        return real(audio, transcript, *args, **kw)
    monkeypatch.setattr(phonemes, name, spy)
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    status, reports = drive(run, timeout=300)
    assert status == "FINISHED", reports
    assert threads == [("voca-phones", None)]
    track = articulation_writer.stored_track(head)
    assert track is not None and track.source == "detected"
    assert [p.phone for p in track.phones if p.phone in ("P", "B", "M")] == ["M", "P", "B", "M", "P"]
    assert any("lip closures on" in text for _, text in reports)


def test_a_transcript_beside_the_audio_is_aligned(head, paths, tmp_path, monkeypatch, shared_data):
    audio = tmp_path / "sentence.wav"
    shutil.copy(shared_data / "audio" / "test_sentence.wav", audio)
    audio.with_suffix(".txt").write_text("Severe myopia contributed to Ron's inferiority complex\n", "utf-8")
    bpy.context.scene.voca.audio_path = str(audio)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    track = articulation_writer.stored_track(head)
    assert track.source == "aligned"
    bilabials = [(p.phone, p.word.lower()) for p in track.phones if p.phone in ("P", "B", "M")]
    assert bilabials == [("M", "myopia"), ("P", "myopia"), ("B", "contributed"), ("M", "complex"),
                         ("P", "complex")]


@pytest.mark.parametrize("content", ["", "  \n", " ... !\n"])
def test_a_txt_beside_the_audio_without_words_is_refused_before_the_run(head, tmp_path, shared_data, content):
    """Found by a trial run: the commands treated an empty AUDIO.txt differently (one refused, one detected).
    The panel refuses it up front with one message naming the file; the head is left as it was."""
    audio = tmp_path / "sentence.wav"
    shutil.copy(shared_data / "audio" / "test_sentence.wav", audio)
    audio.with_suffix(".txt").write_text(content, "utf-8")
    bpy.context.scene.voca.audio_path = str(audio)
    def keys():
        shape_keys = head.data.shape_keys
        return None if shape_keys is None else [k.name for k in shape_keys.key_blocks]
    before, track = keys(), articulation_writer.stored_track(head)
    with pytest.raises(RuntimeError, match="sentence.txt' beside the audio holds no words"):
        bpy.ops.voca.animate_from_audio()
    assert keys() == before and articulation_writer.stored_track(head) == track      # the head as it was


def test_without_pocketsphinx_the_run_is_exact_and_alignment_files_work(head, paths, engine_anim, alignment,
                                                                         track, monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)          # `import pocketsphinx` fails, as on 3.14
    monkeypatch.setattr(articulation_phones, "_DETECTOR", [])
    log = draw()
    lines = [entry[1] for entry in log if entry[0] == "label"]
    assert any("PocketSphinx" in line for line in lines)
    reports = []
    run = jobs.JobRun(operators.VOCA_OT_animate_from_audio, bpy.context)
    status, reports = drive(run, timeout=300)
    assert status == "FINISHED", reports
    assert any("No lip closures" in text and "PocketSphinx" in text for _, text in reports)
    assert articulation_writer.stored_track(head) is None
    assert np.abs(evaluated_all(head) - engine_anim(paths).resampled(24.0).vertices()).max() <= TOLERANCE
    bpy.context.view_layer.objects.active = head
    assert bpy.ops.voca.import_alignment(filepath=str(alignment)) == {"FINISHED"}
    assert np.abs(evaluated_all(head) - expected(engine_anim, paths, track)).max() <= TOLERANCE


def test_animate_undo_and_remove_leave_nothing(head, alignment):
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    bpy.ops.ed.undo_push(message="before VOCA")
    assert bpy.ops.voca.animate_from_audio("EXEC_DEFAULT", True) == {"FINISHED"}
    assert articulation_writer.has_articulation(bpy.data.objects[pipeline.HEAD_NAME])
    bpy.ops.ed.undo()
    obj = bpy.data.objects[pipeline.HEAD_NAME]
    assert obj.data.shape_keys is None and not bpy.data.actions
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert obj.data.shape_keys is None and not bpy.data.actions
    assert not bpy.context.scene.timeline_markers and articulation_operators.WORD_MARKERS not in bpy.context.scene


# ---------------------------------------------------------------------------- Import alignment

TEXTGRID_WITHOUT_PHONES = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 2
            text = "hello"
"""


@pytest.mark.parametrize("kind", ["no phone tier", "malformed json", "overlapping", "past the end", "missing"])
def test_a_bad_alignment_file_changes_nothing(head, alignment, tmp_path, kind):
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    before, track = curves(head), articulation_writer.stored_track(head)
    bad = tmp_path / {"no phone tier": "bad.TextGrid"}.get(kind, "bad.json")
    if kind == "no phone tier":
        bad.write_text(TEXTGRID_WITHOUT_PHONES, "utf-8")
    elif kind == "malformed json":
        bad.write_text('[{"phone": "M", "start": 0.1', "utf-8")
    elif kind == "overlapping":
        bad.write_text('[{"phone": "M", "start": 0.1, "end": 0.3, "word": "a"},'
                       ' {"phone": "P", "start": 0.2, "end": 0.4, "word": "a"}]', "utf-8")
    elif kind == "past the end":
        bad.write_text('[{"phone": "M", "start": 100.0, "end": 100.2, "word": "late"}]', "utf-8")
    with pytest.raises(RuntimeError, match="Error"):
        bpy.ops.voca.import_alignment(filepath=str(bad))
    assert bpy.context.scene.voca_phones.alignment_path == str(alignment)
    assert articulation_writer.stored_track(head) == track
    after = curves(head)
    assert after.keys() == before.keys()
    for path, points in before.items():
        np.testing.assert_array_equal(after[path], points)


def test_import_alignment_reapplies_without_recomputing(head, paths, engine_anim, alignment, track, tmp_path,
                                                        monkeypatch):
    assert bpy.ops.voca.import_alignment(filepath=str(alignment)) == {"FINISHED"}
    assert bpy.context.scene.voca_phones.alignment_path == str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    monkeypatch.setattr(pipeline, "compute", None)                   # VOCA must not run again
    fewer = PhoneTrack(track.phones[:2], "textgrid")
    grid = write_alignment(fewer, tmp_path / "fewer.TextGrid", duration=2.0)
    assert bpy.ops.voca.import_alignment(filepath=str(grid)) == {"FINISHED"}
    assert articulation_writer.stored_track(head).phones == fewer.phones
    assert np.abs(evaluated_all(head) - expected(engine_anim, paths, fewer)).max() <= TOLERANCE


# ---------------------------------------------------------------------------- markers and the panel

def test_words_as_markers_are_owned_and_removable(head, alignment):
    scene = bpy.context.scene
    mine = scene.timeline_markers.new("my cue", frame=5)
    assert bpy.ops.voca.word_markers.poll() is False                 # nothing animated yet
    scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    assert bpy.ops.voca.word_markers() == {"FINISHED"}               # again: replaced, not doubled
    fps = scene.render.fps / scene.render.fps_base
    words = [(scene.frame_start + round(s * fps), w) for w, s in (("my", 0.40), ("paper", 0.90), ("fun", 1.30),
                                                                 ("bob", 1.60))]
    assert sorted((m.frame, m.name) for m in scene.timeline_markers) == sorted(words + [(5, "my cue")])
    assert bpy.ops.voca.remove_word_markers() == {"FINISHED"}
    assert [(m.name, m.frame) for m in scene.timeline_markers] == [("my cue", 5)] and mine.name == "my cue"
    assert bpy.ops.voca.remove_word_markers.poll() is False


def test_an_artists_marker_like_a_word_marker_stays_and_an_import_remarks_the_words(head, alignment, tmp_path):
    """Found by a trial run: Remove took an artist's marker that had a word's name and frame (markers carry
    no owner); and Import alignment left the old track's words on the timeline."""
    scene = bpy.context.scene
    scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    frame = next(m.frame for m in scene.timeline_markers if m.name == "paper")
    scene.timeline_markers.new("paper", frame=frame)                   # the artist's own, same name and frame
    other = PhoneTrack((Phone("HH", 0.2, 0.3, "hello"), Phone("M", 0.5, 0.6, "mama")), "json")
    assert bpy.ops.voca.import_alignment(filepath=str(write_alignment(other, tmp_path / "other.json"))) == {"FINISHED"}
    assert sorted(m.name for m in scene.timeline_markers) == ["hello", "mama", "paper"]   # the new words + mine
    assert bpy.ops.voca.remove_word_markers() == {"FINISHED"}
    assert [(m.name, m.frame) for m in scene.timeline_markers] == [("paper", frame)]


def test_two_heads_keep_their_own_word_markers(head, alignment, tmp_path):
    """Found by a trial run (a dialogue): Remove VOCA animation on the second head took the first head's word
    markers too, and Words as markers on one head replaced the other's."""
    scene = bpy.context.scene
    scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    first = bpy.context.active_object
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    theirs = sorted((m.frame, m.name) for m in scene.timeline_markers)
    for obj in scene.objects:
        obj.select_set(obj == first)
    assert bpy.ops.object.duplicate() == {"FINISHED"}                  # Shift+D: its own action (the default)
    second = bpy.context.active_object
    assert second != first and second.data.shape_keys.animation_data.action != \
        first.data.shape_keys.animation_data.action
    other = PhoneTrack((Phone("HH", 0.2, 0.3, "hello"), Phone("M", 0.5, 0.6, "mama")), "json")
    assert bpy.ops.voca.import_alignment(filepath=str(write_alignment(other, tmp_path / "other.json"))) == {"FINISHED"}
    assert sorted((m.frame, m.name) for m in scene.timeline_markers) == theirs   # the second head had none yet
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    assert sorted(m.name for m in scene.timeline_markers) == sorted([n for _, n in theirs] + ["hello", "mama"])
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}             # the second head's go, the first's stay
    assert sorted((m.frame, m.name) for m in scene.timeline_markers) == theirs
    bpy.context.view_layer.objects.active = first
    first.name = "Lead " + "x" * 75        # renamed: its markers are still its own (a long name, which Blender
                                           # 5 allows, is no custom-property key: found in review)
    assert bpy.ops.voca.word_markers() == {"FINISHED"}
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert not scene.timeline_markers and articulation_operators.WORD_MARKERS not in scene
    # a .blend saved before per-head records holds a plain list: anyone's markers, removed with any head's
    scene.timeline_markers.new("older", frame=7)
    scene[articulation_operators.WORD_MARKERS] = ["7\tolder"]
    assert articulation_operators.has_word_markers(scene, second)
    assert articulation_operators.remove_word_markers(scene, second) == 1 and not scene.timeline_markers


def draw():
    log = []
    articulation_panel.VOCA_PT_articulation.draw(type("P", (), {"layout": FakeLayout(log)})(), bpy.context)
    return log


def test_panel_draws_every_state(head, alignment):
    log = draw()
    assert ("prop", "closures") in log
    assert any(entry[0] == "label" and "run Animate" in entry[1] for entry in log)
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    log = draw()
    labels = " ".join(entry[1] for entry in log if entry[0] == "label")
    assert "lip closures on 3 p/b/m and 1 f/v (json)" in labels
    for name in ("closure_strength", "speech_strength", "mouth_close", "smoothing_ms"):
        assert ("prop", name) in log
    assert ("operator", "voca.reapply_articulation", True) in log
    bpy.context.view_layer.objects.active = None
    assert any("Select the head" in entry[1] for entry in draw() if entry[0] == "label")
