"""Remove, Drive Its Keys and Transfer on one character: Drive records the rig's keys it drives and their
values, Remove takes exactly its curves and gives the values back; a Drive replaces a previous Transfer and a
Transfer a previous Drive (one all-or-nothing write), and Remove after either leaves the object as it was
before the first. The artist's own keys, curves (in the add-on's action too) and NLA stay. Real data: the
ARKit face with its 51 ARKit keys, its 68 landmark pairs and the official VOCA sequence."""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.blender import compat, keyframes  # noqa: E402
from voca_addon.blender.character import writer as character_writer  # noqa: E402
from voca_addon.blender.speech import writer  # noqa: E402
from voca_addon.core.character import keyfiles  # noqa: E402

from tests.blender.character_fixtures import addon, face  # noqa: E402,F401  (fixtures)

ARTIST_VALUES = {"mouthSmileLeft": 0.25, "jawOpen": 0.1}      # what the artist set before any VOCA run


@pytest.fixture
def rig(face, shared_data):
    """The fitted ARKit face (active) with its ARKit keys at the artist's values, an extra key of the artist's
    ("Smirk", not ARKit-named: never driven) animated by the artist's NLA track."""
    obj, mesh = face
    keys = keyfiles.read_key_folder(shared_data / "arkit" / "ARKit_blendshapes", mesh)
    character_writer.add_rig_keys(obj, keys.rest, keys.names, keys.deltas)
    character_writer.add_rig_keys(obj, keys.rest, ["Smirk"], keys.deltas[:1] * 0.5)
    key = obj.data.shape_keys
    for name, value in ARTIST_VALUES.items():
        key.key_blocks[name].value = value
    smirk = key.key_blocks["Smirk"]
    smirk.keyframe_insert("value", frame=1)
    take = key.animation_data.action
    key.animation_data.nla_tracks.new().strips.new("take", 1, take)
    key.animation_data.action = None                   # pushed to the NLA: no action assigned
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    return obj


def state(obj) -> dict:
    """What Remove must give back: every key (name, value, mute, sliders), the Key's custom properties,
    the assigned action and its curves, the NLA."""
    key = obj.data.shape_keys
    anim_data = key.animation_data
    action = anim_data.action if anim_data is not None else None
    return dict(keys=[(b.name, round(b.value, 6), b.mute, b.slider_min, b.slider_max) for b in key.key_blocks],
                props=sorted(key.keys()), action=action.name if action is not None else None,
                curves=sorted(fc.data_path for fc in compat.action_fcurves(action)) if action is not None else [],
                nla=[(s.name, s.action.name) for s in compat.nla_strips(anim_data)])


def value(obj, name) -> float:
    return obj.data.shape_keys.key_blocks[name].value


def curve_names(obj) -> set:
    action = obj.data.shape_keys.animation_data.action
    return {fc.data_path.split('"')[1] for fc in compat.action_fcurves(action)}


def remove_reason():
    from voca_addon.blender.speech.operators import VOCA_OT_remove_animation
    return VOCA_OT_remove_animation.disabled_reason(bpy.context)


def test_character_remove_after_drive_gives_the_rigs_keys_back(rig):
    before = state(rig)
    assert remove_reason() == "'Face' has no VOCA animation."
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    key = rig.data.shape_keys
    recorded = writer.driven_keys(key)
    assert len(recorded) == 51 and recorded["mouthSmileLeft"] == pytest.approx(0.25)
    assert recorded["jawOpen"] == pytest.approx(0.1) and "Smirk" not in recorded
    assert len(curve_names(rig)) == 51 and remove_reason() is None
    bpy.context.scene.frame_set(bpy.context.scene.frame_start + 40)
    assert value(rig, "mouthSmileLeft") != pytest.approx(0.25)   # driven now
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert state(rig) == before and writer.DRIVEN_KEYS not in key
    assert value(rig, "mouthSmileLeft") == pytest.approx(0.25)
    assert not [a for a in bpy.data.actions if a.get(writer.OWNED)]
    assert remove_reason() == "'Face' has no VOCA animation."


def test_character_remove_after_drive_keeps_the_artists_curve_in_the_addons_action(rig):
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    action = rig.data.shape_keys.animation_data.action
    rig.data.shape_keys.key_blocks["Smirk"].keyframe_insert("value", frame=7)    # the artist keys their own
    assert "Smirk" in curve_names(rig) and action.get(writer.OWNED)
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert rig.data.shape_keys.animation_data.action == action and curve_names(rig) == {"Smirk"}
    assert value(rig, "mouthSmileLeft") == pytest.approx(0.25) and value(rig, "jawOpen") == pytest.approx(0.1)
    assert len(rig.data.shape_keys.animation_data.nla_tracks) == 1


def test_character_drive_replaces_a_transfer_and_remove_gives_all_back(rig):
    before = state(rig)
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    transferred = set(rig.data.shape_keys[writer.OWNED_KEYS])
    assert "VOCA_bias" in transferred
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    key = rig.data.shape_keys
    assert not transferred.intersection(b.name for b in key.key_blocks)        # the transfer is gone
    assert writer.OWNED_KEYS not in key and len(curve_names(rig)) == 51        # only the driven curves
    assert writer.driven_keys(key)["mouthSmileLeft"] == pytest.approx(0.25)
    assert sum(a.get(writer.OWNED, False) for a in bpy.data.actions) == 1
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert state(rig) == before


def test_character_transfer_replaces_a_drive_and_remove_gives_all_back(rig):
    before = state(rig)
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    key = rig.data.shape_keys
    assert writer.DRIVEN_KEYS not in key and value(rig, "mouthSmileLeft") == pytest.approx(0.25)
    assert not {b.name for b in key.key_blocks if not b.name.startswith("VOCA_")} & curve_names(rig)
    assert sum(a.get(writer.OWNED, False) for a in bpy.data.actions) == 1
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert state(rig) == before


def test_character_drive_failing_after_it_took_the_transfer_changes_nothing(rig, monkeypatch):
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    after_transfer = state(rig)

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected")
    monkeypatch.setattr(writer, "write_action", broken)          # after the transfer was taken away
    with pytest.raises(RuntimeError, match="injected"):
        bpy.ops.voca.character_drive()
    assert state(rig) == after_transfer


def test_character_rerun_of_drive_keeps_the_values_from_before_the_first(rig):
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    bpy.context.scene.frame_set(bpy.context.scene.frame_start + 40)      # the keys hold driven values now
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    assert writer.driven_keys(rig.data.shape_keys)["mouthSmileLeft"] == pytest.approx(0.25)
    assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert value(rig, "mouthSmileLeft") == pytest.approx(0.25)
    assert compat.find_fcurve(rig.data.shape_keys.animation_data, keyframes.value_path("jawOpen")) is None


def test_character_drive_refuses_over_the_artists_keyframes_in_the_addons_action(rig):
    """The artist keyed jawOpen by hand while the Transfer's action was assigned (it went into the add-on's
    action): Drive, which keys jawOpen, is refused naming it, before anything changes (it deleted the curve)."""
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    key = rig.data.shape_keys
    key.key_blocks["jawOpen"].value = 0.3
    key.key_blocks["jawOpen"].keyframe_insert("value", frame=12)
    before = state(rig)
    mine = keyframes.curve_points(compat.find_fcurve(key.animation_data, keyframes.value_path("jawOpen"))).copy()
    with pytest.raises(RuntimeError, match="'jawOpen' of 'Face' holds keyframes of yours in the add-on's action"):
        bpy.ops.voca.character_drive()
    assert state(rig) == before
    after = keyframes.curve_points(compat.find_fcurve(key.animation_data, keyframes.value_path("jawOpen")))
    assert (after == mine).all()
