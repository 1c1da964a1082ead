"""Guess Landmarks (``voca.character_guess_landmarks``) on the ARKit reference face: 68 add-on-owned empties on
the vertices :func:`~voca_addon.core.character.guess.guess_landmarks` picks, a Fit from them (and from one
dragged), re-runs replace them, an artist's ``iBUG_<k>`` empties and bad targets are refused with the scene
untouched, one undo step removes a guess."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from mathutils import Vector  # noqa: E402
from voca_addon.blender.character import (data as character_io, landmarks as character_landmarks,
                                          panel as character_panel, writer as character_writer)  # noqa: E402
from voca_addon.blender.character import operators as ops  # noqa: E402
from voca_addon.blender import jobs
from voca_addon.blender.speech import writer
from voca_addon.core.character import guess as guessing, landmarks as lm  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402

from tests.blender.test_character_jobs import drive  # noqa: E402
from tests.blender.test_operators import draw  # noqa: E402
from tests.blender.character_fixtures import addon  # noqa: E402,F401  (fixture)


@pytest.fixture
def face(addon, shared_data):
    """The ARKit face as the target, rotated, scaled and moved in the scene (world ≠ mesh-local)."""
    mesh = meshio.read_mesh(shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj")
    obj = character_writer.build_target("Face", mesh.vertices, mesh.faces, addon.collection)
    obj.location, obj.scale = (0.3, -0.2, 1.1), (2.0, 2.0, 2.0)
    obj.rotation_euler = (0.4, -0.7, 1.9)
    bpy.context.view_layer.update()
    addon.voca_character.target = obj
    return obj, mesh


def placed(scene) -> dict:
    """k → the add-on's empty iBUG_<k> in the scene."""
    owned, _ = character_landmarks.landmark_empties(scene)
    return {int(character_io.EMPTY_NAME.match(o.name).group(1)): o for o in owned}


def snapshot(scene) -> dict:
    return dict(objects=sorted(o.name for o in bpy.data.objects),
                collections=sorted(c.name for c in bpy.data.collections),
                landmarks=scene.voca_character.landmarks,
                where={o.name: tuple(round(x, 9) for x in o.matrix_world.translation) for o in scene.objects})


def test_character_guess_places_the_guessed_vertices_and_a_fit_from_them_works(face, flame):
    obj, mesh = face
    scene = bpy.context.scene
    log = draw(character_panel.VOCA_PT_character)
    assert ("operator", "voca.character_guess_landmarks", True) in log
    status, reports = drive(jobs.JobRun(ops.VOCA_OT_character_guess_landmarks, bpy.context))   # the worker path
    assert status == "FINISHED" and reports[-1][0] == {"INFO"}
    line = reports[-1][1]
    assert "68 landmark empties" in line and "AUTOMATIC FIRST GUESS" in line and "before Fit" in line
    assert "mm from the mesh" in line and "(metres)" in line
    vertices, triangles = character_io.mesh_arrays(obj)           # what the operator reads: float32 storage
    assert np.abs(vertices - mesh.vertices).max() < 1e-6 and len(triangles) == len(mesh.faces)
    want = guessing.guess_landmarks(flame.vertices, flame.faces, vertices, triangles)   # the same numbers
    empties = placed(scene)
    assert [empties[k].name for k in sorted(empties)] == [f"iBUG_{k}" for k in range(68)]
    world = np.array([empties[k].matrix_world.translation for k in range(68)])
    rotation = np.array(obj.matrix_world.to_3x3().normalized())
    assert abs(rotation[0, 0] - 1) > 0.1 and np.allclose(obj.matrix_world.to_scale(), 2.0)       # not identity
    on_vertices = [obj.matrix_world @ Vector(mesh.vertices[i].tolist()) for i in want.target_ids]   # mathutils
    np.testing.assert_allclose(world, np.array(on_vertices), atol=1e-6)
    np.testing.assert_allclose(world, character_landmarks.world_points(obj, want.target_ids), atol=1e-6)
    collection = bpy.data.collections["VOCA landmarks Face"]
    assert collection.get(writer.OWNED) and set(collection.objects) == set(empties.values())
    assert all(e.get(writer.OWNED) and 0 < e.empty_display_size < 0.01 for e in empties.values())  # head ≈ 0.5 m
    assert scene.voca_character.landmarks == "EMPTIES"
    flame_ids, target_ids = character_io.pairs_from_empties(obj, scene.objects)      # what Fit reads
    order = np.argsort([list(lm.FLAME_IBUG68).index(f) for f in flame_ids])
    np.testing.assert_array_equal(target_ids[order], want.target_ids)
    _, (plan_flame, plan_target), _ = ops.VOCA_OT_character_fit.prepare(bpy.context)   # the pairs Fit uses
    assert sorted(zip(plan_flame, plan_target)) == sorted(zip(lm.FLAME_IBUG68, want.target_ids))

    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    res = character_io.residuals(obj)
    assert res["landmarks_registered"]["mean"] < 0.5 and res["surface"]["mean"] < 1.0

    moved = int(want.target_ids[30]) + 1                    # drag the nose tip's empty near another vertex
    empties[30].location = obj.matrix_world @ Vector(mesh.vertices[moved].tolist()) + Vector((0.0, -1e-4, 0.0))
    _, (plan_flame, plan_target), _ = ops.VOCA_OT_character_fit.prepare(bpy.context)   # no update in between
    assert plan_target[list(plan_flame).index(lm.FLAME_IBUG68[30])] == moved


def test_character_guess_rerun_replaces_its_own_empties_and_undoes_in_one_step(face):
    scene = bpy.context.scene
    bpy.ops.ed.undo_push(message="before")                  # background Blender: creates the undo stack
    assert bpy.ops.voca.character_guess_landmarks("EXEC_DEFAULT", True) == {"FINISHED"}
    first = {k: tuple(e.matrix_world.translation) for k, e in placed(scene).items()}
    placed(scene)[8].location.z += 0.05                     # dragged, then guessed again: the guess wins
    bpy.data.objects.remove(placed(scene)[67])              # one deleted by the artist: guessed again too
    bpy.ops.ed.undo_push(message="dragged")
    assert bpy.ops.voca.character_guess_landmarks("EXEC_DEFAULT", True) == {"FINISHED"}
    again = placed(scene)
    assert len(again) == 68 and all(e.name == f"iBUG_{k}" for k, e in again.items())
    assert {k: tuple(e.matrix_world.translation) for k, e in again.items()} == first
    assert len([c for c in bpy.data.collections if c.name.startswith("VOCA landmarks")]) == 1
    assert len([o for o in bpy.data.objects if o.type == "EMPTY"]) == 68
    bpy.ops.ed.undo()                                       # back to the first guess as the artist left it
    assert len(placed(bpy.context.scene)) == 67
    bpy.ops.ed.undo()
    assert len(placed(bpy.context.scene)) == 68
    bpy.ops.ed.undo()                                       # back to no guess at all
    scene = bpy.context.scene
    assert not placed(scene) and "VOCA landmarks Face" not in bpy.data.collections
    assert scene.voca_character.landmarks == "FILE"


def test_character_guess_refuses_the_artists_empties(face):
    scene = bpy.context.scene
    mine = bpy.data.objects.new("iBUG_5", None)
    scene.collection.objects.link(mine)
    before = snapshot(scene)
    with pytest.raises(RuntimeError, match=r"1 landmark empty you made \(iBUG_5\); Guess Landmarks never "
                                           r"replaces yours"):
        bpy.ops.voca.character_guess_landmarks()
    assert snapshot(scene) == before and not placed(scene)


def test_character_guess_refuses_a_cube_and_bad_targets_with_the_scene_untouched(addon):
    scene = addon
    settings = scene.voca_character
    with pytest.raises(RuntimeError, match="pick the target head mesh first|Pick the target head mesh"):
        bpy.ops.voca.character_guess_landmarks()
    bpy.ops.mesh.primitive_cube_add(size=0.2)
    cube = bpy.context.active_object
    empty = bpy.data.objects.new("Not a mesh", None)
    scene.collection.objects.link(empty)
    settings.target = empty
    with pytest.raises(RuntimeError, match="'Not a mesh' is not a mesh object"):
        bpy.ops.voca.character_guess_landmarks()
    settings.target = cube
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(RuntimeError, match="'Cube' is in Edit Mode; switch to Object Mode"):
        bpy.ops.voca.character_guess_landmarks()
    bpy.ops.object.mode_set(mode="OBJECT")
    before = snapshot(scene)
    with pytest.raises(RuntimeError, match="could not guess the landmarks: .* Is it a head\\? Mark the 68"):
        bpy.ops.voca.character_guess_landmarks()
    assert snapshot(scene) == before and not placed(scene)


def _guess(step: int):
    """A stand-in guess (landmark k on vertex ``step`` × k): apply needs no 3–5 s compute."""
    return guessing.LandmarkGuess(lm.FLAME_IBUG68.copy(), np.arange(68, dtype=np.int64) * step, None,
                                  dict(scale=1.0, unit="metres", surface=0.5, landmarks=1.0))


def test_character_guess_apply_failing_half_way_keeps_the_previous_empties(face, monkeypatch):
    """A failure while the empties are made (injected at the 10th) leaves the earlier guess, its collection
    and the Landmarks choice exactly as they were; no new empty or collection stays behind."""
    scene = bpy.context.scene
    op = ops.VOCA_OT_character_guess_landmarks
    plan = op.prepare(bpy.context)
    assert "AUTOMATIC FIRST GUESS" in op.apply(scene, plan, _guess(7))
    scene.voca_character.landmarks = "FILE"
    before, real, calls = snapshot(scene), character_landmarks.Matrix, []

    class Failing:
        @staticmethod
        def Translation(point):                                    # noqa: N802 — mathutils' name
            calls.append(point)
            if len(calls) == 10:
                raise RuntimeError("injected")
            return real.Translation(point)
    monkeypatch.setattr(character_landmarks, "Matrix", Failing)
    with pytest.raises(RuntimeError, match="injected"):
        op.apply(scene, plan, _guess(5))
    assert len(calls) == 10 and snapshot(scene) == before and len(placed(scene)) == 68
    monkeypatch.undo()                                             # a first guess failing: no collection left
    for empty in placed(scene).values():
        bpy.data.objects.remove(empty)
    bpy.data.collections.remove(bpy.data.collections["VOCA landmarks Face"])
    before, calls[:] = snapshot(scene), []
    monkeypatch.setattr(character_landmarks, "Matrix", Failing)
    with pytest.raises(RuntimeError, match="injected"):
        op.apply(scene, plan, _guess(5))
    assert snapshot(scene) == before and "VOCA landmarks Face" not in bpy.data.collections


def test_character_guess_esc_places_nothing(face):
    scene = bpy.context.scene
    before = snapshot(scene)
    run = jobs.JobRun(ops.VOCA_OT_character_guess_landmarks, bpy.context)
    run.cancel()                                                   # Esc
    status, reports = drive(run)
    assert status == "CANCELLED" and reports == [({"WARNING"}, "VOCA Guess Landmarks: cancelled; nothing was changed.")]
    run.job.join(60)
    assert snapshot(scene) == before and not scene.voca_character.is_running


def test_character_guess_in_a_second_scene_brings_in_none_of_the_firsts_empties(face, flame):
    """A guess in scene A, then one in scene B on the same target: B gets its own collection and 68 empties
    (names ``iBUG_<k>.001``: names are per file), none of A's (which would pair one FLAME landmark twice);
    Fit in B reads B's 68 pairs; A's empties stay where they were."""
    obj, mesh = face
    first = bpy.context.scene
    op = ops.VOCA_OT_character_guess_landmarks
    guess = guessing.guess_landmarks(flame.vertices, flame.faces, mesh.vertices, mesh.faces)
    op.apply(first, op.prepare(bpy.context), guess)
    in_first = {k: tuple(e.matrix_world.translation) for k, e in placed(first).items()}
    second = bpy.data.scenes.new("Second")
    second.collection.objects.link(obj)
    second.voca_character.target = obj
    with bpy.context.temp_override(scene=second, view_layer=second.view_layers[0]):
        op.apply(second, op.prepare(bpy.context), _guess(7))
        second.view_layers[0].update()
        flame_ids, target_ids = ops.VOCA_OT_character_fit.prepare(bpy.context)[1]   # refused before the fix
    empties = placed(second)
    assert len(empties) == 68 and len(second.objects) == 69 and set(empties) == set(range(68))
    assert not set(empties.values()) & set(placed(first).values())
    order = np.argsort([list(lm.FLAME_IBUG68).index(f) for f in flame_ids])
    np.testing.assert_array_equal(target_ids[order], np.arange(68) * 7)
    mine = {c for e in empties.values() for c in e.users_collection}
    assert len(mine) == 1 and mine != {bpy.data.collections["VOCA landmarks Face"]}
    assert next(iter(mine)) not in first.collection.children_recursive
    assert bpy.data.collections["VOCA landmarks Face"] not in second.collection.children_recursive
    assert {k: tuple(e.matrix_world.translation) for k, e in placed(first).items()} == in_first
    with bpy.context.temp_override(scene=second, view_layer=second.view_layers[0]):
        op.apply(second, op.prepare(bpy.context), _guess(5))                        # again in B: B's replaced
    assert len(placed(second)) == 68 and len(placed(first)) == 68
    assert len([c for c in bpy.data.collections if c.name.startswith("VOCA landmarks")]) == 2
