"""A FLAME head animated with its lips closing (issue 18) as the Character source: the closure keys are read
back as the animation's corrections, kept apart from VOCA's rows; Transfer writes them on the character as
keys of their own, Drive's solve reproduces them. Muted (closures off on the head), they count 0.
The phones come from an alignment file (the issue's p/b/m times); the models are the random-weight fixtures."""
from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender.test_character_from_head import (START, TOLERANCE, addon, animate, assert_plays,  # noqa: E402,F401
                                                    paths, rig)
from voca_addon.blender.character import source as character_source  # noqa: E402
from voca_addon.core.character import transfer  # noqa: E402

PHONES = [("M", 1.11, 1.18, "myopia"), ("P", 1.44, 1.54, "myopia"), ("B", 2.02, 2.06, "contributed")]


def test_character_from_a_head_with_closures_keeps_them_apart(rig, tmp_path, evaluated):  # noqa: F811
    head, face, mesh, fit = rig
    alignment = tmp_path / "phones.json"
    alignment.write_text(json.dumps([{"phone": p, "start": a, "end": b, "word": w} for p, a, b, w in PHONES]))
    bpy.context.scene.voca_phones.alignment_path = str(alignment)
    head.voca_articulation.closures = True
    animate(head)
    motion = character_source.head_animation(head, bpy.context.scene).animation
    c = motion.corrections
    assert c is not None and "voca_lips_close" in c.names and not set(c.names) & set(motion.names)
    assert np.abs(c.weights).max() > 0
    played = motion.vertices()
    for i in range(0, motion.num_frames, 9):                 # the reading is what the head plays
        np.testing.assert_allclose(evaluated(head, bpy.context.scene, START + i), played[i], atol=TOLERANCE)
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    names = {b.name for b in face.data.shape_keys.key_blocks}
    assert set(c.names) <= names
    expected = transfer.transfer(motion, fit, mesh.vertices, mesh.faces)
    closing = int(np.argmax(c.weights[:, c.names.index("voca_lips_close")]))
    assert_plays(face, expected, [0, closing, motion.num_frames - 1], evaluated)

    head.voca_articulation.closures = False                  # muted on the head: they count 0
    muted = character_source.head_animation(head, bpy.context.scene).animation
    assert muted.corrections is None or not np.abs(muted.corrections.weights).any()
    np.testing.assert_allclose(muted.vertices([closing])[0], motion.exact().vertices([closing])[0], atol=TOLERANCE)
