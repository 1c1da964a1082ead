"""Retargeting in Blender: the .blend holds the character with VOCA's transferred keys, or its own ARKit keys
driven by an add-on-owned action; refused targets leave the scene untouched. Real data: the ARKit face and
the official VOCA sequence."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from voca_addon.cli import retarget as retarget_cli  # noqa: E402
from voca_addon.blender.character import writer as character_writer  # noqa: E402
from voca_addon.blender import compat
from voca_addon.blender.speech import writer
from voca_addon.core.character import landmarks as lm  # noqa: E402
from voca_addon.core.errors import InputError, MeshError  # noqa: E402


@pytest.fixture
def args(tmp_path, shared_data):
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    return argparse.Namespace(
        source=str(shared_data / "voca_official" / "output_test_sentence_cond3.npz"),
        target=str(shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj"), landmarks=str(pairs),
        out=str(tmp_path / "out.blend"), target_keys=None, curves=None,
        template=str(shared_data / "flame" / "FLAME_sample.ply"), audio=None, fps=None, overwrite=False)


def _frames(obj, scene, evaluated, frames):
    return np.stack([evaluated(obj, scene, f) for f in frames])


@pytest.mark.smoke
def test_character_retarget_writes_transferred_keys_that_replay_the_motion(scene, args, evaluated):
    result = retarget_cli.compute(args)
    retarget_cli.run(args)
    bpy.ops.wm.open_mainfile(filepath=args.out)
    scene = bpy.context.scene
    obj = bpy.data.objects["Neutral"]
    frames = [0, 60, 150, 305]
    got = _frames(obj, scene, evaluated, [scene.frame_start + f for f in frames])
    np.testing.assert_allclose(got, result.motion.vertices(frames), atol=2e-6)   # metres


def test_character_retarget_drives_its_own_arkit_keys(scene, args, evaluated, shared_data, tmp_path):
    args.target_keys = str(shared_data / "arkit" / "ARKit_blendshapes")
    args.curves = str(tmp_path / "take.csv")
    result = retarget_cli.compute(args)
    retarget_cli.run(args)
    bpy.ops.wm.open_mainfile(filepath=args.out)
    scene = bpy.context.scene
    obj = bpy.data.objects["Neutral"]
    key = obj.data.shape_keys
    assert {b.name for b in key.key_blocks} == {"Basis", *result.keys.names}
    action = key.animation_data.action
    assert action.get(writer.OWNED)
    assert len(list(compat.action_fcurves(action))) == 51
    w = result.solution.weights
    for f in (0, 100, 250):
        expected = result.keys.rest + np.einsum("k,kvd->vd", w[f].astype(np.float64), result.keys.deltas)
        np.testing.assert_allclose(evaluated(obj, scene, scene.frame_start + f), expected, atol=2e-6)
    header = open(args.curves).readline().strip().split(",")
    assert header[:2] == ["Timecode", "BlendShapeCount"] and len(header) == 63


def _mesh_object(name="Target"):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def test_character_refuses_targets_it_cannot_animate_safely(scene):
    empty = bpy.data.objects.new("Empty", None)
    with pytest.raises(MeshError, match="not a mesh object"):
        character_writer.check_target_object(empty)
    flat = bpy.data.objects.new("Points", bpy.data.meshes.new("Points"))
    with pytest.raises(MeshError, match="no faces"):
        character_writer.check_target_object(flat)
    obj = _mesh_object()
    obj.modifiers.new("Smooth", "SUBSURF")
    with pytest.raises(InputError, match="modifiers \\(Smooth\\)"):
        character_writer.check_target_object(obj)
    obj.modifiers.clear()
    rig = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
    obj.parent = rig
    with pytest.raises(InputError, match="armature"):
        character_writer.check_target_object(obj)
    obj.parent = None
    obj.shape_key_add(name="Basis")
    obj.shape_key_add(name="jawOpen")
    artist = compat.new_action("ArtistTake")
    compat.assign_action(obj.data.shape_keys.animation_data_create(), artist, "KEY", "Artist")
    with pytest.raises(InputError, match="'ArtistTake', which VOCA did not create"):
        character_writer.drive_keys(obj, ["jawOpen"], np.zeros((3, 1)), 60.0, scene, 1)
    assert obj.data.shape_keys.animation_data.action == artist
    assert len(list(compat.action_fcurves(artist))) == 0


def test_character_retarget_through_the_headless_script(args, tmp_path):
    """``python voca_addon/headless.py -- retarget ...`` (the argument path of ``blender -b -P headless.py --``)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, str(root / "voca_addon" / "headless.py"), "--", "retarget", args.source,
               "--target", args.target, "--landmarks", args.landmarks, "--template", args.template,
               "--out", str(tmp_path / "h.blend")]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "h.blend").is_file() and "transferred keys" in run.stdout


def test_character_retarget_with_guessed_landmarks_says_so_and_writes_the_pairs(scene, args, tmp_path, capsys):
    """``--landmarks auto --guess-landmarks FILE``: the .blend is written from the guess, the command says the
    landmarks are a guess and prints the fit's residual, and FILE holds the 68 pairs to check and edit."""
    args.landmarks, args.guess_landmarks = "auto", str(tmp_path / "guessed.txt")
    retarget_cli.run(args)
    printed = capsys.readouterr().out
    assert "landmarks: an AUTOMATIC FIRST GUESS" in printed and "guessed.txt" in printed
    assert "fit: scale" in printed and "after registration" in printed
    flame_ids, target_ids = lm.read_pairs(args.guess_landmarks)
    np.testing.assert_array_equal(flame_ids, lm.FLAME_IBUG68)
    assert len(target_ids) == 68 and target_ids.max() < 1220
    bpy.ops.wm.open_mainfile(filepath=args.out)
    assert bpy.data.objects["Neutral"].data.shape_keys is not None
