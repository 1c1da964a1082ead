"""Two heads in one scene and heads linked from a library: what Animate and Remove may touch.

Found by a trial run (an artist's dialogue scene): animating a second head removed the first head's sound
strip, and Remove on the second took it too; a head linked from a library file was animated, and the work was
gone on save (a linked ID is read back from its library on open); a library override failed half-way. Now
each head has its own strip, and linked or overridden meshes are refused before anything runs."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import versions  # noqa: E402
from tests.blender.test_articulation import addon  # noqa: E402,F401  (fixture)
from voca_addon.blender import transaction  # noqa: E402
from voca_addon.blender.speech import operators, pipeline, writer  # noqa: E402


@pytest.fixture
def animate(addon, scene, make_anim, flame, shared_data):
    """apply(head, audio name, start) — Animate's write of a random animation onto ``head``."""
    def apply(head, audio="test.wav", start=1, seed=1):
        settings = pipeline.AnimateSettings(audio_path=str(shared_data / "audio" / audio), start_frame=start)
        return pipeline.apply(scene, head, pipeline.ComputeResult(make_anim(frames=40, seed=seed), flame), settings)
    return apply


def owned(scene):
    return sorted((s.get(writer.STRIP_HEAD), s.frame_start) for s in versions.strips_all(scene) if s.get(writer.OWNED))


@versions.needs_audio
def test_a_second_head_keeps_the_first_heads_sound_and_remove_takes_only_its_own(scene, flame, animate):
    hero = writer.build_head("Hero", flame.vertices, flame.faces, scene.collection)
    animate(hero, "test_sentence.wav", start=1)
    sidekick = hero.copy()                                  # Shift+D: the custom properties come along
    sidekick.data = hero.data.copy()
    sidekick.name = "Sidekick"
    scene.collection.objects.link(sidekick)
    animate(sidekick, "test.wav", start=300)
    assert owned(scene) == [("Hero", 1), ("Sidekick", 300)]
    animate(sidekick, "test.wav", start=200, seed=2)       # a re-run replaces the head's own strip only
    assert owned(scene) == [("Hero", 1), ("Sidekick", 200)]
    hero.name = "Lead"                                      # renamed after Animate: its strip is still its own
    animate(hero, "test_sentence.wav", start=5, seed=3)
    assert owned(scene) == [("Lead", 5), ("Sidekick", 200)]

    with bpy.context.temp_override(object=sidekick, active_object=sidekick, selected_objects=[sidekick]):
        assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert owned(scene) == [("Lead", 5)]
    assert sum(k.name.startswith("VOCA_") for k in hero.data.shape_keys.key_blocks) == 51


def test_a_failing_remove_changes_nothing(scene, flame, animate, monkeypatch):
    head = writer.build_head("Hero", flame.vertices, flame.faces, scene.collection)
    animate(head)
    keys = [k.name for k in head.data.shape_keys.key_blocks]
    strips = owned(scene)
    from voca_addon.blender.articulation import operators as articulation_operators
    scene.timeline_markers.new("severe", frame=12)                        # a word marker the add-on made
    scene[articulation_operators.WORD_MARKERS] = ['["Hero", 12, "severe"]']

    def broken(obj, *args, **kwargs):
        raise RuntimeError("injected after the corrections were removed")
    monkeypatch.setattr(writer, "remove_animation", broken)
    with bpy.context.temp_override(object=head, active_object=head, selected_objects=[head]):
        with pytest.raises(RuntimeError):           # reported as an internal error (its log names it)
            bpy.ops.voca.remove_animation()
    assert [k.name for k in head.data.shape_keys.key_blocks] == keys and owned(scene) == strips
    assert [(m.name, m.frame) for m in scene.timeline_markers] == [("severe", 12)]     # removed, then put back
    assert list(scene[articulation_operators.WORD_MARKERS]) == ['["Hero", 12, "severe"]']


@pytest.fixture
def library(tmp_path, scene, flame, animate):
    """A library file holding an animated head 'Hero' (written without touching the open file)."""
    head = writer.build_head("Hero", flame.vertices, flame.faces, scene.collection)
    animate(head)
    path = tmp_path / "characters.blend"
    bpy.data.libraries.write(str(path), {head})
    bpy.data.objects.remove(head)
    return path


def _link(path, scene):
    with bpy.data.libraries.load(str(path), link=True) as (_src, dst):
        dst.objects = ["Hero"]
    (obj,) = dst.objects
    scene.collection.objects.link(obj)
    return obj


def test_a_linked_head_is_refused_before_anything_runs(scene, library):
    obj = _link(library, scene)
    problem = pipeline.target_problem(obj)
    assert problem and "linked from" in problem and "Make Local" in problem and str(library) in problem
    with bpy.context.temp_override(object=obj, active_object=obj, selected_objects=[obj]):
        assert operators.VOCA_OT_remove_animation.disabled_reason(bpy.context) == problem
        assert not bpy.ops.voca.remove_animation.poll()
    before = [k.name for k in obj.data.shape_keys.key_blocks]
    assert before and obj.data.shape_keys.library is not None        # the library's animation, untouched
    from voca_addon.blender.articulation import checks, writer as articulation_writer
    store = obj.data.shape_keys[articulation_writer.STORE]           # the knobs refuse it too, by the same line
    with pytest.raises(Exception, match="linked from"):
        checks.check_head(obj, store, len(obj.data.vertices))


def test_a_library_override_is_refused_and_a_local_copy_is_not(scene, library):
    obj = _link(library, scene)
    override = obj.override_create(remap_local_usages=True)
    problem = pipeline.target_problem(override)
    assert problem and ("linked from" in problem or "library override" in problem), problem
    override.make_local()
    override.data.make_local()
    override.data.shape_keys.make_local() if override.data.shape_keys.library is not None else None
    assert transaction.linked_problem(override) is None
    assert pipeline.target_problem(override) is None


def test_remove_gives_back_the_artists_frame_range_unless_they_changed_it(scene, flame, animate):
    """Found by a trial run: after Remove the shot kept the clip's range (1001–1120), not the artist's 1001–1240."""
    head = writer.build_head("Hero", flame.vertices, flame.faces, scene.collection)
    scene.frame_start, scene.frame_end = 1001, 1240
    animate(head, start=1001)
    clip = (scene.frame_start, scene.frame_end)
    assert clip[0] == 1001 and 1001 < clip[1] < 1240
    animate(head, start=1001, seed=2)                   # a re-run keeps the artist's range on record
    assert (scene.frame_start, scene.frame_end) == clip
    with bpy.context.temp_override(object=head, active_object=head, selected_objects=[head]):
        assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end) == (1001, 1240) and writer.FRAME_RANGE not in scene

    animate(head, start=1)
    scene.frame_end = 500                               # the artist's own range after Animate: theirs to keep
    with bpy.context.temp_override(object=head, active_object=head, selected_objects=[head]):
        assert bpy.ops.voca.remove_animation() == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end) == (1, 500)


def test_the_frame_range_comes_back_with_the_last_heads_remove(scene, flame, animate):
    """Found in review: in a dialogue, Remove on the first head gave back the artist's range while the second
    head's clip still needed the range Animate had set for it."""
    hero = writer.build_head("Hero", flame.vertices, flame.faces, scene.collection)
    side = writer.build_head("Side", flame.vertices, flame.faces, scene.collection)
    scene.frame_start, scene.frame_end = 1, 600
    animate(hero, start=1)
    animate(side, start=300)
    clip = (scene.frame_start, scene.frame_end)
    assert clip[0] == 300
    for head, expected in ((hero, clip), (side, (1, 600))):
        with bpy.context.temp_override(object=head, active_object=head, selected_objects=[head]):
            assert bpy.ops.voca.remove_animation() == {"FINISHED"}
        assert (scene.frame_start, scene.frame_end) == expected
