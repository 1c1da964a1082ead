"""All or nothing: a failure injected at every write step of a run leaves the scene exactly as before —
for a first run on a plain head and for a re-run over an earlier animation with an emotion — and the
same block without a failure commits. Runs on every supported Blender (see the Makefile)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402
from voca_addon.blender import compat, keyframes, transaction  # noqa: E402
from voca_addon.blender.emotion import writer as emotion_writer
from voca_addon.blender.speech import pipeline, writer
from voca_addon.core.emotion.emotions import Emotion  # noqa: E402


class Injected(RuntimeError):
    """The failure this test injects."""


def _digest(array) -> str:
    return hashlib.sha1(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


def _key_state(obj):
    key = obj.data.shape_keys if obj.type == "MESH" else None
    if key is None:
        return None
    blocks = []
    for b in key.key_blocks:
        co = np.empty(len(b.data) * 3, np.float32)
        b.data.foreach_get("co", co)
        blocks.append((b.name, _digest(co), round(b.value, 6), b.slider_min, b.slider_max, b.mute,
                       b.relative_key.name, b.interpolation))
    return blocks, transaction._props(key), _anim(key)


def _anim(idblock):
    ad = idblock.animation_data
    if ad is None or ad.action is None:
        return None
    return ad.action.name, transaction.action_digest(ad.action), compat.slot_identifier(ad), \
        transaction._props(ad.action)


def scene_state(scene) -> dict:
    """Everything a run may touch, comparable with ==."""
    return dict(
        objects={o.name: (o.type, transaction._transform(o), _key_state(o), _anim(o), transaction._active_key(o),
                          transaction._props(o, own_only=True)) for o in bpy.data.objects},
        counts={k: len(getattr(bpy.data, k)) for k in transaction.ID_COLLECTIONS if hasattr(bpy.data, k)},
        actions=sorted((a.name, transaction.action_digest(a)) for a in bpy.data.actions),
        strips=sorted((s.name, s.type, s.channel, s.frame_start, transaction._props(s).get(writer.OWNED, False),
                       tuple(getattr(s, a, None) for a in transaction._STRIP_FIELDS))
                      for s in versions.strips_all(scene)),
        editor=scene.sequence_editor is not None,
        frame_range=(scene.frame_start, scene.frame_end),
        scene_props=transaction._props(scene, own_only=True))


@pytest.fixture
def run(scene, flame, make_anim, shared_data):
    """(obj, apply(seed)) — pipeline.apply of a random animation with the emotion 'happy'."""
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    scene.render.fps = 30
    rng = np.random.default_rng(7)
    happy = Emotion("happy", (rng.standard_normal((len(flame.vertices), 3)) * 1e-3).astype(np.float32), "test")
    settings = pipeline.AnimateSettings(audio_path=str(shared_data / "audio" / "test.wav"), emotion="happy",
                                        strength=0.8, ease_frames=4)

    def apply(seed):
        result = pipeline.ComputeResult(make_anim(frames=90, seed=seed), flame, happy)
        return pipeline.apply(scene, obj, result, settings)
    return obj, apply


def _fail_on_call(monkeypatch, owner, name, call: int, after: bool):
    """Make ``owner.name`` raise :class:`Injected` on its ``call``-th call (after running, if ``after``)."""
    real, count = getattr(owner, name), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] == call and not after:
            raise Injected(f"{name} #{call}")
        out = real(*args, **kwargs)
        if count[0] == call:
            raise Injected(f"{name} #{call} (after)")
        return out
    monkeypatch.setattr(owner, name, wrapped)
    return count


STEPS = [  # (module, function, failing call, after the real call) — in the order a run takes them
    pytest.param(writer, "add_sound_strip", 1, True, marks=versions.needs_audio, id="sound-strip"),
    pytest.param(emotion_writer, "add_emotion_keys", 1, True, id="emotion-keys"),
    pytest.param(emotion_writer, "key_emotion", 1, True, id="emotion-curve"),
    pytest.param(writer, "remove_animation", 1, True, id="old-animation-removed"),
    pytest.param(writer, "new_key", 20, False, id="speech-key-20"),
    pytest.param(writer, "new_key", 51, True, id="bias-key"),
    pytest.param(compat, "new_fcurve", 30, False, id="fcurve-30"),
    pytest.param(writer, "set_keyframes", 51, True, id="last-keyframes"),
    pytest.param(writer, "set_frame_range", 1, True, id="frame-range"),
]


@pytest.mark.parametrize("rerun", [False, True], ids=["first-run", "re-run"])
@pytest.mark.parametrize("owner, name, call, after", STEPS)
def test_transaction_failure_at_each_write_step_restores_the_scene(run, scene, monkeypatch, owner, name, call,
                                                                     after, rerun):
    obj, apply = run
    if rerun:
        apply(seed=1)
    before = scene_state(scene)
    count = _fail_on_call(monkeypatch, owner, name, call, after)
    with pytest.raises(Injected):
        apply(seed=2)
    assert count[0] >= call                                   # the step was really reached
    assert scene_state(scene) == before
    monkeypatch.undo()
    apply(seed=2)                                             # and the scene still takes a run
    assert len(obj.data.shape_keys.key_blocks) == 53


@pytest.mark.parametrize("curves", ["keys", "samples"])
def test_transaction_rerun_failure_gives_back_the_earlier_animation(curves, run, scene, monkeypatch, evaluated):
    """Also when the earlier run's curves are samples (a long clip's form, here forced on a short one)."""
    if curves == "samples":
        monkeypatch.setattr(keyframes, "COMPACT_FRAMES", 10)
    obj, apply = run
    first = apply(seed=1)
    frame = first.write.frame_start + 10
    shape = evaluated(obj, scene, frame)
    action = obj.data.shape_keys.animation_data.action
    sampled = sum(len(c.sampled_points) > 0 for c in compat.action_fcurves(action))
    assert sampled == (50 if curves == "samples" else 0)
    digest = transaction.action_digest(action)
    _fail_on_call(monkeypatch, writer, "set_keyframes", 5, False)
    with pytest.raises(Injected):
        apply(seed=2)
    np.testing.assert_array_equal(evaluated(obj, scene, frame), shape)   # still plays the first run
    assert transaction.action_digest(obj.data.shape_keys.animation_data.action) == digest


def test_transaction_restores_artist_keys_order_and_removes_new_objects(scene, flame):
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    obj.shape_key_add(name="Basis", from_mix=False)
    for name in ("A", "B", "C"):
        obj.shape_key_add(name=name, from_mix=False).value = 0.5
    before = scene_state(scene)
    with pytest.raises(Injected), transaction.all_or_nothing(scene, [obj]):
        writer.remove_key_blocks(obj, ["A"])                   # removed, then re-created in its place
        obj.data.shape_keys.key_blocks["B"].value = 1.0
        writer.build_head("Other", flame.vertices, flame.faces, scene.collection)
        raise Injected("after changes")
    assert scene_state(scene) == before


def test_transaction_commits_without_failure(scene, flame):
    obj = writer.build_head("FLAME", flame.vertices, flame.faces, scene.collection)
    actions = len(bpy.data.actions)
    with transaction.all_or_nothing(scene, [obj]):
        obj.shape_key_add(name="Basis", from_mix=False)
    assert [kb.name for kb in obj.data.shape_keys.key_blocks] == ["Basis"]
    assert len(bpy.data.actions) == actions                  # no snapshot copy left behind


@versions.needs_audio
def test_transaction_gives_back_a_replaced_strips_settings_and_the_active_key(run, scene, monkeypatch):
    """Found by a trial run: a failed re-run put the add-on's earlier sound strip back without the artist's
    volume and trim, and left one of the add-on's keys active instead of the artist's."""
    obj, apply = run
    apply(seed=1)
    (strip,) = [s for s in versions.strips_all(scene) if s.get(writer.OWNED)]
    strip.volume, strip.frame_offset_start, strip.mute = 0.5, 5, True
    smile = obj.shape_key_add(name="Smile", from_mix=False)
    obj.active_shape_key_index = obj.data.shape_keys.key_blocks.find(smile.name)
    before = scene_state(scene)
    _fail_on_call(monkeypatch, writer, "set_frame_range", 1, True)     # the last write step
    with pytest.raises(Injected):
        apply(seed=2)
    assert scene_state(scene) == before
    (back,) = [s for s in versions.strips_all(scene) if s.get(writer.OWNED)]
    assert (back.volume, back.frame_offset_start, back.mute) == (0.5, 5, True)
    assert obj.active_shape_key.name == "Smile"
    monkeypatch.undo()
    apply(seed=2)                                   # a run that succeeds keeps the artist's active key too
    assert obj.active_shape_key.name == "Smile"
