"""The Living face sub-panel: ``scene.voca.living`` → :class:`LivelinessSettings`, the panel's draw (every
state, every label within the sidebar's width), Animate from audio from the panel with blinks and head
motion (the same curves as the core's tracks and as the headless pipeline), Remove, undo with all of it
on, and Mark as blink (marks a key, refuses what is not one, changes nothing then)."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_operators import FakeLayout, addon, head, paths, snapshot  # noqa: E402,F401
from tests.core.flame.flame_format import write_flame_format_model  # noqa: E402
from voca_addon.blender import compat  # noqa: E402
from voca_addon.blender.liveliness import writer as lw, rig
from voca_addon.blender.speech import panel, pipeline, properties
from voca_addon.blender.speech import writer  # noqa: E402
from voca_addon.core.errors import InputError  # noqa: E402
from voca_addon.core.flame import flame_model  # noqa: E402
from voca_addon.core.living.liveliness import LivelinessSettings, compute_liveliness  # noqa: E402


@pytest.fixture(scope="module")
def flame_pkl(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_flame_format_model(path, shared_data, seed=11)
    return path


@pytest.fixture
def eyelids(shared_data):
    return tuple(str(shared_data / "flame" / name) for name in ("l_eyelid.npy", "r_eyelid.npy"))


def draw(panel_class=panel.VOCA_PT_living) -> list:
    log = []
    panel_class.draw(type("P", (), {"layout": FakeLayout(log)})(), bpy.context)
    return log


def labels(log) -> list:
    return [entry[1] for entry in log if entry[0] == "label"]


def everything_on(living, flame_pkl, eyelids, look_at=None):
    living.blinks, living.blink_source = True, ",".join(eyelids)
    living.head_motion, living.head_strength = True, 1.0
    living.gaze, living.look_at = True, look_at
    living.rig, living.flame_model = True, str(flame_pkl)
    living.shape_sliders, living.shape_slider_count = True, 2


def add_artist_key(obj, name, delta=None):
    """An artist's shape key (Basis added first when missing), made active."""
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
    block = obj.shape_key_add(name=name, from_mix=False)
    if delta is not None:
        co = np.empty(len(obj.data.vertices) * 3, np.float32)
        block.data.foreach_get("co", co)
        block.data.foreach_set("co", (co.reshape(-1, 3) + delta).ravel().astype(np.float32))
    obj.active_shape_key_index = list(obj.data.shape_keys.key_blocks).index(block)
    return block


def curve_values(anim_data, path, index=0) -> np.ndarray:
    """float32 [F, 2] (frame, value) of one F-curve."""
    fcurve = compat.find_fcurve(anim_data, path, index)
    assert fcurve is not None, path
    co = np.empty(len(fcurve.keyframe_points) * 2, np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def living_curves(obj) -> dict:
    """The blink curve and the head's delta-rotation curves (the panel's and the pipeline's must agree)."""
    curves = {"blink": curve_values(obj.data.shape_keys.animation_data, writer.value_path(lw.BLINK_KEY))}
    for i in range(3):
        curves[f"rot{i}"] = curve_values(obj.animation_data, "delta_rotation_euler", i)
    return curves


def plain_state(obj):
    key = obj.data.shape_keys
    return (rig.find_rig(obj) is not None, [g.name for g in obj.vertex_groups], [m.name for m in obj.modifiers],
            [k.name for k in key.key_blocks] if key else None, lw.has_liveliness(obj),
            tuple(obj.delta_rotation_euler), len(bpy.data.armatures))


# ---------------------------------------------------------------------------- settings

def test_living_settings_default_off_and_everything_mirrored(addon, head, flame_pkl, eyelids):
    scene = bpy.context.scene
    living = scene.voca.living
    settings = properties.settings_from_scene(scene, addon, head)
    assert settings.liveliness == LivelinessSettings() and not settings.liveliness.enabled
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    everything_on(living, flame_pkl, eyelids, target)
    living.head_strength, living.head_smoothness, living.seed, living.correctives = 2.5, 0.2, 7, False
    assert properties.settings_from_scene(scene, addon, head).liveliness == LivelinessSettings(
        blinks=True, blink_source=eyelids, head_motion=2.5, head_smoothness_s=0.2, gaze=True,
        flame_model=str(flame_pkl), rig=True, correctives=False, shape_sliders=2, seed=7, look_at="Target")
    living.gaze, living.rig = False, False          # look-at only with eye motion, sliders only with the rig
    living.blink_source = ""
    addon.flame_model_path = str(flame_pkl)          # the blink from the preferences' FLAME model
    got = properties.living_settings(scene, addon, head)
    assert (got.look_at, got.shape_sliders, got.rig, got.flame_model, got.blink_source) == \
        (None, 0, False, str(flame_pkl), ())
    add_artist_key(head, "Closed")
    lw.mark_as_blink(head, "Closed")                 # a marked key is the blink: the model is not needed
    assert properties.living_settings(scene, addon, head).flame_model is None
    assert properties.blink_shape_of(living, addon, head) == "marked"
    living.blinks = False                            # head motion only: a stale model path never refuses
    addon.flame_model_path = str(flame_pkl.parent / "moved.pkl")
    assert properties.living_settings(scene, addon, head) == LivelinessSettings(head_motion=2.5,
                                                                                head_smoothness_s=0.2,
                                                                                correctives=False, seed=7)


def test_living_settings_refuse_what_cannot_run_in_the_panels_words(addon, head):
    scene = bpy.context.scene
    living = scene.voca.living
    living.blinks = True                             # no source, no FLAME model, no marked key
    with pytest.raises(InputError, match="Blinks need a shape"):
        properties.living_settings(scene, addon, head)
    living.blinks, living.rig = False, True
    with pytest.raises(InputError, match="The FLAME rig needs the FLAME model"):
        properties.living_settings(scene, addon, head)
    before = snapshot()
    with pytest.raises(RuntimeError, match="The FLAME rig needs the FLAME model"):
        bpy.ops.voca.animate_from_audio()
    assert snapshot() == before and head.data.shape_keys is None


# ---------------------------------------------------------------------------- drawing

def test_living_panel_draws_every_state_within_the_sidebar(addon, head, flame_pkl, eyelids):
    living = bpy.context.scene.voca.living
    logs = [draw()]
    for name in ("blinks", "blink_source", "head_motion", "head_strength", "head_smoothness", "gaze", "look_at",
                 "rig", "flame_model", "correctives", "shape_sliders", "shape_slider_count", "seed"):
        assert ("prop", name) in logs[0], name
    assert ("operator", "voca.mark_blink", False) in logs[0]
    living.blinks = True
    logs.append(draw())
    assert properties.NO_BLINK_SHAPE in " ".join(labels(logs[-1]))
    living.blink_source = ",".join(eyelids)
    logs.append(draw())
    assert "Blink: the shape file above." in " ".join(labels(logs[-1]))
    living.blink_source, living.rig = "", True
    logs.append(draw())
    assert properties.NO_FLAME_MODEL in " ".join(labels(logs[-1]))
    living.flame_model = str(flame_pkl)
    logs.append(draw())
    assert "Blink: VOCA's blink from the FLAME model." in " ".join(labels(logs[-1]))
    living.rig = False
    add_artist_key(head, "Eyes closed (artist)")
    logs.append(draw())
    assert ("operator", "voca.mark_blink", True) in logs[-1]
    assert bpy.ops.voca.mark_blink() == {"FINISHED"}
    logs.append(draw())
    assert "Blink: your key 'Eyes closed (artist)'." in " ".join(labels(logs[-1]))
    assert ("operator", "voca.mark_blink", False) in logs[-1]
    text = [line for log in logs for line in labels(log)]
    assert max(map(len, text)) <= panel.WRAP, max(text, key=len)
    assert "…" not in " ".join(text)
    rna = living.bl_rna.properties
    for name in ("head_strength", "head_smoothness", "look_at", "shape_slider_count", "seed"):   # name + value
        assert len(rna[name].name) <= 14, name


# ---------------------------------------------------------------------------- runs from the panel

def test_living_animate_from_panel_writes_blink_and_head_motion(addon, head, paths, eyelids, shared_data):
    scene = bpy.context.scene
    living = scene.voca.living
    living.blinks, living.blink_source, living.head_motion, living.seed = True, ",".join(eyelids), True, 8
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    start, frames = scene.frame_start, scene.frame_end - scene.frame_start + 1
    curves = living_curves(head)
    # the core's tracks for the same clip and settings, at the scene's rate
    want = compute_liveliness(LivelinessSettings(blinks=True, blink_source=eyelids, head_motion=1.0, seed=8),
                              paths["wav"], writer.scene_fps(scene), frames, lw.rig._reference_co(head))
    assert want.blink.peaks_s.size > 0
    np.testing.assert_array_equal(curves["blink"][:, 0], start + np.arange(frames))
    np.testing.assert_array_equal(curves["blink"][:, 1], want.blink.weight.astype(np.float32))
    from mathutils import Euler
    turned = np.array([np.array(Euler([curves[f"rot{i}"][f, 1] for i in range(3)], head.rotation_mode)
                                .to_matrix()) for f in range(frames)])
    base = np.array(head.rotation_euler.to_matrix())                # D(t) = R · R_head(t) · R⁻¹
    np.testing.assert_allclose(turned, base @ flame_model.rodrigues(want.head.rotation) @ base.T, atol=1e-6)
    delta = sum(np.load(path) for path in eyelids)
    blink = head.data.shape_keys.key_blocks[lw.BLINK_KEY]
    co = np.empty(len(blink.data) * 3, np.float32)
    blink.data.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), lw.rig._reference_co(head) + delta, atol=1e-6)
    # the headless path (pipeline.animate with the same LivelinessSettings) writes the same curves
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    settings = properties.settings_from_scene(scene, addon, head)
    assert settings.liveliness == LivelinessSettings(blinks=True, blink_source=eyelids, head_motion=1.0, seed=8)
    pipeline.animate(scene, head, settings)
    headless = living_curves(head)
    for name, values in curves.items():
        np.testing.assert_array_equal(headless[name], values, err_msg=name)


def test_living_remove_and_plain_rerun_take_it_away(addon, head, eyelids):
    scene = bpy.context.scene
    plain = plain_state(head)
    before = snapshot()
    living = scene.voca.living
    living.blinks, living.blink_source, living.head_motion = True, ",".join(eyelids), True
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert lw.has_liveliness(head) and lw.BLINK_KEY in head.data.shape_keys.key_blocks
    assert compat.find_fcurve(head.animation_data, "delta_rotation_euler", 2) is not None
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    after = snapshot()
    assert plain_state(head) == plain and after == dict(before, range=after["range"], strips=[])
    assert head.animation_data is None or head.animation_data.action is None
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    living.blinks = living.head_motion = False       # everything off: a re-run removes the living face
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    assert not lw.has_liveliness(head) and lw.BLINK_KEY not in head.data.shape_keys.key_blocks
    assert head.animation_data is None or head.animation_data.action is None
    assert tuple(head.delta_rotation_euler) == plain[5]


def test_living_undo_after_a_run_with_everything_on(addon, head, flame_pkl, eyelids):
    scene = bpy.context.scene
    target = bpy.data.objects.new("Look here", None)
    scene.collection.objects.link(target)
    bpy.context.view_layer.update()
    from mathutils import Vector
    target.location = head.matrix_world @ Vector((0.0, 0.05, 0.6))       # in front of the face (mesh +Z)
    bpy.context.view_layer.objects.active = head
    everything_on(scene.voca.living, flame_pkl, eyelids, target)
    name, plain = head.name, plain_state(head)
    bpy.ops.ed.undo_push(message="before VOCA")      # background Blender: creates the undo stack
    before = snapshot()
    assert bpy.ops.voca.animate_from_audio("EXEC_DEFAULT", True) == {"FINISHED"}   # undo=True: one step
    lively = plain_state(bpy.data.objects[name])
    assert lively[0] and lively[4] and len(lively[1]) == 5 and lw.BLINK_KEY in lively[3]
    assert snapshot() != before
    bpy.ops.ed.undo()
    assert snapshot() == before and plain_state(bpy.data.objects[name]) == plain


# ---------------------------------------------------------------------------- Mark as blink

def test_living_mark_as_blink_keys_the_artists_key(addon, head, eyelids):
    scene = bpy.context.scene
    closed = add_artist_key(head, "Closed", sum(np.load(p) for p in eyelids))
    assert bpy.ops.voca.mark_blink() == {"FINISHED"}
    assert head.data.shape_keys[lw.MARKED_BLINK] == "Closed"
    scene.voca.living.blinks, scene.voca.living.seed = True, 8    # no source, no FLAME model: the marked key
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    key = head.data.shape_keys
    assert lw.BLINK_KEY not in key.key_blocks
    values = curve_values(key.animation_data, writer.value_path("Closed"))[:, 1]
    assert values.max() == pytest.approx(1.0) and values.min() == 0.0
    other = add_artist_key(head, "Squint")
    with pytest.raises(RuntimeError, match="The blink is keyed on 'Closed': Remove VOCA animation first"):
        bpy.ops.voca.mark_blink()
    assert key[lw.MARKED_BLINK] == "Closed"
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert head.data.shape_keys.key_blocks.get("Closed") == closed and other.name == "Squint"


def _refusal() -> str:
    try:
        bpy.ops.voca.mark_blink()
    except RuntimeError as exc:
        return str(exc)
    raise AssertionError("Mark as blink did not refuse")


def test_living_mark_as_blink_refuses_what_is_not_an_artists_key(addon, head):
    scene = bpy.context.scene
    assert "Select your closed-eye shape key" in _refusal()          # no shape keys at all
    add_artist_key(head, "Closed")
    head.active_shape_key_index = 0
    assert "the Basis cannot be" in _refusal()
    assert bpy.ops.voca.animate_from_audio() == {"FINISHED"}
    head.active_shape_key_index = list(head.data.shape_keys.key_blocks).index(
        head.data.shape_keys.key_blocks[head.data.shape_keys[writer.OWNED_KEYS][0]])
    assert "one of VOCA's own keys" in _refusal()
    empty = bpy.data.objects.new("Empty", None)
    scene.collection.objects.link(empty)
    bpy.context.view_layer.objects.active = empty
    assert "Select the head mesh." in _refusal()
    assert lw.MARKED_BLINK not in head.data.shape_keys
    with pytest.raises(InputError, match="has no shape key 'Nope'"):  # the writer's own check, called directly
        lw.mark_as_blink(head, "Nope")
