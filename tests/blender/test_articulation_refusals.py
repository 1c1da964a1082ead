"""What the knobs, Re-apply and Import alignment refuse, and what of the artist's they leave, on the official clip.

Found by a new-user trial: a refused Import alignment still set the scene's alignment and the head's track; a
knob unmuted a correction key the artist had muted and re-created a correction curve the artist had deleted;
a knob on a head sharing VOCA's action (Shift+D, *Duplicate Data › Action* off) rewrote the other head's curves;
with VOCA's action pushed down to the NLA or the mesh's vertex count changed, a knob printed a raw traceback
and Re-apply said "internal error". Each refusal is one line, before anything is written: the tests compare every
curve, mute, key shape, stored property and the scene's alignment before and after.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_articulation import (TOLERANCE, addon, evaluated_all, head, knobs, official,  # noqa: E402,F401
                                             track)
from voca_addon.blender import compat, keyframes  # noqa: E402
from voca_addon.blender.articulation import writer as articulation_writer  # noqa: E402
from voca_addon.blender.speech import writer  # noqa: E402
from voca_addon.core.articulation import ArticulationSettings, apply_controls  # noqa: E402
from voca_addon.core.phonemes import PhoneTrack, write_alignment  # noqa: E402


def snapshot(obj) -> dict:
    """Everything a refusal must leave: every action's curves (points, interpolation, mute), the NLA, the keys
    (name, mute, range, value, shape), the Key's stored properties, the knobs, the scene's alignment."""
    scene = bpy.context.scene
    scene.frame_set(scene.frame_current)                 # the keys' values as the animation sets them
    key = obj.data.shape_keys
    state = {"alignment": bpy.context.scene.voca_phones.alignment_path}
    for action in bpy.data.actions:
        for fc in compat.action_fcurves(action):
            state[(action.name, fc.data_path, fc.array_index)] = (
                keyframes.curve_points(fc).tobytes(), fc.mute, tuple(p.interpolation for p in fc.keyframe_points))
    ad = key.animation_data
    state["action"] = ad.action.name if ad.action else None
    state["nla"] = [(t.name, [(s.name, s.action.name) for s in t.strips]) for t in ad.nla_tracks]
    state["blocks"] = [(b.name, b.mute, b.slider_min, b.slider_max, b.value, writer.key_co(b).tobytes())
                       for b in key.key_blocks]
    for name in key.keys():
        value = key[name]
        state[name] = (json.dumps(value.to_dict(), sort_keys=True, default=list) if hasattr(value, "to_dict")
                       else np.asarray(value).tobytes() if hasattr(value, "to_list") else value)
    state["knobs"] = tuple(getattr(obj.voca_articulation, n) for n in
                           ("closures", "closure_strength", "speech_strength", "mouth_close", "smoothing_ms"))
    return state


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k] != after[k]]
    if "blocks" in changed:
        changed += [(a[:5], b[:5]) for a, b in zip(before["blocks"], after["blocks"]) if a != b][:3]
    assert not changed, changed


def fcurve(obj, name: str):
    key = obj.data.shape_keys
    return compat.find_fcurve(key.animation_data, keyframes.value_path(name))


# ---------------------------------------------------------------------------- the situations refused

def linked_duplicate(head):
    twin = head.copy()                                   # Alt+D: the same mesh, shape keys and curves
    bpy.context.scene.collection.objects.link(twin)
    return twin, ["shares its mesh and shape keys with 'FLAME head'", "Make Single User"]


def shared_action(head):
    twin = head.copy()                                   # Shift+D with Duplicate Data › Action off: own mesh and
    twin.data = head.data.copy()                         # Key, VOCA's action shared
    bpy.context.scene.collection.objects.link(twin)
    assert twin.data.shape_keys.animation_data.action == head.data.shape_keys.animation_data.action
    return twin, ["(action 'VOCA_FLAME head') is also used by 'FLAME head'", "single-user"]


def pushed_to_nla(head):
    ad = head.data.shape_keys.animation_data
    nla = ad.nla_tracks.new()
    compat.new_nla_strip(nla, "take 1", 1, ad.action)
    ad.action = None
    return head, ["VOCA's action 'VOCA_FLAME head' is not the active action", "make VOCA's action active again"]


def vertex_deleted(head):
    import bmesh
    mesh = bmesh.new()
    mesh.from_mesh(head.data)
    mesh.verts.ensure_lookup_table()
    bmesh.ops.delete(mesh, geom=[mesh.verts[5000]], context="VERTS")
    mesh.to_mesh(head.data)
    mesh.free()
    assert len(head.data.shape_keys.key_blocks[0].data) == 5022
    return head, ["has 5022 vertices, the animation was made for 5023: run Animate from audio again"]


SITUATIONS = [linked_duplicate, shared_action, pushed_to_nla, vertex_deleted]


@pytest.mark.parametrize("situation", SITUATIONS[1:], ids=lambda f: f.__name__)
def test_a_refused_knob_says_why_in_one_line_and_changes_nothing(head, situation, capfd):
    obj, words = situation(head)
    before, others = snapshot(obj), snapshot(head)
    capfd.readouterr()
    knobs(obj, speech_strength=1.4)                      # the update callback
    knobs(obj, closure_strength=0.6)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    status = obj.voca_articulation.status
    assert all(w in status for w in words) and "\n" not in status and "internal error" not in status, status
    after = snapshot(obj)
    after["knobs"] = before["knobs"]                     # the knobs themselves moved; nothing they drive
    assert_same(before, after)
    assert_same(others, {**snapshot(head), "knobs": others["knobs"]})
    bpy.context.view_layer.objects.active = obj
    with pytest.raises(RuntimeError, match="Error: ") as refused:
        bpy.ops.voca.reapply_articulation()
    assert words[0] in str(refused.value) and "internal error" not in str(refused.value)
    assert_same(before, {**snapshot(obj), "knobs": before["knobs"]})


def test_vocas_action_made_active_again_after_the_nla_push_works(head, official, track):
    """The refusal's advice: VOCA's action active again (its NLA strip stays, two users of one head: not shared)."""
    obj, _ = pushed_to_nla(head)
    ad = obj.data.shape_keys.animation_data
    ad.action = ad.nla_tracks[0].strips[0].action
    if compat.SLOTTED_ACTIONS:
        ad.action_slot = ad.action.slots[0]
    assert ad.action.users == 2
    knobs(obj, speech_strength=0.7)
    assert obj.voca_articulation.status == ""
    expected = apply_controls(official[0], track, ArticulationSettings(speech_strength=0.7)).vertices()
    ad.nla_tracks[0].mute = True                         # the strip below would add to the active action
    assert np.abs(evaluated_all(obj) - expected).max() <= TOLERANCE


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda f: f.__name__)
def test_a_refused_import_alignment_changes_nothing(head, track, situation, tmp_path):
    obj, words = situation(head)
    bpy.context.view_layer.objects.active = obj
    bpy.context.scene.voca_phones.alignment_path = "/tmp/earlier.TextGrid"
    before = snapshot(obj)
    fewer = write_alignment(PhoneTrack(track.phones[:2], "json"), tmp_path / "fewer.json")
    with pytest.raises(RuntimeError, match="Alignment not imported: ") as refused:
        bpy.ops.voca.import_alignment(filepath=str(fewer))
    message = str(refused.value)
    assert words[0] in message and "knobs would" not in message, message
    assert bpy.context.scene.voca_phones.alignment_path == "/tmp/earlier.TextGrid"
    assert articulation_writer.stored_track(obj) == track
    assert_same(before, snapshot(obj))


def test_an_unexpected_error_in_a_knob_is_one_line_with_a_log(head, monkeypatch, tmp_path, capfd):
    def broken(*_args, **_kw):
        raise ZeroDivisionError("boom")
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(articulation_writer, "reapply", broken)
    capfd.readouterr()
    knobs(head, mouth_close=0.2)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    status = head.voca_articulation.status
    assert status.startswith("VOCA: internal error (ZeroDivisionError: boom)") and str(tmp_path) in status, status
    assert len(list(tmp_path.glob("voca-error-*.log"))) == 1


# ---------------------------------------------------------------------------- the artist's mutes and deletions

def test_an_artists_mute_of_a_correction_key_stays_and_is_named(head):
    blocks = head.data.shape_keys.key_blocks
    blocks["voca_lips_tuck"].mute = True                 # the artist's
    knobs(head, speech_strength=1.3)
    assert blocks["voca_lips_tuck"].mute and not blocks["voca_lips_close"].mute
    assert "'voca_lips_tuck' muted as you muted it" in head.voca_articulation.status
    knobs(head, closures=False)                          # the add-on mutes the other one: its own mute
    assert blocks["voca_lips_tuck"].mute and blocks["voca_lips_close"].mute
    knobs(head, closures=True)
    assert blocks["voca_lips_tuck"].mute and not blocks["voca_lips_close"].mute
    bpy.context.view_layer.objects.active = head
    assert bpy.ops.voca.reapply_articulation() == {"FINISHED"}       # Re-apply keeps the artist's mute too
    assert blocks["voca_lips_tuck"].mute
    blocks["voca_lips_tuck"].mute = False                # unmuted by the artist: closures again, no note
    knobs(head, closure_strength=0.8)
    assert not blocks["voca_lips_tuck"].mute and head.voca_articulation.status == ""


def test_closures_back_on_unmute_the_addons_mutes_also_from_an_older_file(head):
    blocks = head.data.shape_keys.key_blocks
    knobs(head, closures=False)
    assert blocks["voca_lips_tuck"].mute and blocks["voca_lips_close"].mute
    del head.data.shape_keys[articulation_writer.STORE]["muted"]      # stored before the mutes were recorded
    knobs(head, closures=True)
    assert not blocks["voca_lips_tuck"].mute and not blocks["voca_lips_close"].mute
    assert head.voca_articulation.status == ""


def test_a_deleted_correction_curve_or_key_stays_deleted_until_reapply(head, official, track):
    key = head.data.shape_keys
    close_before = keyframes.curve_points(fcurve(head, "voca_lips_close")).copy()
    assert compat.remove_fcurve(key.animation_data.action, fcurve(head, "voca_lips_tuck"))
    knobs(head, closure_strength=0.9)
    assert fcurve(head, "voca_lips_tuck") is None
    status = head.voca_articulation.status
    assert "'voca_lips_tuck' (deleted)" in status and "Re-apply brings deleted ones back" in status, status
    assert not np.array_equal(keyframes.curve_points(fcurve(head, "voca_lips_close")), close_before)
    speech = str(key[articulation_writer.STORE]["keys"][4])            # a speech knob: VOCA's deleted curve too
    assert compat.remove_fcurve(key.animation_data.action, fcurve(head, speech))
    knobs(head, speech_strength=1.2)
    assert fcurve(head, "voca_lips_tuck") is None and fcurve(head, speech) is None
    assert f"'{speech}' (deleted)" in head.voca_articulation.status
    bpy.context.view_layer.objects.active = head
    assert bpy.ops.voca.reapply_articulation() == {"FINISHED"}             # brings both back
    assert fcurve(head, "voca_lips_tuck") is not None and fcurve(head, speech) is not None
    assert head.voca_articulation.status == ""
    settings = ArticulationSettings(closure_strength=0.9, speech_strength=1.2)
    assert np.abs(evaluated_all(head) - apply_controls(official[0], track, settings).vertices()).max() <= TOLERANCE

    head.shape_key_remove(key.key_blocks["voca_lips_close"])          # the key itself
    knobs(head, mouth_close=0.1)
    assert key.key_blocks.get("voca_lips_close") is None
    assert "'voca_lips_close' (deleted)" in head.voca_articulation.status
    assert bpy.ops.voca.reapply_articulation() == {"FINISHED"}
    assert key.key_blocks.get("voca_lips_close") is not None
    assert [str(n) for n in key[articulation_writer.CORRECTION_KEYS]] == ["voca_lips_close", "voca_lips_tuck"]
