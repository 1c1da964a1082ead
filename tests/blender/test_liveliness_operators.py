"""The living face through the add-on's pipeline and operators: Animate with everything on, then Remove VOCA
animation takes all of it away (rig, blink, head and eye motion), and undo brings it back."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_operators import addon, head, paths, snapshot  # noqa: E402,F401
from tests.core.flame.flame_format import write_flame_format_model  # noqa: E402
from voca_addon.blender.liveliness import writer as liveliness_writer, rig  # noqa: E402
from voca_addon.blender.speech import pipeline
from voca_addon.core.living.liveliness import LivelinessSettings  # noqa: E402


@pytest.fixture(scope="module")
def flame_pkl(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_flame_format_model(path, shared_data, seed=11)
    return path


def _lively(paths, flame_pkl, shared_data, **extra):
    eyelids = tuple(str(shared_data / "flame" / f) for f in ("l_eyelid.npy", "r_eyelid.npy"))
    live = LivelinessSettings(blinks=True, blink_source=eyelids, head_motion=1.0, gaze=True,
                              flame_model=str(flame_pkl), rig=True, shape_sliders=2, **extra)
    return pipeline.AnimateSettings(audio_path=str(paths["wav"]), voca_path=str(paths["voca"]),
                                    deepspeech_path=str(paths["deepspeech"]), template_path=str(paths["template"]),
                                    liveliness=live)


def _lively_state(obj):
    key = obj.data.shape_keys
    return (rig.find_rig(obj) is not None, [g.name for g in obj.vertex_groups], [m.name for m in obj.modifiers],
            sorted(k.name for k in key.key_blocks) if key else None, liveliness_writer.has_liveliness(obj))


def test_liveliness_remove_operator_and_undo(addon, head, paths, flame_pkl, shared_data):
    scene = bpy.context.scene
    before = snapshot()
    report = pipeline.animate(scene, head, _lively(paths, flame_pkl, shared_data))
    assert "FLAME rig" in report.summary() and "blink on 'VOCA blink'" in report.summary()
    lively = _lively_state(head)
    assert lively[0] and len(lively[1]) == 5 and lively[4]
    name = head.name
    bpy.ops.ed.undo_push(message="before remove")       # background Blender: creates the undo stack
    assert bpy.ops.voca.remove_animation("EXEC_DEFAULT", True) == {"FINISHED"}
    head = bpy.data.objects[name]
    assert _lively_state(head) == (False, [], [], None, False)
    after = snapshot()
    assert after == dict(before, range=after["range"], strips=[])
    bpy.ops.ed.undo()
    head = bpy.data.objects[name]
    assert _lively_state(head) == lively


def test_liveliness_pipeline_refuses_before_any_change(addon, head, paths, flame_pkl, shared_data):
    from voca_addon.core.errors import InputError
    scene = bpy.context.scene
    before = snapshot()
    settings = _lively(paths, flame_pkl, shared_data)
    bad = pipeline.AnimateSettings(**{**settings.__dict__,
                                      "liveliness": LivelinessSettings(blinks=True, head_motion=1.0)})
    with pytest.raises(InputError, match="Blinks need a blink shape"):
        pipeline.animate(scene, head, bad)
    assert snapshot() == before
    head.animation_data_create().action = bpy.data.actions.new("artist")
    no_rig = pipeline.AnimateSettings(**{**settings.__dict__, "liveliness": LivelinessSettings(head_motion=1.0)})
    middle = snapshot()
    with pytest.raises(InputError, match="which VOCA did not create"):
        pipeline.animate(scene, head, no_rig)
    assert snapshot() == middle and np.all(np.array(head.delta_rotation_euler) == 0)
