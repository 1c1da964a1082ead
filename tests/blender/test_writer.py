"""The writer: ShapeKeyAnimation → shape keys + one slotted action, checked on the EVALUATED mesh."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402

from voca_addon.blender.speech import writer  # noqa: E402
from voca_addon.core.errors import AudioError, InputError, MeshError, VocaError  # noqa: E402

TOLERANCE = 1e-6        # metres: 1 µm
DATA_KINDS = ("objects", "meshes", "shape_keys", "actions", "sounds")


def snapshot() -> dict:
    """Data-block counts and every object's shape-key names."""
    state = {kind: len(getattr(bpy.data, kind)) for kind in DATA_KINDS}
    for obj in bpy.data.objects:
        key = obj.data.shape_keys if obj.type == "MESH" else None
        state[obj.name] = [kb.name for kb in key.key_blocks] if key else []
    return state


def head(flame, scene, vertices=None):
    return writer.build_head("FLAME", flame.vertices if vertices is None else vertices, flame.faces,
                             scene.collection)


def set_fps(scene, fps, base=1.0):
    scene.render.fps, scene.render.fps_base = fps, base


def assert_exact(obj, scene, anim, start, evaluated, frames=None, reference=None):
    """Evaluated mesh == anim.vertices() (minus template, plus ``reference``) at the given frames."""
    frames = frames if frames is not None else sorted({0, 1, anim.num_frames // 2, anim.num_frames - 1})
    expected = anim.vertices(frames)
    if reference is not None:
        expected = expected - anim.template + reference
    for i, frame in enumerate(frames):
        error = np.abs(evaluated(obj, scene, start + frame) - expected[i]).max()
        assert error <= TOLERANCE, f"frame {frame}: {error:.3g} m"


def curves_of(action) -> list:
    """The action's F-curves; with slotted actions (4.4+) they must all sit in one channelbag."""
    if versions.compat.SLOTTED_ACTIONS:
        (layer,) = action.layers
        (strip,) = layer.strips
        (bag,) = strip.channelbags
        return list(bag.fcurves)
    return versions.fcurves(action)


def test_writer_build_head_keeps_vertex_order_and_tags(scene, flame):
    obj = head(flame, scene)
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    np.testing.assert_array_equal(co.reshape(-1, 3), flame.vertices.astype(np.float32))
    loops = np.empty(len(obj.data.loops), np.int32)
    obj.data.loops.foreach_get("vertex_index", loops)
    np.testing.assert_array_equal(loops.reshape(-1, 3), flame.faces)
    assert not obj.data.validate()                       # nothing to fix
    assert all(p.use_smooth for p in obj.data.polygons[:10])
    assert tuple(obj.rotation_euler) == pytest.approx((math.pi / 2, 0, 0))
    assert tuple(obj.scale) == (10.0, 10.0, 10.0)
    assert obj[writer.OWNED] and obj.data[writer.OWNED]
    assert obj.name in scene.collection.objects


def test_writer_build_head_rejects_bad_faces(scene, flame):
    before = snapshot()
    with pytest.raises(MeshError, match="faces"):
        writer.build_head("bad", flame.vertices, flame.faces + 10_000)
    assert snapshot() == before


@pytest.mark.parametrize("fps,base", [(24, 1.0), (30, 1.0), (60, 1.0), (30, 1.001)])
def test_writer_shape_keys_evaluate_exactly(scene, flame, make_anim, evaluated, fps, base):
    set_fps(scene, fps, base)
    obj, anim = head(flame, scene), make_anim(frames=120)
    report = writer.write_animation(obj, anim, scene, start_frame=10)
    resampled = anim.resampled(fps / base)
    assert report.frames == resampled.num_frames and report.fps == pytest.approx(fps / base)
    assert (report.frame_start, report.frame_end) == (10, 10 + resampled.num_frames - 1)
    key = obj.data.shape_keys
    assert len(key.key_blocks) == 52 <= 60                # Basis + 50 + bias
    assert report.keys_created == 52 and report.rescaled_keys == ()
    action = key.animation_data.action
    assert action[writer.OWNED] and len(bpy.data.actions) == 1
    assert versions.compat.slot_identifier(key.animation_data) == (
        "KEVOCA" if versions.compat.SLOTTED_ACTIONS else None)
    assert action.id_root == "KEY" if not versions.compat.SLOTTED_ACTIONS else True
    curves = curves_of(action)
    assert len(curves) == 51 and len(curves[0].keyframe_points) == resampled.num_frames
    assert {kp.interpolation for kp in curves[0].keyframe_points[:5]} == {"LINEAR"}
    assert_exact(obj, scene, resampled, 10, evaluated)


def test_writer_rerun_replaces(scene, flame, make_anim, evaluated):
    obj = head(flame, scene)
    writer.write_animation(obj, make_anim(seed=1), scene, 1)
    state = snapshot()
    anim = make_anim(seed=2)
    writer.write_animation(obj, anim, scene, 1)
    assert snapshot() == state
    assert len(curves_of(obj.data.shape_keys.animation_data.action)) == 51
    assert_exact(obj, scene, anim.resampled(24), 1, evaluated)


def test_writer_leaves_artist_data_untouched(scene, flame, make_anim, evaluated):
    obj = head(flame, scene)
    obj.shape_key_add(name="Basis", from_mix=False)
    smile = obj.shape_key_add(name="Smile", from_mix=False)
    smile_co = np.asarray(flame.vertices, np.float32) + 0.01
    smile.data.foreach_set("co", smile_co.ravel())
    driver = smile.driver_add("value")
    driver.driver.expression = "0"
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    scene.collection.objects.link(cube)
    cube.keyframe_insert("location", index=0, frame=1)
    cube_action = cube.animation_data.action
    anim = make_anim()
    writer.write_animation(obj, anim, scene, 1)
    writer.write_animation(obj, anim, scene, 1)
    assert_exact(obj, scene, anim.resampled(24), 1, evaluated)
    key = obj.data.shape_keys
    assert key.key_blocks["Smile"] and len(key.animation_data.drivers) == 1
    assert cube.animation_data.action == cube_action and len(bpy.data.actions) == 2
    assert writer.remove_animation(obj) == 51
    assert [kb.name for kb in key.key_blocks] == ["Basis", "Smile"]
    np.testing.assert_array_equal(writer.key_co(key.key_blocks["Smile"]), smile_co)
    assert key.animation_data.action is None and len(key.animation_data.drivers) == 1
    assert list(bpy.data.actions) == [cube_action]


def test_writer_keeps_artist_curves_keyed_into_its_action(scene, flame, make_anim, evaluated):
    obj, anim = head(flame, scene), make_anim()
    writer.write_animation(obj, anim, scene, 1)
    key = obj.data.shape_keys
    blink = obj.shape_key_add(name="Blink", from_mix=False)
    blink.keyframe_insert("value", frame=3)                 # lands in the add-on's active action
    action = key.animation_data.action
    writer.write_animation(obj, anim, scene, 1)
    assert key.animation_data.action == action and len(bpy.data.actions) == 1
    paths = [fc.data_path for fc in curves_of(action)]
    assert len(paths) == 52 and 'key_blocks["Blink"].value' in paths
    assert_exact(obj, scene, anim.resampled(24), 1, evaluated)
    writer.remove_animation(obj)
    assert [kb.name for kb in key.key_blocks] == ["Basis", "Blink"]
    assert [fc.data_path for fc in curves_of(action)] == ['key_blocks["Blink"].value']
    assert key.animation_data.action == action


def test_writer_duplicate_sharing_the_action_keeps_it(scene, flame, make_anim, evaluated):
    obj, anim = head(flame, scene), make_anim()
    writer.write_animation(obj, anim, scene, 1)
    twin = obj.copy()
    twin.data = obj.data.copy()                          # copies the Key; the action is shared
    scene.collection.objects.link(twin)
    action = twin.data.shape_keys.animation_data.action
    assert action == obj.data.shape_keys.animation_data.action
    writer.write_animation(obj, make_anim(seed=5), scene, 1)
    assert twin.data.shape_keys.animation_data.action == action
    assert len(curves_of(action)) == 51 and len(bpy.data.actions) == 2
    assert_exact(twin, scene, anim.resampled(24), 1, evaluated)


def test_writer_remove_animation_restores_plain_mesh(scene, flame, make_anim):
    obj = head(flame, scene)
    before = snapshot()
    writer.write_animation(obj, make_anim(), scene, 1)
    writer.remove_animation(obj)
    assert obj.data.shape_keys is None and snapshot() == before


def test_writer_refuses_foreign_action(scene, flame, make_anim):
    obj = head(flame, scene)
    obj.shape_key_add(name="Basis", from_mix=False)
    smile = obj.shape_key_add(name="Smile", from_mix=False)
    smile.keyframe_insert("value", frame=1)
    before = snapshot()
    with pytest.raises(InputError, match="did not create"):
        writer.write_animation(obj, make_anim(), scene, 1)
    assert snapshot() == before


def test_writer_wrong_vertex_count_raises_and_changes_nothing(scene, flame, make_anim):
    small = writer.build_head("Small", flame.vertices[:100], np.array([[0, 1, 2]]), scene.collection)
    before = snapshot()
    with pytest.raises(MeshError, match=r"has 100 vertices; VOCA needs 5023 .*FLAME.*Add FLAME head"):
        writer.write_animation(small, make_anim(), scene, 1)
    assert snapshot() == before and small.data.shape_keys is None
    with pytest.raises(InputError, match="mode"):
        writer.write_animation(small, make_anim(), scene, 1, mode="bones")
    assert snapshot() == before


def test_writer_refuses_edit_mode_and_non_mesh(scene, flame, make_anim):
    obj = head(flame, scene)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    before = snapshot()
    with pytest.raises(InputError, match="Edit Mode"):
        writer.write_animation(obj, make_anim(), scene, 1)
    bpy.ops.object.mode_set(mode="OBJECT")
    empty = bpy.data.objects.new("Empty", None)
    with pytest.raises(MeshError, match="not a mesh"):
        writer.write_animation(empty, make_anim(), scene, 1)
    bpy.data.objects.remove(empty)
    assert snapshot() == before


def test_writer_weights_beyond_slider_limit_stay_exact(scene, flame, make_anim, evaluated):
    set_fps(scene, 60)
    obj, anim = head(flame, scene), make_anim(frames=60, weight_std=12.0)
    assert np.abs(anim.weights).max() > 30
    report = writer.write_animation(obj, anim, scene, 1)
    assert report.rescaled_keys
    key = obj.data.shape_keys
    for name in report.rescaled_keys:
        block = key.key_blocks[name]
        assert key[writer.KEY_SCALES][name] > 1 and -10 <= block.slider_min < block.slider_max <= 10
    assert_exact(obj, scene, anim, 1, evaluated, frames=list(range(0, 60, 7)))


def test_writer_other_head_gets_motion_as_offsets(scene, flame, make_anim, evaluated):
    artist = (flame.vertices * 1.2).astype(np.float32)
    obj, anim = head(flame, scene, vertices=artist), make_anim()
    writer.write_animation(obj, anim, scene, 1)
    assert_exact(obj, scene, anim.resampled(24), 1, evaluated, reference=artist)


def test_writer_per_frame_mode(scene, flame, make_anim, evaluated):
    set_fps(scene, 60)
    obj, anim = head(flame, scene), make_anim(frames=12)
    report = writer.write_animation(obj, anim, scene, 5, mode="per_frame")
    assert report.keys_created == 13 and len(obj.data.shape_keys.key_blocks) == 13
    curves = curves_of(obj.data.shape_keys.animation_data.action)
    assert [tuple(kp.co) for kp in curves[3].keyframe_points] == [(7, 0), (8, 1), (9, 0)]
    assert {kp.interpolation for kp in curves[3].keyframe_points} == {"CONSTANT"}
    assert_exact(obj, scene, anim, 5, evaluated, frames=list(range(12)))
    writer.write_animation(obj, anim, scene, 5)           # switching modes replaces everything
    assert len(obj.data.shape_keys.key_blocks) == 52


@versions.needs_audio
def test_writer_sound_strip_replaces_only_its_own(scene, shared_data, tmp_path):
    wav = shared_data / "audio" / "test.wav"
    scene.sequence_editor_create()
    theirs = versions.new_sound_strip(scene, "music", wav, 1, 1)
    strip = writer.add_sound_strip(scene, wav, 10)
    assert strip.frame_start == 10 and strip.channel == 2 and strip.name.startswith("VOCA")
    writer.add_sound_strip(scene, wav, 20)
    strips = {s.name: s for s in versions.strips_all(scene)}
    assert len(strips) == 2 and strips["music"] == theirs
    (ours,) = [s for s in strips.values() if s.get(writer.OWNED)]
    # 5.3 loads a file once (a second strip of it shares the sound data-block); before, one per strip.
    # Either way the user's sound is never tagged as ours and there is no other sound.
    assert ours.frame_start == 20 and not theirs.sound.get(writer.OWNED)
    assert set(bpy.data.sounds) == {theirs.sound, ours.sound}
    before = snapshot(), [(s.name, s.channel, s.frame_start) for s in versions.strips_all(scene)]
    with pytest.raises(AudioError, match="not found"):
        writer.add_sound_strip(scene, wav.with_name("missing.wav"), 1)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="cannot read"):
        writer.add_sound_strip(scene, tmp_path / "text.wav", 1)
    assert before == (snapshot(), [(s.name, s.channel, s.frame_start)
                                   for s in versions.strips_all(scene)])
    assert writer.remove_sound_strips(scene) == 1 and versions.strips(scene) == [theirs]
    assert list(bpy.data.sounds) == [theirs.sound]


@versions.needs_audio
def test_writer_sound_strip_rerun_keeps_the_artists_mix(scene, shared_data):
    """A re-run replaces the add-on's strip but keeps what the artist set on it: volume, pan, mute, channel,
    lock and their own custom properties always; the trims only for the same file at the same frame."""
    wav, other = shared_data / "audio" / "test.wav", shared_data / "audio" / "test_sentence.wav"
    first = writer.add_sound_strip(scene, wav, 10)
    first.volume, first.pan, first.mute, first.channel = 0.25, -0.5, True, 6
    first.frame_offset_start, first.frame_offset_end = 7, 3
    first["artist_note"], first.lock = "temp mix", True
    again = writer.add_sound_strip(scene, wav, 10)
    assert [s.name for s in versions.strips_all(scene)] == [again.name] and again.name == "VOCA audio"
    assert (again.volume, again.pan, again.mute, again.channel, again.lock) == (0.25, -0.5, True, 6, True)
    assert (again.frame_offset_start, again.frame_offset_end, again["artist_note"]) == (7, 3, "temp mix")
    assert again.get(writer.OWNED)
    clip = writer.add_sound_strip(scene, other, 10)        # another clip: its own length, the mix kept
    assert (clip.frame_offset_start, clip.frame_offset_end) == (0, 0) and clip.frame_final_start == 10
    assert (clip.volume, clip.mute, clip.channel, clip["artist_note"]) == (0.25, True, 6, "temp mix")
    clip.frame_offset_start = 5
    later = writer.add_sound_strip(scene, other, 40)        # another frame: the trims are not kept either
    assert (later.frame_offset_start, later.volume) == (0, 0.25)
    later.frame_offset_start = 4
    again = writer.add_sound_strip(scene, other, 40)        # the same file at the same frame: they are
    assert (again.frame_offset_start, again.volume) == (4, 0.25)
    versions.new_sound_strip(scene, "music", wav, 6, 200)   # the artist's strip now holds channel 6 there
    moved = writer.add_sound_strip(scene, other, 180)
    assert moved.channel == 1 and moved.volume == 0.25 and len(versions.strips_all(scene)) == 2


@versions.needs_audio
def test_writer_sound_strip_rerun_keeps_the_heads_own_strip_settings(scene, shared_data, flame):
    """With a head, the settings kept are those of the strip made for that head, never a strip of no head (a
    dialogue library's clip, an export's) or another head's."""
    wav = shared_data / "audio" / "test.wav"
    head = writer.build_head("Head", flame.vertices, flame.faces, scene.collection)
    other = writer.build_head("Other", flame.vertices, flame.faces, scene.collection)
    clip = writer.add_sound_strip(scene, wav, 300, name="library clip", replace=False)
    clip.volume = 0.125
    theirs = writer.add_sound_strip(scene, wav, 1, name="other voice", head=other)
    theirs.volume = 0.75
    first = writer.add_sound_strip(scene, wav, 1, head=head)
    assert first.volume == 1.0                              # nothing of the head's before: defaults
    first.volume = 0.5
    again = writer.add_sound_strip(scene, wav, 1, head=head)
    assert again.volume == 0.5 and theirs.volume == 0.75


@versions.needs_audio
def test_writer_sound_strip_removal_keeps_a_sound_another_strip_uses(scene, shared_data):
    """The add-on's strip first, then the user's strip of the same file (5.3 gives it the add-on's sound
    data-block): removing the add-on's strip leaves the user's strip playable."""
    wav = shared_data / "audio" / "test.wav"
    ours = writer.add_sound_strip(scene, wav, 1)
    theirs = versions.new_sound_strip(scene, "music", wav, 2, 1)
    shared = theirs.sound == ours.sound
    assert writer.remove_sound_strips(scene) == 1 and versions.strips(scene) == [theirs]
    assert list(bpy.data.sounds) == [theirs.sound] and theirs.sound.samplerate > 0
    assert bool(theirs.sound.get(writer.OWNED)) == shared    # ours, still used: kept until unused


@versions.needs_audio
def test_writer_sound_strip_failure_leaves_no_editor(scene, tmp_path):
    scene.sequence_editor_clear()
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError):
        writer.add_sound_strip(scene, tmp_path / "text.wav", 1)
    assert scene.sequence_editor is None and len(bpy.data.sounds) == 0


def test_writer_set_frame_range(scene):
    writer.set_frame_range(scene, 300, 900)
    assert (scene.frame_start, scene.frame_end) == (300, 900)
    with pytest.raises(InputError):
        writer.set_frame_range(scene, 10, 5)
    assert issubclass(InputError, VocaError)


def test_writer_blend_file_roundtrip(scene, flame, make_anim, evaluated, tmp_path):
    set_fps(scene, 30)
    obj, anim = head(flame, scene), make_anim()
    writer.write_animation(obj, anim, scene, 1)
    path = tmp_path / "voca.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene, obj = bpy.context.scene, bpy.data.objects["FLAME"]
    key = obj.data.shape_keys
    assert len(key.key_blocks) == 52 and len(key[writer.OWNED_KEYS]) == 51
    action = key.animation_data.action
    assert action[writer.OWNED]
    if versions.compat.SLOTTED_ACTIONS:
        assert key.animation_data.action_slot == action.slots[0]
    assert len(curves_of(action)) == 51
    assert_exact(obj, scene, anim.resampled(30), 1, evaluated)
    report = writer.write_animation(obj, anim, scene, 1)  # the reopened file is still ours to replace
    assert report.keys_created == 51 and obj.data.shape_keys == key  # the Basis is kept
    assert len(bpy.data.actions) == 1 and len(key.key_blocks) == 52


def test_writer_measure_one_minute_at_60fps(scene, flame, make_anim, tmp_path, capsys):
    """Not a timing assertion: prints write time, playback cost and .blend size (target < 0.5 s)."""
    set_fps(scene, 60)
    obj, anim = head(flame, scene), make_anim(frames=3600)
    start = time.perf_counter()
    writer.write_animation(obj, anim, scene, 1)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    writer.write_animation(obj, anim, scene, 1)
    rewrite_s = time.perf_counter() - start
    frames = range(1, 601)
    start = time.perf_counter()
    for frame in frames:
        scene.frame_set(frame)
    frame_ms = (time.perf_counter() - start) / len(frames) * 1e3
    path = tmp_path / "minute.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    with capsys.disabled():
        print(f"\n[writer] 3600 frames x 50 keys: write {write_s:.3f} s, re-write {rewrite_s:.3f} s "
              f"(target < 0.5 s); frame_set {frame_ms:.2f} ms/frame; "
              f".blend {path.stat().st_size / 2**20:.1f} MiB per minute at 60 fps")
    assert len(obj.data.shape_keys.key_blocks) == 52


def test_writer_long_clip_is_stored_as_samples_and_stays_exact(scene, flame, make_anim, evaluated, tmp_path):
    """Past COMPACT_FRAMES keys a curve becomes Blender samples: same value at frames and subframes."""
    from voca_addon.blender import keyframes
    set_fps(scene, 60)
    frames = keyframes.COMPACT_FRAMES + 500
    obj, anim = head(flame, scene), make_anim(frames=frames, dims=4)
    writer.write_animation(obj, anim, scene, 5)
    curves = curves_of(obj.data.shape_keys.animation_data.action)
    weight_curves = [c for c in curves if not c.data_path.endswith('bias"].value')]
    assert len(weight_curves) == 4
    for fcurve in weight_curves:
        assert len(fcurve.keyframe_points) == 0 and len(fcurve.sampled_points) == frames
        assert keyframes.curve_points(fcurve)[[0, -1], 0].tolist() == [5.0, 5.0 + frames - 1]
    bias = next(c for c in curves if c.data_path.endswith('bias"].value'))
    assert len(bias.keyframe_points) == 1                    # one CONSTANT key stays a key
    checked = [0, 1, frames // 2, frames - 1]
    assert_exact(obj, scene, anim, 5, evaluated, frames=checked)
    scene.frame_set(5 + 1000, subframe=0.5)                  # between samples: linear, as LINEAR keys
    halfway = (anim.vertices([1000]) + anim.vertices([1001])) / 2
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    assert np.abs(co.reshape(-1, 3) - halfway[0]).max() <= TOLERANCE
    path = tmp_path / "long.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene, obj = bpy.context.scene, bpy.data.objects["FLAME"]
    assert all(len(c.sampled_points) == frames for c in curves_of(obj.data.shape_keys.animation_data.action)
               if not c.data_path.endswith('bias"].value'))
    assert_exact(obj, scene, anim, 5, evaluated, frames=checked)
    writer.remove_animation(obj)
    assert obj.data.shape_keys is None and len(bpy.data.actions) == 0


def test_writer_keyframes_compact_only_every_frame_linear_curves(scene):
    """Samples hold one value per integer frame: sparse, fractional or CONSTANT keys stay keys."""
    from voca_addon.blender import keyframes
    action = versions.compat.new_action("probe")
    obj = bpy.data.objects.new("probe", None)
    scene.collection.objects.link(obj)
    anim_data = obj.animation_data_create()
    versions.compat.assign_action(anim_data, action, "OBJECT", "probe")
    values = np.linspace(0, 1, 50, dtype=np.float32)
    cases = [(np.arange(50.0), keyframes.LINEAR, True), (np.arange(50.0) * 2, keyframes.LINEAR, False),
             (np.arange(50.0) + 0.5, keyframes.LINEAR, False), (np.arange(50.0), keyframes.CONSTANT, False),
             (np.arange(50.0) - 10, keyframes.LINEAR, False)]     # below frame 0 samples go one frame off
    paths = [("location", 0), ("location", 1), ("location", 2), ("scale", 0), ("scale", 1)]
    for (path, index), (frames, interpolation, sampled) in zip(paths, cases):
        fcurve = versions.compat.new_fcurve(anim_data, path, index, "probe")
        assert keyframes.set_keyframes(fcurve, frames, values, interpolation, compact=True) is sampled
        assert (len(fcurve.sampled_points), len(fcurve.keyframe_points)) == ((50, 0) if sampled else (0, 50))
        np.testing.assert_array_equal(keyframes.curve_points(fcurve), np.column_stack([frames, values]))
