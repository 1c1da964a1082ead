"""The Character sub-panel's operators on the ARKit reference face with the official VOCA sequence: Fit keeps
the fit on the object, Transfer writes VOCA's keys that replay the motion, Drive keys its own ARKit keys;
refusals leave the scene untouched."""
from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from mathutils import Vector  # noqa: E402
from voca_addon.blender.character import data as character_io, writer as character_writer  # noqa: E402
from voca_addon.blender import compat
from voca_addon.blender.speech import writer
from voca_addon.core.character import keyfiles, landmarks as lm, transfer  # noqa: E402
from voca_addon.core.animation import sequences  # noqa: E402
from voca_addon.core.flame import meshio  # noqa: E402
from tests.blender.character_fixtures import addon, face  # noqa: E402,F401  (fixtures)


def test_character_panel_fit_transfer_replays_the_motion(face, shared_data, evaluated):
    obj, mesh = face
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    res = character_io.residuals(obj)
    assert res["landmarks_registered"]["mean"] < 0.5 and res["unit"] == "metres"
    assert bpy.ops.voca.character_transfer() == {"FINISHED"}
    template = meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    fit = character_io.load_fit(obj, mesh.vertices, template.faces)
    anim = sequences.import_sequence(shared_data / "voca_official" / "output_test_sentence_cond3.npz", template.path)
    expected = transfer.transfer(anim, fit, mesh.vertices, mesh.faces)
    scene = bpy.context.scene
    for f in (0, 215):
        np.testing.assert_allclose(evaluated(obj, scene, scene.frame_start + f), expected.vertices([f])[0],
                                   atol=2e-6)


def test_character_panel_drive_keys_its_own_arkit_keys(face, shared_data, evaluated, tmp_path):
    obj, mesh = face
    keys = keyfiles.read_key_folder(shared_data / "arkit" / "ARKit_blendshapes", mesh)
    character_writer.add_rig_keys(obj, keys.rest, keys.names, keys.deltas)
    bpy.context.scene.voca_character.curves_path = str(tmp_path / "take.csv")
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    assert bpy.ops.voca.character_drive() == {"FINISHED"}
    action = obj.data.shape_keys.animation_data.action
    assert action.get(writer.OWNED) and len(list(compat.action_fcurves(action))) == 51
    assert (tmp_path / "take.csv").read_text().startswith("Timecode,BlendShapeCount,EyeBlinkLeft")
    jaw = compat.find_fcurve(obj.data.shape_keys.animation_data, writer.value_path("jawOpen"))
    values = np.array([p.co[1] for p in jaw.keyframe_points])
    assert values.min() >= 0.0 and values.max() <= 1.0 and values.max() > 0.05


def test_character_panel_refuses_unfitted_or_changed_targets(face):
    obj, mesh = face
    with pytest.raises(RuntimeError, match="has not been fitted yet: click Fit first"):
        bpy.ops.voca.character_transfer()
    assert obj.data.shape_keys is None
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    obj.data.vertices[0].co.x += 0.01
    with pytest.raises(RuntimeError, match="changed since it was fitted"):
        bpy.ops.voca.character_transfer()
    assert obj.data.shape_keys is None
    obj.modifiers.new("Smooth", "SUBSURF")
    with pytest.raises(RuntimeError, match="has modifiers \\(Smooth\\)"):
        bpy.ops.voca.character_fit()
    assert bpy.context.scene.voca_character.target == obj


def test_character_panel_landmarks_from_empties(face, shared_data):
    obj, mesh = face
    ids = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    bpy.context.view_layer.update()                                   # the object's matrix_world
    for k, v in enumerate(ids):
        empty = bpy.data.objects.new(f"iBUG_{k}", None)
        empty.location = obj.matrix_world @ Vector(mesh.vertices[v].tolist())
        bpy.context.scene.collection.objects.link(empty)
    bpy.context.view_layer.update()
    flame_ids, target_ids = character_io.pairs_from_empties(obj, bpy.context.scene.objects)
    order = np.argsort(flame_ids)
    expected = np.argsort(lm.FLAME_IBUG68)
    np.testing.assert_array_equal(flame_ids[order], lm.FLAME_IBUG68[expected])
    np.testing.assert_array_equal(target_ids[order], ids[expected])


def test_character_panel_drive_refuses_a_bad_curves_path_before_keying(face, shared_data, tmp_path):
    obj, mesh = face
    keys = keyfiles.read_key_folder(shared_data / "arkit" / "ARKit_blendshapes", mesh)
    character_writer.add_rig_keys(obj, keys.rest, keys.names, keys.deltas)
    assert bpy.ops.voca.character_fit() == {"FINISHED"}
    bpy.context.scene.voca_character.curves_path = str(tmp_path / "missing" / "take.txt")
    with pytest.raises(RuntimeError, match="Curves"):
        bpy.ops.voca.character_drive()
    assert obj.data.shape_keys.animation_data is None or obj.data.shape_keys.animation_data.action is None


def test_character_panel_registers_without_scipy_and_says_what_is_missing():
    """Blender's own Python has no scipy: the add-on still registers; the Character buttons say why not."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path
    code = textwrap.dedent("""
        import builtins
        _real = builtins.__import__
        def _blocked(name, *args, **kwargs):
            if name.split('.')[0] == 'scipy':
                raise ImportError('No module named scipy', name='scipy')
            return _real(name, *args, **kwargs)
        builtins.__import__ = _blocked
        import bpy, voca_addon
        voca_addon.register()
        mesh = bpy.data.meshes.new('T')
        mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        obj = bpy.data.objects.new('T', mesh)
        bpy.context.scene.collection.objects.link(obj)
        bpy.context.scene.voca_character.target = obj
        try:
            bpy.ops.voca.character_fit()
        except RuntimeError as exc:
            print('REFUSED', exc)
        voca_addon.unregister()
        from voca_addon.blender import compat
        compat.exit_now(0)                  # the bpy module's teardown hangs (4.5) or crashes (4.2)
    """)
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "REFUSED" in run.stdout and "need scipy" in run.stdout, run.stdout + run.stderr
