"""Sequence import / PC2 / Mesh Cache / OBJ export, checked on the EVALUATED mesh with REAL data: VOCA's
official output for test_sentence.wav (306 frames, 6-decimal OBJs read back) on FLAME_sample.ply."""
from __future__ import annotations

import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

from voca_addon.blender.exports import sequences as sequence_io  # noqa: E402
from voca_addon.blender.speech import writer
from voca_addon.core.animation import exporters  # noqa: E402
from voca_addon.core.flame import meshio
from voca_addon.core.errors import AudioError, InputError, MeshError  # noqa: E402

TOLERANCE = 1e-6            # metres, per coordinate: the factorization's bound (1 µm)
OFFICIAL = ("voca_official", "output_test_sentence_cond3.npz")
MAX_KEYS = 51               # VOCA's decoder: 50 shapes + the constant bias


@pytest.fixture(scope="module")
def official(shared_data):
    with np.load(shared_data.joinpath(*OFFICIAL)) as z:
        return z["vertices"].astype(np.float32), float(z["fps"])


@pytest.fixture
def paths(shared_data):
    return dict(npz=shared_data.joinpath(*OFFICIAL), template=shared_data / "flame" / "FLAME_sample.ply",
                wav=shared_data / "audio" / "test_sentence.wav")


@pytest.fixture
def scene60(scene):
    scene.render.fps, scene.render.fps_base = 60, 1.0
    return scene


@pytest.fixture
def imported(scene60, paths):
    return sequence_io.import_sequence(scene60, paths["npz"], paths["template"], paths["wav"])


def state(scene) -> dict:
    counts = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "shape_keys", "actions", "sounds")}
    editor = scene.sequence_editor
    counts["strips"] = len(versions.strips(scene)) if editor else 0
    counts["range"] = (scene.frame_start, scene.frame_end)
    return counts


def test_sequence_io_import_official_reproduces_every_frame(scene60, imported, official):
    vertices, fps = official
    obj, report = imported.obj, imported.write
    assert fps == 60 and imported.frames_read == len(vertices) == 306
    key = obj.data.shape_keys
    assert len(key.key_blocks) - 1 == len(report.key_names) <= MAX_KEYS        # Basis not counted
    assert (scene60.frame_start, scene60.frame_end) == (1, 306) == (report.frame_start, report.frame_end)
    frames = sequence_io.evaluated_frames(scene60, obj, range(1, 307))         # every frame, at 60 fps
    error = np.abs(frames - vertices).max(axis=(1, 2))
    assert error.max() <= TOLERANCE, f"worst frame {error.argmax()}: {error.max():.3g} m"
    strips = [s for s in versions.strips(scene60) if s.type == "SOUND"]
    assert [s.frame_final_start for s in strips] == [1] * versions.SOUND_STRIPS


def test_sequence_io_import_at_other_scene_rate_resamples(scene, paths, official, evaluated):
    scene.render.fps = 30                                     # every other frame of the 60 fps sequence
    report = sequence_io.import_sequence(scene, paths["npz"], paths["template"])
    assert report.write.frames == 153
    for frame in (1, 40, 153):
        error = np.abs(evaluated(report.obj, scene, frame) - official[0][2 * (frame - 1)]).max()
        assert error <= TOLERANCE


def write_numbered_objs(folder, vertices, faces, count) -> list:
    """frame_1.obj … frame_N.obj without zero padding: text order would put frame_10 before frame_2."""
    folder.mkdir()
    for index in range(count):
        meshio.write_obj(folder / f"frame_{index + 1}.obj", vertices[index * 7], faces)
    (folder / "notes.txt").write_text("not a frame")
    return [meshio.read_mesh(folder / f"frame_{i + 1}.obj").vertices for i in range(count)]


def test_sequence_io_import_obj_folder_in_numeric_order(scene60, paths, official, flame, tmp_path):
    expected = np.array(write_numbered_objs(tmp_path / "objs", official[0], flame.faces, 12), np.float32)
    assert sorted(os.listdir(tmp_path / "objs"))[:3] == ["frame_1.obj", "frame_10.obj", "frame_11.obj"]
    # Picking one frame file in a file browser means its folder.
    report = sequence_io.import_sequence(scene60, tmp_path / "objs" / "frame_5.obj", paths["template"])
    frames = sequence_io.evaluated_frames(scene60, report.obj, range(1, 13))
    assert np.abs(frames - expected).max() <= TOLERANCE


def test_sequence_io_import_onto_active_head_keeps_it(scene60, paths, flame):
    head = writer.build_head("Mine", flame.vertices, flame.faces, scene60.collection)
    report = sequence_io.import_sequence(scene60, paths["npz"], paths["template"], obj=head)
    assert report.obj == head and not report.created_head and len(bpy.data.objects) == 1


def test_sequence_io_pc2_round_trip_equals_evaluated(scene60, imported, tmp_path):
    path = sequence_io.export_pc2(scene60, imported.obj, tmp_path / "head.pc2")
    frames, start, rate = exporters.read_pc2(path)
    assert frames.shape == (306, 5023, 3) and (start, rate) == (1.0, 1.0)
    np.testing.assert_array_equal(frames, sequence_io.evaluated_frames(scene60, imported.obj, range(1, 307)))


def test_sequence_io_mesh_cache_plays_like_shape_keys(scene60, imported, evaluated, tmp_path):
    obj = imported.obj
    picks = (1, 2, 77, 150, 306)
    before = [evaluated(obj, scene60, f) for f in picks]
    path = sequence_io.export_pc2(scene60, obj, tmp_path / "head.pc2", mesh_cache=True)
    modifier = obj.modifiers[0]
    assert modifier.type == "MESH_CACHE" and modifier.name == sequence_io.MESH_CACHE_NAME
    key = obj.data.shape_keys
    assert all(b.mute for b in key.key_blocks[1:]) and not key.reference_key.mute
    for frame, expected in zip(picks, before):
        np.testing.assert_array_equal(evaluated(obj, scene60, frame), expected)
    modifier.show_viewport = False                          # the keys are muted: the cache does the work
    assert np.abs(evaluated(obj, scene60, 77) - before[2]).max() > 1e-4
    modifier.show_viewport = True
    again = sequence_io.export_pc2(scene60, obj, tmp_path / "again.pc2", mesh_cache=True)
    assert len(obj.modifiers) == 1                          # re-runs update the one modifier
    np.testing.assert_array_equal(exporters.read_pc2(again)[0], exporters.read_pc2(path)[0])
    assert sequence_io.remove_mesh_cache(obj) and not any(b.mute for b in key.key_blocks)
    np.testing.assert_array_equal(evaluated(obj, scene60, 150), before[3])


def test_sequence_io_obj_sequence_export(scene60, imported, flame, tmp_path):
    scene60.frame_start, scene60.frame_end = 10, 21
    files = sequence_io.export_obj_sequence(scene60, imported.obj, tmp_path / "out")
    assert [os.path.basename(f) for f in files] == [f"frame_{i:04d}.obj" for i in range(12)]
    expected = sequence_io.evaluated_frames(scene60, imported.obj, range(10, 22))
    for path, frame in zip(files, expected):
        mesh = meshio.read_mesh(path)
        assert np.abs(mesh.vertices - frame).max() <= 5.1e-7          # 6 decimals
        np.testing.assert_array_equal(mesh.faces, flame.faces)
    with pytest.raises(InputError, match="not empty"):
        sequence_io.export_obj_sequence(scene60, imported.obj, tmp_path / "out")


def test_sequence_io_import_refuses_wrong_template(scene60, paths, tmp_path):
    small = tmp_path / "tri.obj"
    small.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    before = state(scene60)
    with pytest.raises(MeshError, match="5023 vertices"):
        sequence_io.import_sequence(scene60, paths["npz"], small)
    assert state(scene60) == before


@pytest.mark.parametrize("source", ["missing.npz", "empty_dir", "bad.npy"])
def test_sequence_io_import_refuses_bad_sources(scene60, paths, tmp_path, source):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    before = state(scene60)
    with pytest.raises(InputError):
        sequence_io.import_sequence(scene60, tmp_path / source, paths["template"])
    assert state(scene60) == before


def test_sequence_io_import_unreadable_audio_leaves_scene_unchanged(scene60, paths, tmp_path):
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF0000WAVEjunk" * 10)
    before = state(scene60)
    with pytest.raises(AudioError, match="cannot read|corrupt WAV"):      # Blender's reader, or ours (4.2)
        sequence_io.import_sequence(scene60, paths["npz"], paths["template"], fake)
    assert state(scene60) == before


def test_sequence_io_exports_refuse_bad_destinations(scene60, imported, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        sequence_io.export_pc2(scene60, imported.obj, tmp_path / "nowhere" / "a.pc2")
    with pytest.raises(InputError, match=r"\.pc2"):
        sequence_io.export_pc2(scene60, imported.obj, tmp_path / "a.mdd")
    with pytest.raises(InputError, match="does not exist"):
        sequence_io.export_obj_sequence(scene60, imported.obj, tmp_path / "nowhere" / "objs")
    assert os.listdir(tmp_path) == [] and not imported.obj.modifiers


def test_sequence_io_find_head(scene60, imported, flame):
    assert sequence_io.find_head(scene60) == imported.obj
    writer.build_head("Static", flame.vertices, flame.faces, scene60.collection)
    assert sequence_io.find_head(scene60, imported.obj.name) == imported.obj
    with pytest.raises(InputError, match="no mesh object 'Nope'"):
        sequence_io.find_head(scene60, "Nope")


@pytest.fixture
def registered():
    for cls in sequence_io.CLASSES:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(sequence_io.CLASSES):
        bpy.utils.unregister_class(cls)


def test_sequence_io_operators_import_and_export(scene60, paths, registered, tmp_path):
    result = bpy.ops.voca.import_sequence(filepath=str(paths["npz"]), template_path=str(paths["template"]))
    assert result == {"FINISHED"}
    obj = bpy.data.objects[0]
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.voca.export_pc2(filepath=str(tmp_path / "a.pc2"), use_mesh_cache=True) == {"FINISHED"}
    assert obj.modifiers[0].type == "MESH_CACHE" and (tmp_path / "a.pc2").is_file()
    assert bpy.ops.voca.export_obj_sequence(directory=str(tmp_path / "objs")) == {"FINISHED"}
    assert len(os.listdir(tmp_path / "objs")) == 306


def test_sequence_io_operator_reports_errors_without_changes(scene60, paths, registered, tmp_path):
    before = state(scene60)
    with pytest.raises(RuntimeError, match="was not found"):
        bpy.ops.voca.import_sequence(filepath=str(tmp_path / "missing.npz"), template_path=str(paths["template"]))
    assert state(scene60) == before


@versions.needs_audio
def test_sequence_io_import_onto_a_second_head_keeps_the_first_heads_sound(scene60, paths):
    """Found in review: Import sequence with audio replaced every sound strip the add-on had made, another head's
    too (Animate's per-head strips were fixed, the import was not)."""
    first = sequence_io.import_sequence(scene60, paths["npz"], paths["template"], paths["wav"]).obj
    second = sequence_io.import_sequence(scene60, paths["npz"], paths["template"], paths["wav"], start_frame=400).obj
    owned = sorted((s.get("voca_head"), s.frame_start) for s in versions.strips_all(scene60) if s.get("voca_owned"))
    assert owned == sorted([(first.name, 1), (second.name, 400)])
    sequence_io.import_sequence(scene60, paths["npz"], paths["template"], paths["wav"], obj=second, start_frame=500)
    owned = sorted((s.get("voca_head"), s.frame_start) for s in versions.strips_all(scene60) if s.get("voca_owned"))
    assert owned == sorted([(first.name, 1), (second.name, 500)])      # a re-import replaces its own strip only
